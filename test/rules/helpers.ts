// Scenario fixtures (fixtures/rules/<scenario>/<host>/ + expected.json) and a small applier of fix commands
// to copies of snapshot files, to prove in the rule tests that a finding's fix makes it go away.
// (`trace --fix` does the full job; this applier knows exactly the command forms the rules emit.)
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import type {Finding} from '../../src/model/finding.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {tokenize} from '../../src/rules/engine/fix.js'
import {editIpRuleJson, splitWords} from '../../src/dataplane/apply-fix.js'
import {runRules} from '../../src/rules/index.js'
import {editNftRuleset} from '../../src/dataplane/nft-fix.js'

export const SCENARIOS_DIR = 'fixtures/rules'

export interface Expected {
  source: string
  fires: string[]
  fixedBy?: string
  fixes?: string
  /** the fix is a change of configuration lvsdoctor cannot write as a command (why); the fixed variant shows it */
  manualFix?: string
}

export function scenarioNames(): string[] {
  return readdirSync(SCENARIOS_DIR)
    .filter((d) => statSync(join(SCENARIOS_DIR, d)).isDirectory())
    .sort()
}

export function expected(name: string): Expected {
  return JSON.parse(readFileSync(join(SCENARIOS_DIR, name, 'expected.json'), 'utf8')) as Expected
}

export function hostDirs(name: string): string[] {
  const dir = join(SCENARIOS_DIR, name)
  return readdirSync(dir)
    .filter((d) => statSync(join(dir, d)).isDirectory())
    .sort()
    .map((d) => join(dir, d))
}

export function loadScenario(name: string): HostSnapshot[] {
  return loadSnapshots(hostDirs(name))
}

// ---- applying fixes to copies ---------------------------------------------------------------------------

function applyIptables(text: string, argv: string[]): string {
  // iptables -t TABLE -I CHAIN N spec | -A CHAIN spec | -R CHAIN N spec | -D CHAIN N
  const t = argv.indexOf('-t')
  const table = t >= 0 ? argv[t + 1]! : 'filter'
  const rest = argv.filter((_, i) => i !== t && i !== t + 1).slice(1)
  const op = rest[0]!
  const chain = rest[1]!
  const hasPos = op !== '-A'
  const pos = hasPos ? Number(rest[2]) : 0
  const spec = rest.slice(hasPos ? 3 : 2).join(' ')
  const lines = text.split('\n')
  let start = lines.findIndex((l) => l === `*${table}`)
  if (start < 0) {
    lines.push(`*${table}`, 'COMMIT')
    start = lines.length - 2
  }
  const end = lines.findIndex((l, i) => i > start && l === 'COMMIT')
  if (!lines.slice(start, end).some((l) => l.startsWith(`:${chain} `))) lines.splice(start + 1, 0, `:${chain} ACCEPT [0:0]`)
  const blockEnd = lines.findIndex((l, i) => i > start && l === 'COMMIT')
  const ruleIdx: number[] = []
  for (let i = start; i < blockEnd; i++) if (lines[i]!.startsWith(`-A ${chain} `)) ruleIdx.push(i)
  const line = `-A ${chain} ${spec}`
  if (op === '-A' || (op === '-I' && pos === ruleIdx.length + 1)) {
    lines.splice(ruleIdx.length ? ruleIdx.at(-1)! + 1 : blockEnd, 0, line)
  } else if (op === '-I') {
    if (pos < 1 || pos > ruleIdx.length) throw new Error(`iptables -I ${chain} ${pos}: chain has ${ruleIdx.length} rules`)
    lines.splice(ruleIdx[pos - 1]!, 0, line)
  } else if (op === '-R') {
    if (pos < 1 || pos > ruleIdx.length) throw new Error(`iptables -R ${chain} ${pos}: chain has ${ruleIdx.length} rules`)
    lines[ruleIdx[pos - 1]!] = line
  } else if (op === '-D') {
    lines.splice(ruleIdx[pos - 1]!, 1)
  } else throw new Error(`unsupported iptables operation ${op}`)
  return lines.join('\n')
}

function applySysctl(text: string, kv: string): string {
  const [key, value] = kv.split('=') as [string, string]
  const lines = text.split('\n')
  const i = lines.findIndex((l) => l.startsWith(`${key} = `))
  if (i >= 0) lines[i] = `${key} = ${value}`
  else lines.splice(lines.length - 1, 0, `${key} = ${value}`)
  return lines.join('\n')
}

function applyIpvsadm(text: string, argv: string[]): string {
  // ipvsadm -d -t VIP -r RIP | ipvsadm -a -t VIP -r RIP -g -w W | ipvsadm -e -t VIP -r RIP -g -w W
  const lines = text.split('\n').filter((l) => l !== '')
  const svc = `${argv[2]} ${argv[3]}`
  if (argv[1] === '-d') return lines.filter((l) => !l.startsWith(`-a ${svc} -r ${argv[5]} `)).join('\n') + '\n'
  if (argv[1] === '-a') {
    const last = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith(`-a ${svc} `) || l.startsWith(`-A ${svc} `)).at(-1)![1]
    lines.splice(last + 1, 0, argv.slice(1).join(' '))
    return lines.join('\n') + '\n'
  }
  if (argv[1] === '-e') {
    // ipvsadm -e -t VIP -r RIP -g -w W: the destination's line, with what -e gives
    const i = lines.findIndex((l) => l.startsWith(`-a ${svc} -r ${argv[5]} `))
    if (i < 0) throw new Error(`ipvsadm -e: ${argv[5]} is not a destination of ${svc}`)
    lines[i] = `-a ${argv.slice(2).join(' ')}`
    return lines.join('\n') + '\n'
  }
  if (argv[1] === '-E') {
    // ipvsadm -E -t VIP OPTS: the service line with the options given, all of them anew
    const i = lines.findIndex((l) => l.startsWith(`-A ${svc} `) || l === `-A ${svc}`)
    if (i < 0) throw new Error(`ipvsadm -E: no service ${svc}`)
    lines[i] = `-A ${argv.slice(2).join(' ')}`
    return lines.join('\n') + '\n'
  }
  throw new Error(`unsupported ipvsadm ${argv.join(' ')}`)
}

