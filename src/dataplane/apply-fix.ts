// Applies fix commands (the strings of check's `fix.commands`) to COPIES of a snapshot's raw files and
// re-loads the copy. Nothing here runs a program or touches the host: each command is read like its tool
// would read it and the matching edit is made to the text of the file that tool's dump would show.
//   iptables/ip6tables -t T -I/-A/-D/-R/-P/-N/-F  -> iptables-save.txt / ip6tables-save.txt
//   sysctl -w k=v                                  -> sysctl.txt
//   ip route add/replace/del/change                -> ip-route.json
//   ip addr add/del ADDR/LEN dev DEV               -> ip-addr.json, and the routes the kernel adds with it
//   ipvsadm -A/-E/-D/-a/-e/-d                       -> ipvsadm-Sn.txt
//   ipvsadm --set TCP TCPFIN UDP                     -> ipvsadm-timeout.txt
//   nft add/insert/replace/delete rule, add chain/table -> nft-ruleset.json (nft-fix.ts)
// Commands are applied in order (check orders positions so that they stay exact). A command that cannot be
// applied is reported with the reason, never skipped silently.
import type {HostSnapshot} from '../model/snapshot.js'
import {hostFromFiles} from '../snapshot/store.js'
import {editNftRuleset, NftFixError} from './nft-fix.js'

export interface FixOutcome {
  readonly host: string
  readonly command: string
  readonly applied: boolean
  /** why it was not applied */
  readonly reason?: string
}

/** Shell-like word splitting (quotes, backslash), enough for the fix commands lvsdoctor writes. */
export function splitWords(cmd: string): string[] {
  const out: string[] = []
  let cur = ''
  let quote: '"' | "'" | undefined
  let has = false
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!
    if (quote) {
      if (c === quote) quote = undefined
      else if (c === '\\' && quote === '"' && i + 1 < cmd.length) cur += cmd[++i]
      else cur += c
      continue
    }
    if (c === '"' || c === "'") {
      quote = c
      has = true
    } else if (c === '\\' && i + 1 < cmd.length) {
      cur += cmd[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur)
      cur = ''
      has = false
    } else {
      cur += c
      has = true
    }
  }
  if (has || cur) out.push(cur)
  return out
}

function quoteWord(w: string): string {
  return /^[\w@%+=:,./!-]+$/.test(w) ? w : `"${w.replace(/(["\\])/g, '\\$1')}"`
}

class FixError extends Error {}

/**
 * The copy's files. A dump's lines are split once and edited in place by every iptables command, and joined once
 * at the end: a check with hundreds of fix commands on a 100,000-rule dump would otherwise split and join the whole
 * file for each (minutes).
 */
class Files {
  private readonly text: Map<string, string>
  private readonly lines = new Map<string, string[]>()
  constructor(raw: ReadonlyMap<string, string>) {
    this.text = new Map(raw)
  }
  get(name: string): string | undefined {
    this.flush(name)
    return this.text.get(name)
  }
  set(name: string, value: string): void {
    this.lines.delete(name)
    this.text.set(name, value)
  }
  has(name: string): boolean {
    return this.lines.has(name) || this.text.has(name)
  }
  /** the file's lines (without the empty one after the last newline), to edit in place */
  linesOf(name: string): string[] {
    let l = this.lines.get(name)
    if (!l) {
      l = (this.text.get(name) ?? '').split('\n')
      if (l.at(-1) === '') l.pop()
      this.lines.set(name, l)
    }
    return l
  }
  private flush(name: string): void {
    const l = this.lines.get(name)
    if (!l) return
    this.text.set(name, l.join('\n') + '\n')
    this.lines.delete(name)
  }
  toMap(): Map<string, string> {
    for (const name of [...this.lines.keys()]) this.flush(name)
    return this.text
  }
}

/** Applies `commands` to a copy of `host`'s raw files; returns the re-loaded copy and what happened. */
export function applyFixes(host: HostSnapshot, commands: readonly string[]): {host: HostSnapshot; outcomes: FixOutcome[]} {
  const files = new Files(host.raw)
  const outcomes: FixOutcome[] = []
  for (const command of commands) {
    try {
      applyOne(files, command)
      outcomes.push({host: host.name, command, applied: true})
    } catch (e) {
      if (!(e instanceof FixError)) throw e
      outcomes.push({host: host.name, command, applied: false, reason: e.message})
    }
  }
  if (host.manifest && !files.has('manifest.json')) files.set('manifest.json', JSON.stringify(host.manifest))
  const copy = hostFromFiles(host.name, `${host.source} (fixed copy)`, files.toMap())
  if (host.capturePath) copy.capturePath = host.capturePath
  if (!host.roleInferred) {
    copy.role = host.role
    copy.roleInferred = false
  }
  return {host: copy, outcomes}
}

