// check on nft rulesets where the random nft kernel suite (test/kernel/random-nft.kernel.test.ts) found it silent
// or its fix incomplete while trace agreed with the kernel: the snapshots the suite captured from the namespaces
// (fixtures/nft-gaps/NAME/HOST, see its README), told the flow. Each fix is replayed by trace --fix (the kernel
// confirmed the same outcome when the suite ran check's fixes in the namespaces), and each behaviour has a
// variant that stays quiet.
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {runRules} from '../../src/rules/index.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {traceConnection} from '../../src/services/trace.js'
import {applyFixes} from '../../src/dataplane/apply-fix.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {NftFirewall} from '../../src/rules/engine/nft-firewall.js'
import {nftShadows} from '../../src/rules/engine/nft-view.js'
import {HostView} from '../../src/rules/engine/host.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket} from '../../src/rules/engine/packets.js'

const DIR = 'fixtures/nft-gaps'
const FLOW = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}

function load(name: string): HostSnapshot[] {
  return loadSnapshots(readdirSync(`${DIR}/${name}`, {withFileTypes: true}).filter((d) => d.isDirectory()).map((d) => `${DIR}/${name}/${d.name}`))
}

/** The hosts with commands applied to copies (nft syntax, as check writes them). */
function edited(hosts: readonly HostSnapshot[], host: string, cmds: readonly string[]): HostSnapshot[] {
  return hosts.map((h) => {
    if (h.name !== host) return h
    const r = applyFixes(h, cmds)
    expect(r.outcomes.filter((o) => !o.applied)).toEqual([])
    return r.host
  })
}

function check(hosts: readonly HostSnapshot[]) {
  const findings = runRules({hosts, flows: [FLOW]})
  const commands = findings.flatMap((f) => (f.fix?.commands ?? []).map((c) => `${f.host}: ${c}`))
  return {findings, commands, rules: findings.map((f) => `${f.rule}@${f.host}`)}
}

async function repaired(hosts: readonly HostSnapshot[]) {
  const r = await traceWithFixes(hosts, FLOW, runRules({hosts, flows: [FLOW]}))
  expect(r.outcomes.filter((o) => !o.applied)).toEqual([])
  return r.result.connection
}

const OK = {connected: true, reply: true, closed: true}
const FAILED = {connected: false, reply: false, closed: false}

describe('a second base chain of the hook that drops the packet gets the accept too (rn11-1)', () => {
  // ip lk9_filter forward (priority 0) rejects the untracked SYN; ip lk9_fw2 forward (filter + 20) has policy drop
  const hosts = load('rn11-1')

  test('fires: the accept goes into both forward chains, and the connection is repaired', async () => {
    expect(traceConnection(hosts, FLOW).connection).toEqual(FAILED)
    const c = check(hosts)
    expect(c.rules).toContain('forward-blocks-routed-vip@d')
    expect(c.commands).toContainEqual(expect.stringMatching(/^d: nft insert rule ip lk9_filter forward position \d+ ip daddr 198\.51\.100\.100 tcp dport 80 accept$/))
    expect(c.commands).toContainEqual('d: nft add rule ip lk9_fw2 forward ip daddr 198.51.100.100 tcp dport 80 accept')
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: a second chain that already accepts the packet gets no rule', () => {
    const c = check(edited(hosts, 'd', ['nft insert rule ip lk9_fw2 forward ip daddr 198.51.100.100 accept']))
    expect(c.commands.some((x) => x.includes('lk9_fw2'))).toBe(false)
    expect(c.commands).toContainEqual(expect.stringMatching(/^d: nft insert rule ip lk9_filter forward /))
  })
})