function applyIpRoute(text: string, argv: string[]): string {
  // ip route add local A/32 dev lo table local
  if (argv[1] !== 'route' || argv[2] !== 'add' || argv[3] !== 'local') throw new Error(`unsupported ${argv.join(' ')}`)
  const routes = JSON.parse(text) as unknown[]
  const dst = argv[4]!.replace(/\/32$/, '')
  routes.push({type: 'local', dst, dev: argv[argv.indexOf('dev') + 1], table: 'local', protocol: 'boot', scope: 'host', prefsrc: dst, flags: []})
  return JSON.stringify(routes) + '\n'
}

function applyIpAddr(fs: Map<string, string>, argv: string[]): void {
  // ip addr add A/32 dev D: the address on D, and the local route the kernel adds for it
  if (argv[2] !== 'add' || !argv[3]!.endsWith('/32') || argv[4] !== 'dev') throw new Error(`unsupported ${argv.join(' ')}`)
  const ip = argv[3]!.replace(/\/32$/, '')
  const links = JSON.parse(fs.get('ip-addr.json')!) as {ifname: string; addr_info: unknown[]}[]
  links.find((l) => l.ifname === argv[5])!.addr_info.push({family: 'inet', local: ip, prefixlen: 32, scope: 'global', label: argv[5]})
  fs.set('ip-addr.json', JSON.stringify(links))
  const routes = JSON.parse(fs.get('ip-route.json') ?? '[]') as unknown[]
  routes.push({type: 'local', dst: ip, dev: argv[5], table: 'local', protocol: 'kernel', scope: 'host', prefsrc: ip, flags: []})
  fs.set('ip-route.json', JSON.stringify(routes))
}

/** Applies the fixes of `findings`, in order, to copies of the hosts' files; returns the re-loaded hosts. */
export function applyFixes(hosts: readonly HostSnapshot[], findings: readonly Finding[]): HostSnapshot[] {
  const files = new Map(hosts.map((h) => [h.name, new Map(h.raw)]))
  for (const f of findings) {
    const fs = files.get(f.host)!
    for (const cmd of f.fix?.commands ?? []) {
      const argv = tokenize(cmd).map((t) => (t.startsWith('"') && t.endsWith('"') ? t : t))
      const tool = argv[0]!
      if (tool === 'iptables') fs.set('iptables-save.txt', applyIptables(fs.get('iptables-save.txt') ?? '', argv))
      else if (tool === 'sysctl') fs.set('sysctl.txt', applySysctl(fs.get('sysctl.txt') ?? '', argv[2]!))
      // ipvsadm --set TCP TCPFIN UDP: a 0 keeps that timeout (the kernel defaults 900 120 300 when the file has none)
      else if (tool === 'ipvsadm' && argv[1] === '--set') {
        const cur = /: (\d+) (\d+) (\d+)/.exec(fs.get('ipvsadm-timeout.txt') ?? '')?.slice(1) ?? ['900', '120', '300']
        fs.set('ipvsadm-timeout.txt', `Timeout (tcp tcpfin udp): ${argv.slice(2, 5).map((v, i) => (v === '0' ? cur[i] : v)).join(' ')}\n`)
      } else if (tool === 'ipvsadm') fs.set('ipvsadm-Sn.txt', applyIpvsadm(fs.get('ipvsadm-Sn.txt') ?? '', argv))
      else if (tool === 'ip' && argv[1] === 'addr') applyIpAddr(fs, argv)
      else if (tool === 'ip' && argv[1] === 'rule') fs.set('ip-rule.json', editIpRuleJson(fs.get('ip-rule.json'), argv.slice(2)))
      else if (tool === 'ip') fs.set('ip-route.json', applyIpRoute(fs.get('ip-route.json') ?? '[]', argv))
      else if (tool === 'nft') fs.set('nft-ruleset.json', editNftRuleset(fs.get('nft-ruleset.json'), splitWords(cmd).slice(1)))
      else throw new Error(`no applier for: ${cmd}`)
    }
  }
  return hosts.map((h) => {
    const copy = hostFromFiles(h.name, h.source, files.get(h.name)!)
    return copy
  })
}

/** A scenario with some files of one host rewritten (`edit` returns the new text; absent files can be added via `extra`). */
export function editedScenario(name: string, host: string, edit: (file: string, text: string) => string, extra: Record<string, string> = {}): HostSnapshot[] {
  return loadScenario(name).map((h) => {
    if (h.name !== host) return h
    const files = new Map([...h.raw].map(([f, t]) => [f, edit(f, t)] as [string, string]))
    for (const [f, t] of Object.entries(extra)) files.set(f, t)
    return hostFromFiles(h.name, h.source, files)
  })
}

/** The findings of one rule over the hosts (the other rules run too: the engine decides which rule reports what). */
export function findingsOf(rule: string): (hosts: readonly HostSnapshot[]) => Finding[] {
  return (hosts) => runRules({hosts: [...hosts]}).filter((f) => f.rule === rule)
}

/** A replayed connection that opened, got its answer and closed. */
export const connectionOk = (c: {connected: boolean; reply: boolean; closed: boolean}): boolean => c.connected && c.reply && c.closed