function applyOne(files: Files, command: string): void {
  let argv = splitWords(command.trim())
  if (argv[0] === 'sudo') argv = argv.slice(1)
  const tool = (argv[0] ?? '').replace(/^.*\//, '')
  switch (tool) {
    case 'iptables':
    case 'iptables-legacy':
    case 'iptables-nft':
      return editIptables(files, 'iptables-save.txt', argv.slice(1))
    case 'ip6tables':
    case 'ip6tables-legacy':
    case 'ip6tables-nft':
      return editIptables(files, 'ip6tables-save.txt', argv.slice(1))
    case 'sysctl':
      return editSysctl(files, argv.slice(1))
    case 'ip':
      return editIp(files, argv.slice(1))
    case 'ipvsadm':
      return editIpvsadm(files, argv.slice(1))
    case 'nft':
      try {
        files.set('nft-ruleset.json', editNftRuleset(files.get('nft-ruleset.json'), argv.slice(1)))
      } catch (e) {
        if (e instanceof NftFixError) throw new FixError(e.message)
        throw e
      }
      return
    default:
      throw new FixError(`${tool || 'an empty command'} is not a command trace --fix can apply to a snapshot copy (iptables, ip6tables, nft, sysctl -w, ip route, ip addr, ipvsadm)`)
  }
}

// -----------------------------------------------------------------------------------------------------
// iptables

const BUILTIN: Record<string, string[]> = {
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
}

interface TableSpan {
  start: number
  commit: number
}

function findTable(lines: string[], table: string): TableSpan | undefined {
  const start = lines.findIndex((l) => l.trim() === `*${table}`)
  if (start < 0) return undefined
  for (let i = start + 1; i < lines.length; i++) {
    const t = lines[i]!.trim()
    if (t === 'COMMIT') return {start, commit: i}
    if (t.startsWith('*')) break
  }
  throw new FixError(`table ${table} in the snapshot has no COMMIT line`)
}

/** Indexes (in `lines`) of the -A lines of `chain` inside the table span, in order. */
function ruleLines(lines: string[], span: TableSpan, chain: string): number[] {
  const out: number[] = []
  for (let i = span.start + 1; i < span.commit; i++) {
    const w = splitWords(lines[i]!.replace(/^\[\d+:\d+\]\s*/, ''))
    if (w[0] === '-A' && w[1] === chain) out.push(i)
  }
  return out
}

function chainDeclared(lines: string[], span: TableSpan, chain: string): number {
  for (let i = span.start + 1; i < span.commit; i++) if (lines[i]!.startsWith(`:${chain} `)) return i
  return -1
}

function editIptables(files: Files, file: string, args: string[]): void {
  let table = 'filter'
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '-t' || a === '--table') table = args[++i] ?? ''
    else if (a === '-w' || a === '--wait') {
      if (/^\d+$/.test(args[i + 1] ?? '')) i++
    } else if (a === '-W' || a === '--wait-interval') i++
    else rest.push(a)
  }
  if (!BUILTIN[table]) throw new FixError(`unknown table ${table}`)
  const op = rest[0]
  const chain = rest[1]
  if (!op || !chain) throw new FixError('iptables needs a command (-I, -A, -D, -R, -P, -N) and a chain')
  const lines = files.linesOf(file)
  let span = findTable(lines, table)
  let created = 0
  if (!span) {
    // the table is not in the dump yet: iptables would create it with its builtin chains
    const add = [`*${table}`, ...BUILTIN[table]!.map((c) => `:${c} ACCEPT [0:0]`), 'COMMIT']
    lines.push(...add)
    created = add.length
    span = {start: lines.length - add.length, commit: lines.length - 1}
  }
  try {
    editTable(lines, span, table, op, chain, rest, file)
  } catch (e) {
    // a command that cannot be applied leaves the file as it was (the lines are edited in place)
    if (created) lines.splice(span.start, created)
    throw e
  }
}