describe('`ct state invalid drop` in a chain before conntrack drops every packet; the fix moves it after conntrack (rn12-12)', () => {
  // inet lk9_early_raw prerouting at -250: `ct state invalid drop` (nft_ct_get_eval: no entry yet, state invalid)
  const hosts = load('rn12-12')

  test('fires: forward-blocks-routed-vip names it; the rule moves to a chain at -150; the connection is repaired', async () => {
    const c = check(hosts)
    const f = c.findings.find((x) => x.rule === 'forward-blocks-routed-vip')!
    expect(f.message).toMatch(/before conntrack/)
    expect(f.fix!.summary).toMatch(/^move nft rule inet lk9_early_raw prerouting handle 2 after conntrack/)
    expect(f.evidence.some((e) => /inet lk9_early_raw prerouting: ct state invalid drop # handle 2/.test(e.text))).toBe(true)
    expect(f.fix!.commands).toEqual([
      'nft delete rule inet lk9_early_raw prerouting handle 2',
      "nft add chain inet lk9_early_raw prerouting_tracked '{ type filter hook prerouting priority -150; policy accept; }'",
      'nft insert rule inet lk9_early_raw prerouting_tracked ip daddr 198.51.100.100 tcp dport 80 accept',
      'nft add rule inet lk9_early_raw prerouting_tracked ct state invalid drop',
      'nft insert rule inet lk9_early_raw prerouting_tracked ip saddr 198.51.100.100 meta l4proto tcp accept',
    ])
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: the same rule after conntrack (priority -150) lets the connection through and is not named', () => {
    const moved = edited(hosts, 'd', [
      'nft delete rule inet lk9_early_raw prerouting handle 2',
      "nft add chain inet lk9_early_raw prerouting_tracked '{ type filter hook prerouting priority -150; policy accept; }'",
      'nft add rule inet lk9_early_raw prerouting_tracked ct state invalid drop',
    ])
    const c = check(moved)
    expect(c.findings.filter((f) => f.evidence.some((e) => /ct state invalid drop/.test(e.text)))).toEqual([])
  })
})

describe('an untracked DNAT service: the fix deletes the nft notrack rule (rn12-19)', () => {
  const hosts = load('rn12-19')

  test('fires: dnat-untracked gives the delete command by handle (it gave none: check silent)', async () => {
    const c = check(hosts)
    const f = c.findings.find((x) => x.rule === 'dnat-untracked')!
    expect(f.fix!.commands).toEqual([expect.stringMatching(/^nft delete rule inet lk9_raw prerouting handle \d+$/)])
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: without the notrack rule', () => {
    const cmd = check(hosts).findings.find((x) => x.rule === 'dnat-untracked')!.fix!.commands[0]!
    expect(check(edited(hosts, 'd', [cmd])).rules).not.toContain('dnat-untracked@d')
  })
})

describe('a DNAT with no destination (fib daddr type local) is probed at the VIP of the flow asked about (rn10-8)', () => {
  const hosts = load('rn10-8')

  test('fires: dnat-untracked (the notrack names the VIP, not the host\'s primary address)', async () => {
    expect(check(hosts).rules).toContain('dnat-untracked@d')
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: a flow to another port than the DNAT rule\'s', () => {
    const findings = runRules({hosts, flows: [{...FLOW, vip: parseEndpoint('198.51.100.100:81')!}]})
    expect(findings.map((f) => f.rule)).not.toContain('dnat-untracked')
  })
})

describe('a policy reached through a goto of the base chain: the accept goes before the goto (rn12-15)', () => {
  // inet lk9_filter forward: `goto fwd_allow`, whose `ct state new return` ends the base chain (policy drop)
  const hosts = load('rn12-15')
  const gotoHandle = () => hosts.find((h) => h.name === 'd')!.nft!.tables.find((t) => t.name === 'lk9_filter')!.chains.get('forward')!.rules.find((r) => r.stmts.some((s) => s.kind === 'verdict' && s.verdict.kind === 'goto'))!.handle

  test('fires: inserted at the goto, not appended where the packet never arrives', async () => {
    const c = check(hosts)
    expect(c.commands).toContainEqual(`d: nft insert rule inet lk9_filter forward position ${gotoHandle()} ip daddr 10.1.0.10 tcp dport 8080 accept`)
    expect(c.commands.filter((x) => x.startsWith('d: nft add rule inet lk9_filter forward'))).toEqual([])
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: without the goto the accept is appended at the chain\'s end as before', () => {
    const c = check(edited(hosts, 'd', [`nft delete rule inet lk9_filter forward handle ${gotoHandle()}`]))
    expect(c.commands).toContainEqual('d: nft add rule inet lk9_filter forward ip daddr 10.1.0.10 tcp dport 8080 accept')
  })
})

describe("the client's packets notracked on a routed path: the realserver's replies meet conntrack first (rn10-28)", () => {
  // the SYN/ACK back through d has no entry: INVALID, dropped by `ct state vmap { invalid : drop ... }`
  const hosts = load('rn10-28')

  test('fires: the replies from the VIP are accepted too', async () => {
    const c = check(hosts)
    expect(c.commands).toContainEqual(expect.stringMatching(/^d: nft insert rule inet lk9_filter forward position \d+ ip saddr 198\.51\.100\.100 meta l4proto tcp accept$/))
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: without the notrack the replies are ESTABLISHED and not named', () => {
    const d = hosts.find((h) => h.name === 'd')!
    const raw = d.nft!.tables.flatMap((t) => [...t.chains.values()].flatMap((c) => c.rules)).find((r) => r.stmts.some((s) => s.kind === 'notrack'))!
    const c = check(edited(hosts, 'd', [`nft delete rule ${raw.family} ${raw.table} ${raw.chain} handle ${raw.handle}`]))
    expect(c.commands.some((x) => x.includes('ip saddr 198.51.100.100'))).toBe(false)
  })
})

describe('a routed VIP dropped before routing by a prerouting filter chain (rn12-2)', () => {
  const hosts = load('rn12-2')

  test('fires: forward-blocks-routed-vip names the drop at prerouting (check said nothing about the director)', async () => {
    const c = check(hosts)
    expect(c.rules).toContain('forward-blocks-routed-vip@d')
    expect(c.commands).toContainEqual(expect.stringMatching(/^d: nft insert rule inet lk9_post_dnat prerouting position \d+ ip daddr 198\.51\.100\.100 tcp dport 80 accept$/))
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: without the drop', () => {
    const d = hosts.find((h) => h.name === 'd')!
    const drop = d.nft!.tables.find((t) => t.name === 'lk9_post_dnat')!.chains.get('prerouting')!.rules[0]!
    expect(check(edited(hosts, 'd', [`nft delete rule inet lk9_post_dnat prerouting handle ${drop.handle}`])).rules).not.toContain('forward-blocks-routed-vip@d')
  })
})

describe('two nat chains at the same priority: the later registered runs first (rn11-7)', () => {
  test('fires: the DNAT the kernel takes (inet lk9_early, later in the dump) is the one check fixes for', () => {
    const c = check(load('rn11-7'))
    expect(c.commands).toContainEqual(expect.stringMatching(/^d: nft insert rule inet lk9_filter forward position \d+ ip daddr 10\.1\.0\.10 tcp dport 8080 accept$/))
  })

  const manifest = JSON.stringify({format: 'lvsdoctor-snapshot/1', host: 'd', role: 'director'})
  const nat = (table: string, prio: number, to: string) => [
    {table: {family: 'ip', name: table, handle: 1}},
    {chain: {family: 'ip', table, name: 'pre', handle: 2, type: 'nat', hook: 'prerouting', prio, policy: 'accept'}},
    {rule: {family: 'ip', table, chain: 'pre', handle: 3, expr: [{match: {op: '==', left: {payload: {protocol: 'tcp', field: 'dport'}}, right: 80}}, {dnat: {addr: to}}]}},
  ]
  const dnatOf = (a: number, b: number) => {
    const snap = hostFromFiles('d', 'test:d', new Map([['manifest.json', manifest], ['nft-ruleset.json', JSON.stringify({nftables: [{metainfo: {json_schema_version: 1}}, ...nat('first', a, '10.0.0.1'), ...nat('second', b, '10.0.0.2')]})]]))
    const h = new HostView(snap)
    const fw = new NftFirewall([], nftShadows(snap.nft!, {iptablesBeside: false}))
    const pkt = flowPacket({src: parseIp('203.0.113.10')!, sport: 40000, dst: parseIp('192.0.2.100')!, dport: 80, proto: 'tcp'}, 'SYN')
    const r = fw.runHook('PREROUTING', pkt, h.env({iif: 'eth0', ct: ctView('NEW')}), true)
    return r.nat?.to?.ip ? `${r.nat.to.ip.value >> 0n & 0xffn}` : undefined
  }

  test('unit: equal priorities, the second table binds', () => {
    expect(dnatOf(-100, -100)).toBe('2')
  })

  test('quiet: different priorities, the lower binds whatever the order', () => {
    expect(dnatOf(-110, -100)).toBe('1')
    expect(dnatOf(-100, -110)).toBe('2')
  })
})

describe('the moved conntrack-state rule gets the accept ahead of it (rn13-8: replies go around the director)', () => {
  // ip lnf_early_raw prerouting (raw): `ip daddr VIP ct state invalid counter drop`; moved after conntrack it would
  // still drop the client's ACK, which conntrack finds INVALID on a one-way path (SYN_SENT, no SYN/ACK seen)
  const hosts = load('rn13-8')

  test('fires: the new chain accepts the VIP\'s packets before the moved rule; the connection is repaired', async () => {
    const f = check(hosts).findings.find((x) => x.rule === 'forward-blocks-routed-vip')!
    const cmds = f.fix!.commands
    const accept = cmds.indexOf('nft insert rule ip lnf_early_raw prerouting_tracked ip daddr 198.51.100.100 tcp dport 80 accept')
    const moved = cmds.findIndex((c) => /^nft add rule ip lnf_early_raw prerouting_tracked ip daddr 198\.51\.100\.100 ct state invalid counter/.test(c))
    expect(accept).toBeGreaterThan(0)
    expect(moved).toBeGreaterThan(accept)
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: the rule moved with its accept, check names nothing more on the director', () => {
    const f = check(hosts).findings.find((x) => x.rule === 'forward-blocks-routed-vip')!
    expect(check(edited(hosts, 'd', f.fix!.commands)).rules.filter((r) => r.endsWith('@d'))).toEqual([])
  })
})

describe("the director masquerades the routed VIP's packets: the replies come back through it (rn13-9)", () => {
  // d: `oifname "lnf-d1" masquerade`; r answers 10.1.0.1 (d), although its route to the client goes by g; d's
  // forward chain rejects the replies (its accepts name 10.1.0.0/24 as destination and 10.1.0.10 as source)
  test('fires: the replies from the VIP are accepted in the forward chain; the connection is repaired', async () => {
    const hosts = load('rn13-9')
    const c = check(hosts)
    const f = c.findings.find((x) => x.rule === 'forward-blocks-routed-vip')!
    expect(f.message).toMatch(/rewrites the client's address to d's own/)
    expect(f.fix!.commands).toContainEqual(expect.stringMatching(/^nft insert rule inet lnf_filter forward position \d+ ip saddr 198\.51\.100\.100 meta l4proto tcp accept$/))
    expect(await repaired(hosts)).toEqual(OK)
  })

  test('quiet: a forward chain that accepts `ct status snat` lets the replies through (rn13-7: r sends them by g, another rule\'s matter)', () => {
    const c = check(load('rn13-7'))
    expect(c.rules).not.toContain('forward-blocks-routed-vip@d')
  })
})