function editTable(lines: string[], span: TableSpan, table: string, op: string, chain: string, rest: string[], file: string): void {
  const isBuiltin = BUILTIN[table]!.includes(chain)
  if (op !== '-N' && op !== '--new-chain' && !isBuiltin && chainDeclared(lines, span, chain) < 0) {
    throw new FixError(`chain ${chain} does not exist in table ${table} of ${file}`)
  }
  const rule = (words: string[]) => `-A ${chain}${words.length ? ' ' + words.map(quoteWord).join(' ') : ''}`
  const rules = ruleLines(lines, span, chain)
  const num = (w: string | undefined, what: string) => {
    if (!w || !/^\d+$/.test(w)) throw new FixError(`${what} needs a rule number, found ${w ?? 'nothing'}`)
    return Number(w)
  }
  switch (op) {
    case '-I':
    case '--insert': {
      let n = 1
      let words = rest.slice(2)
      if (/^\d+$/.test(words[0] ?? '')) {
        n = Number(words[0])
        words = words.slice(1)
      }
      if (n < 1 || n > rules.length + 1) throw new FixError(`-I ${chain} ${n}: the chain has ${rules.length} rules`)
      const at = n <= rules.length ? rules[n - 1]! : rules.length ? rules.at(-1)! + 1 : span.commit
      lines.splice(at, 0, rule(words))
      break
    }
    case '-A':
    case '--append': {
      const at = rules.length ? rules.at(-1)! + 1 : span.commit
      lines.splice(at, 0, rule(rest.slice(2)))
      break
    }
    case '-R':
    case '--replace': {
      const n = num(rest[2], '-R')
      if (n < 1 || n > rules.length) throw new FixError(`-R ${chain} ${n}: the chain has ${rules.length} rules`)
      lines[rules[n - 1]!] = rule(rest.slice(3))
      break
    }
    case '-D':
    case '--delete': {
      if (/^\d+$/.test(rest[2] ?? '') && rest.length === 3) {
        const n = Number(rest[2])
        if (n < 1 || n > rules.length) throw new FixError(`-D ${chain} ${n}: the chain has ${rules.length} rules`)
        lines.splice(rules[n - 1]!, 1)
      } else {
        const want = normalizeRule(rule(rest.slice(2)))
        const i = rules.find((j) => normalizeRule(lines[j]!.replace(/^\[\d+:\d+\]\s*/, '')) === want)
        if (i === undefined) throw new FixError(`-D ${chain}: no rule of the chain reads "${rule(rest.slice(2))}"`)
        lines.splice(i, 1)
      }
      break
    }
    case '-P':
    case '--policy': {
      const policy = rest[2]
      if (policy !== 'ACCEPT' && policy !== 'DROP') throw new FixError(`-P ${chain} needs ACCEPT or DROP`)
      if (!isBuiltin) throw new FixError(`-P: ${chain} is not a builtin chain`)
      const i = chainDeclared(lines, span, chain)
      if (i >= 0) lines[i] = lines[i]!.replace(/^(:\S+\s+)\S+/, `$1${policy}`)
      else lines.splice(span.start + 1, 0, `:${chain} ${policy} [0:0]`)
      break
    }
    case '-N':
    case '--new-chain': {
      if (chainDeclared(lines, span, chain) >= 0) throw new FixError(`chain ${chain} already exists`)
      let last = span.start
      for (let i = span.start + 1; i < span.commit; i++) if (lines[i]!.startsWith(':')) last = i
      lines.splice(last + 1, 0, `:${chain} - [0:0]`)
      break
    }
    case '-F':
    case '--flush': {
      for (const i of [...rules].reverse()) lines.splice(i, 1)
      break
    }
    default:
      throw new FixError(`iptables ${op} is not applied by trace --fix (only -I, -A, -D, -R, -P, -N, -F)`)
  }
}

/** iptables-save adds `-m tcp`/`-m udp` for --dport/--sport; compare rules without those implicit parts. */
function normalizeRule(r: string): string {
  return splitWords(r)
    .join(' ')
    .replace(/ -m (tcp|udp|icmp)(?= )/g, '')
    .replace(/\/32\b/g, '')
}

// -----------------------------------------------------------------------------------------------------
// sysctl

function editSysctl(files: Files, args: string[]): void {
  const assigns = args.filter((a) => !a.startsWith('-'))
  if (!args.includes('-w') && !args.includes('--write') && !assigns.every((a) => a.includes('='))) throw new FixError('sysctl needs -w key=value')
  if (assigns.length === 0) throw new FixError('sysctl -w needs key=value')
  const lines = (files.get('sysctl.txt') ?? '').split('\n')
  if (lines.at(-1) === '') lines.pop()
  for (const a of assigns) {
    const eq = a.indexOf('=')
    if (eq <= 0) throw new FixError(`sysctl: ${a} is not key=value`)
    const key = a.slice(0, eq).trim().replace(/\//g, '.')
    const value = a.slice(eq + 1).trim()
    const line = `${key} = ${value}`
    const i = lines.findIndex((l) => l.split('=')[0]!.trim() === key)
    if (i >= 0) lines[i] = line
    else lines.push(line)
    // writing net.ipv4.ip_forward sets every interface's forwarding (devinet_sysctl_forward)
    if (key === 'net.ipv4.ip_forward' || key === 'net.ipv4.conf.all.forwarding') {
      for (let j = 0; j < lines.length; j++) {
        if (/^net\.ipv4\.conf\.[^.]+\.forwarding\s*=/.test(lines[j]!) || /^net\.ipv4\.ip_forward\s*=/.test(lines[j]!)) {
          lines[j] = lines[j]!.replace(/=.*$/, `= ${value}`)
        }
      }
    }
  }
  files.set('sysctl.txt', lines.join('\n') + '\n')
}

// -----------------------------------------------------------------------------------------------------
// ip route

function editIp(files: Files, args: string[]): void {
  let a = args.filter((w) => w !== '-4')
  const obj = a[0]
  if (obj === 'addr' || obj === 'address' || obj === 'a') return editIpAddr(files, a.slice(1))
  if (obj === 'rule' || obj === 'ru') return editIpRule(files, a.slice(1))
  if (obj !== 'route' && obj !== 'r' && obj !== 'ro') throw new FixError(`ip ${obj ?? ''} is not applied by trace --fix (only ip route, ip rule and ip addr)`)
  const verb = a[1]
  a = a.slice(2)
  if (!verb || !['add', 'replace', 'del', 'delete', 'change', 'append'].includes(verb)) throw new FixError(`ip route ${verb ?? ''} is not applied by trace --fix`)
  const route: Record<string, unknown> = {}
  let i = 0
  const types = ['unicast', 'local', 'broadcast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'anycast']
  if (types.includes(a[0] ?? '')) route.type = a[i++]
  const dst = a[i++]
  if (!dst) throw new FixError('ip route needs a destination')
  route.dst = dst === 'default' || dst === '0.0.0.0/0' ? 'default' : dst.replace(/\/32$/, '')
  let table = 'main'
  for (; i < a.length; i++) {
    const k = a[i]!
    const v = a[i + 1]
    if (k === 'via') route.gateway = (i++, v)
    else if (k === 'dev' || k === 'oif') route.dev = (i++, v)
    else if (k === 'table') table = (i++, v ?? 'main')
    else if (k === 'src') route.prefsrc = (i++, v)
    else if (k === 'metric' || k === 'preference' || k === 'priority') route.metric = (i++, Number(v))
    else if (k === 'proto' || k === 'protocol') route.protocol = (i++, v)
    else if (k === 'scope') route.scope = (i++, v)
    else if (k === 'onlink') route.flags = ['onlink']
    else throw new FixError(`ip route: option ${k} is not applied by trace --fix`)
  }
  if (table !== 'main' && table !== '254') route.table = table
  if (!route.flags) route.flags = []
  if (!route.scope && !route.gateway && !route.type) route.scope = 'link'
  let list: Record<string, unknown>[] = []
  const raw = files.get('ip-route.json')
  if (raw !== undefined && raw.trim() !== '') {
    try {
      list = JSON.parse(raw) as Record<string, unknown>[]
    } catch {
      throw new FixError('ip-route.json of the snapshot is not valid JSON')
    }
  }
  const sameKey = (r: Record<string, unknown>) =>
    String(r.dst) === String(route.dst) && String(r.table ?? 'main') === String(route.table ?? 'main') && (r.metric ?? 0) === (route.metric ?? 0) && (r.type ?? 'unicast') === (route.type ?? 'unicast')
  const idx = list.findIndex(sameKey)
  if (verb === 'del' || verb === 'delete') {
    if (idx < 0) throw new FixError(`ip route del ${String(route.dst)}: no such route`)
    list.splice(idx, 1)
  } else if (verb === 'add' || verb === 'append') {
    if (idx >= 0 && verb === 'add') throw new FixError(`ip route add ${String(route.dst)}: the route exists (RTNETLINK answers: File exists)`)
    list.push(route)
  } else if (verb === 'change') {
    if (idx < 0) throw new FixError(`ip route change ${String(route.dst)}: no such route`)
    list[idx] = route
  } else {
    if (idx >= 0) list[idx] = route
    else list.push(route)
  }
  files.set('ip-route.json', JSON.stringify(list) + '\n')
}

// -----------------------------------------------------------------------------------------------------
// ip rule add/del SELECTOR ACTION [pref N]: the rule in ip-rule.json as `ip -j rule show` prints it (ip/iprule.c
// print_rule: src "all" or the address with srclen when not a host prefix, dst likewise, fwmark/fwmask in hex,
// ipproto by name, sport/dport or their _start/_end, table by name). Without pref the kernel gives a new rule the
// preference just below the first non-zero one (fib_default_rule_pref), as ip rule add does. IPv4 only.

const RULE_TABLES: Readonly<Record<string, string>> = {'255': 'local', '254': 'main', '253': 'default'}
/** the order ip -j rule show prints the keys in */
const RULE_ORDER = ['not', 'src', 'srclen', 'dst', 'dstlen', 'fwmark', 'fwmask', 'iif', 'oif', 'ipproto', 'sport', 'sport_start', 'sport_end', 'dport', 'dport_start', 'dport_end', 'table', 'action']

/** `ip rule ARGS` (without `ip rule`) applied to the text of ip-rule.json; throws FixError when it cannot be applied. */
export function editIpRuleJson(text: string | undefined, args: readonly string[]): string {
  const files = new Files(new Map(text === undefined ? [] : [['ip-rule.json', text]]))
  editIpRule(files, [...args])
  return files.get('ip-rule.json')!
}

function editIpRule(files: Files, a: string[]): void {
  const verb = a[0]
  const add = verb === 'add' || verb === 'a' || verb === 'append' || verb === 'prepend'
  if (!add && verb !== 'del' && verb !== 'delete' && verb !== 'd') throw new FixError(`ip rule ${verb ?? ''} is not applied by trace --fix (only add and del)`)
  const rule: Record<string, unknown> = {}
  let pref: number | undefined
  const sel = (key: 'src' | 'dst', v: string | undefined) => {
    const m = v === undefined ? null : /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(v)
    if (v === 'all' || v === 'any' || v === 'default') return
    if (!m || Number(m[2] ?? 32) > 32) throw new FixError(`ip rule: ${v ?? 'nothing'} is not an IPv4 address or prefix`)
    const len = Number(m[2] ?? 32)
    rule[key] = len === 32 ? m[1] : networkOf(m[1]!, len)
    if (len !== 32) rule[`${key}len`] = len
  }
  const port = (key: 'sport' | 'dport', v: string | undefined) => {
    const m = v === undefined ? null : /^(\d+)(?:-(\d+))?$/.exec(v)
    if (!m) throw new FixError(`ip rule ${key}: ${v ?? 'nothing'} is not a port or range`)
    if (m[2] === undefined || m[2] === m[1]) rule[key] = Number(m[1])
    else {
      rule[`${key}_start`] = Number(m[1])
      rule[`${key}_end`] = Number(m[2])
    }
  }
  for (let i = 1; i < a.length; i++) {
    const k = a[i]!
    const v = a[i + 1]
    if (k === 'not') rule.not = null
    else if (k === 'from') (sel('src', v), i++)
    else if (k === 'to') (sel('dst', v), i++)
    else if (k === 'fwmark') {
      const [m, mask] = (v ?? '').split('/')
      if (!m || !/^(0x[0-9a-fA-F]+|\d+)$/.test(m) || (mask !== undefined && !/^(0x[0-9a-fA-F]+|\d+)$/.test(mask))) throw new FixError(`ip rule fwmark: ${v ?? 'nothing'} is not MARK[/MASK]`)
      rule.fwmark = `0x${(Number(m) >>> 0).toString(16)}`
      if (mask !== undefined && Number(mask) >>> 0 !== 0xffffffff) rule.fwmask = `0x${(Number(mask) >>> 0).toString(16)}`
      i++
    } else if (k === 'iif' || k === 'dev') (rule.iif = v, i++)
    else if (k === 'oif') (rule.oif = v, i++)
    else if (k === 'ipproto') (rule.ipproto = v, i++)
    else if (k === 'sport' || k === 'dport') (port(k, v), i++)
    else if (k === 'pref' || k === 'preference' || k === 'priority' || k === 'prio') {
      if (!v || !/^\d+$/.test(v)) throw new FixError(`ip rule ${k}: ${v ?? 'nothing'} is not a number`)
      pref = Number(v)
      i++
    } else if (k === 'lookup' || k === 'table') {
      if (!v) throw new FixError(`ip rule ${k} needs a table`)
      rule.table = RULE_TABLES[v] ?? v
      i++
    } else if (k === 'blackhole' || k === 'unreachable' || k === 'prohibit') rule.action = k
    else throw new FixError(`ip rule: option ${k} is not applied by trace --fix`)
  }
  const list = jsonList(files, 'ip-rule.json')
  if (list.length === 0) list.push({priority: 0, src: 'all', table: 'local'}, {priority: 32766, src: 'all', table: 'main'}, {priority: 32767, src: 'all', table: 'default'})
  const body = (r: Record<string, unknown>) =>
    JSON.stringify(
      Object.entries(r)
        .filter(([k, v]) => k !== 'priority' && !(k === 'src' && v === 'all'))
        .sort(([x], [y]) => (x < y ? -1 : 1)),
    )
  if (!add) {
    const idx = list.findIndex((r) => (pref === undefined || r.priority === pref) && body(r) === body(rule))
    if (idx < 0) throw new FixError('ip rule del: no such rule (RTNETLINK answers: No such file or directory)')
    list.splice(idx, 1)
  } else {
    if (rule.table === undefined && rule.action === undefined) rule.table = 'main'
    // fib_default_rule_pref: one below the preference of the second rule (the first after local's 0)
    const priority = pref ?? Math.max(0, Number(list.find((r) => Number(r.priority) > 0)?.priority ?? 32766) - 1)
    const src = {src: 'all', ...rule}
    const entry = Object.fromEntries([['priority', priority], ...RULE_ORDER.filter((k) => k in src).map((k) => [k, (src as Record<string, unknown>)[k]])])
    // a new rule goes after the rules of the same preference
    let at = list.findIndex((r) => Number(r.priority) > priority)
    if (at < 0) at = list.length
    list.splice(at, 0, entry)
  }
  files.set('ip-rule.json', JSON.stringify(list) + '\n')
}

// -----------------------------------------------------------------------------------------------------
// ip addr add/del ADDR[/LEN] dev DEV: the address in ip-addr.json (`ip -j addr show`), and what the kernel's
// fib_add_ifaddr adds with it: a local route in table local (scope host, src the address) and, for a prefix
// shorter than the host's, the subnet's route in main (proto kernel, scope link, src the address). IPv4 only.

function jsonList(files: Files, name: string): Record<string, unknown>[] {
  const raw = files.get(name)
  if (raw === undefined || raw.trim() === '') return []
  try {
    const v = JSON.parse(raw) as unknown
    if (Array.isArray(v)) return v as Record<string, unknown>[]
  } catch {
    // reported below
  }
  throw new FixError(`${name} of the snapshot is not valid JSON`)
}

function editIpAddr(files: Files, a: string[]): void {
  const verb = a[0]
  const add = verb === 'add' || verb === 'a'
  if (!add && verb !== 'del' && verb !== 'delete' && verb !== 'd') throw new FixError(`ip addr ${verb ?? ''} is not applied by trace --fix (only add and del)`)
  const spec = a[1]
  const m = spec ? /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(spec) : null
  if (!m || m[1]!.split('.').some((o) => Number(o) > 255) || Number(m[2] ?? 32) > 32) throw new FixError(`ip addr ${verb}: ${spec ?? 'nothing'} is not an IPv4 address (ADDR or ADDR/LEN)`)
  const ip = m[1]!
  const len = Number(m[2] ?? 32)
  let dev: string | undefined
  for (let i = 2; i < a.length; i++) {
    if (a[i] === 'dev') dev = a[++i]
    else throw new FixError(`ip addr: option ${a[i]} is not applied by trace --fix`)
  }
  if (!dev) throw new FixError(`ip addr ${verb} ${spec}: no device (dev DEV)`)
  const links = jsonList(files, 'ip-addr.json')
  const link = links.find((l) => l.ifname === dev)
  if (!link) throw new FixError(`ip addr ${verb} ${spec} dev ${dev}: the snapshot has no device ${dev} (Cannot find device)`)
  const infos = Array.isArray(link.addr_info) ? (link.addr_info as Record<string, unknown>[]) : []
  const at = infos.findIndex((x) => x.family === 'inet' && x.local === ip && Number(x.prefixlen) === len)
  const routes = jsonList(files, 'ip-route.json')
  const local = (r: Record<string, unknown>) => r.type === 'local' && r.table === 'local' && r.dst === ip
  const subnet = len < 32 ? `${networkOf(ip, len)}/${len}` : undefined
  const prefixRoute = (r: Record<string, unknown>) => subnet !== undefined && r.dst === subnet && r.dev === dev && r.protocol === 'kernel' && (r.table ?? 'main') === 'main'
  if (add) {
    if (at >= 0) throw new FixError(`ip addr add ${spec} dev ${dev}: the address exists (RTNETLINK answers: File exists)`)
    infos.push({family: 'inet', local: ip, prefixlen: len, scope: 'global', label: dev, valid_life_time: 4294967295, preferred_life_time: 4294967295})
    link.addr_info = infos
    if (files.has('ip-route.json')) {
      if (!routes.some(local)) routes.push({type: 'local', dst: ip, table: 'local', protocol: 'kernel', scope: 'host', prefsrc: ip, dev, flags: []})
      if (subnet && !routes.some(prefixRoute)) routes.push({dst: subnet, dev, protocol: 'kernel', scope: 'link', prefsrc: ip, flags: []})
    }
  } else {
    if (at < 0) throw new FixError(`ip addr del ${spec} dev ${dev}: no such address (RTNETLINK answers: Cannot assign requested address)`)
    infos.splice(at, 1)
    const held = links.some((l) => Array.isArray(l.addr_info) && (l.addr_info as Record<string, unknown>[]).some((x) => x.family === 'inet' && x.local === ip))
    for (let i = routes.length - 1; i >= 0; i--) if ((!held && local(routes[i]!)) || prefixRoute(routes[i]!)) routes.splice(i, 1)
  }
  files.set('ip-addr.json', JSON.stringify(links) + '\n')
  if (files.has('ip-route.json')) files.set('ip-route.json', JSON.stringify(routes) + '\n')
}

function networkOf(ip: string, len: number): string {
  const n = ip.split('.').reduce((v, o) => v * 256 + Number(o), 0)
  const net = len === 0 ? 0 : n - (n % 2 ** (32 - len))
  return [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.')
}

/**
 * `ipvsadm --set TCP TCPFIN UDP` (ip_vs_set_timeout: a 0 leaves that timeout as it is) on ipvsadm-timeout.txt, as
 * `ipvsadm -Ln --timeout` prints it; the kernel defaults (900 120 300) stand for a value the snapshot does not have.
 */
function setIpvsTimeouts(files: Files, args: string[]): void {
  if (args.length !== 3 || !args.every((a) => /^\d+$/.test(a))) throw new FixError('ipvsadm --set needs three timeouts in seconds: TCP TCPFIN UDP')
  const m = /^Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)/m.exec(files.get('ipvsadm-timeout.txt') ?? '')
  const cur = m ? [m[1]!, m[2]!, m[3]!] : ['900', '120', '300']
  const next = args.map((a, i) => (Number(a) === 0 ? cur[i]! : String(Number(a))))
  files.set('ipvsadm-timeout.txt', `Timeout (tcp tcpfin udp): ${next.join(' ')}\n`)
}

// -----------------------------------------------------------------------------------------------------
// ipvsadm (-Sn lines: `-A -t VIP:PORT -s SCHED [-p T]` and `-a -t VIP:PORT -r RIP:PORT -g|-m|-i -w W`)

function editIpvsadm(files: Files, args: string[]): void {
  const op = args[0]
  if (!op) throw new FixError('ipvsadm needs a command')
  if (op === '--set') return setIpvsTimeouts(files, args.slice(1))
  const svcOpt = args.findIndex((w) => ['-t', '-u', '-f', '--tcp-service', '--udp-service', '--fwmark-service'].includes(w))
  if (svcOpt < 0) throw new FixError('ipvsadm: a service (-t, -u or -f) is needed')
  const kind = {'--tcp-service': '-t', '--udp-service': '-u', '--fwmark-service': '-f'}[args[svcOpt]!] ?? args[svcOpt]!
  const svc = `${kind} ${args[svcOpt + 1] ?? ''}`
  const rsOpt = args.findIndex((w) => w === '-r' || w === '--real-server')
  const rs = rsOpt >= 0 ? args[rsOpt + 1] : undefined
  const lines = (files.get('ipvsadm-Sn.txt') ?? '').split('\n').filter((l, i, arr) => !(l === '' && i === arr.length - 1))
  const isSvc = (l: string) => l.startsWith(`-A ${svc} `) || l === `-A ${svc}`
  const isRs = (l: string) => l.startsWith(`-a ${svc} `) && rs !== undefined && (splitWords(l)[4] === rs || splitWords(l)[4] === `${rs}:${(args[svcOpt + 1] ?? '').split(':').at(-1)}`)
  const opts = args.filter((_, i) => i !== 0 && i !== svcOpt && i !== svcOpt + 1 && i !== rsOpt && i !== rsOpt + 1)
  const svcIdx = lines.findIndex(isSvc)
  switch (op) {
    case '-A':
    case '--add-service':
      if (svcIdx >= 0) throw new FixError(`ipvsadm -A: service ${svc} exists`)
      lines.push(`-A ${svc} ${opts.join(' ')}`.trim())
      break
    case '-E':
    case '--edit-service':
      if (svcIdx < 0) throw new FixError(`ipvsadm -E: no service ${svc}`)
      lines[svcIdx] = `-A ${svc} ${opts.join(' ')}`.trim()
      break
    case '-D':
    case '--delete-service': {
      if (svcIdx < 0) throw new FixError(`ipvsadm -D: no service ${svc}`)
      for (let i = lines.length - 1; i >= 0; i--) if (isSvc(lines[i]!) || lines[i]!.startsWith(`-a ${svc} `)) lines.splice(i, 1)
      break
    }
    case '-a':
    case '--add-server': {
      if (svcIdx < 0) throw new FixError(`ipvsadm -a: no service ${svc}`)
      if (!rs) throw new FixError('ipvsadm -a needs -r')
      if (lines.some(isRs)) throw new FixError(`ipvsadm -a: ${rs} is already a destination of ${svc}`)
      const method = opts.find((o) => ['-g', '-m', '-i'].includes(o)) ?? '-g'
      const wi = opts.findIndex((o) => o === '-w' || o === '--weight')
      const weight = wi >= 0 ? opts[wi + 1] : '1'
      const port = rs.includes(':') ? rs : `${rs}:${(args[svcOpt + 1] ?? '').split(':').at(-1)}`
      let at = svcIdx + 1
      while (at < lines.length && lines[at]!.startsWith(`-a ${svc} `)) at++
      lines.splice(at, 0, `-a ${svc} -r ${port} ${method} -w ${weight}`)
      break
    }
    case '-e':
    case '--edit-server': {
      const i = lines.findIndex(isRs)
      if (i < 0) throw new FixError(`ipvsadm -e: ${rs ?? '?'} is not a destination of ${svc}`)
      const old = splitWords(lines[i]!)
      const method = opts.find((o) => ['-g', '-m', '-i'].includes(o)) ?? old.find((o) => ['-g', '-m', '-i'].includes(o)) ?? '-g'
      const wi = opts.findIndex((o) => o === '-w' || o === '--weight')
      const owi = old.indexOf('-w')
      const weight = wi >= 0 ? opts[wi + 1] : owi >= 0 ? old[owi + 1] : '1'
      lines[i] = `-a ${svc} -r ${old[4]} ${method} -w ${weight}`
      break
    }
    case '-d':
    case '--delete-server': {
      const i = lines.findIndex(isRs)
      if (i < 0) throw new FixError(`ipvsadm -d: ${rs ?? '?'} is not a destination of ${svc}`)
      lines.splice(i, 1)
      break
    }
    default:
      throw new FixError(`ipvsadm ${op} is not applied by trace --fix (only -A, -E, -D, -a, -e, -d)`)
  }
  files.set('ipvsadm-Sn.txt', lines.join('\n') + '\n')
}
