// check --vip for flows the random local kernel suite (test/kernel/random-local-scenarios.ts) found check silent on,
// or its fixes not repairing: a service on the host's own stack behind its filter, a VIP that is on no host and
// routed nowhere, the host's own connection DNATed in nat OUTPUT (from 127.0.0.1, or to a VIP it has no route
// for). The snapshots under __local__/<record>/ are the kernel's (namespaces of that suite, trimmed to the files
// the rules read); the record names are those of the gap sweeps (loc<seed>-<index>). In each, the kernel's
// connection failed, trace agreed, and the kernel connected with the fixes asserted here (see the report of the
// rerun of those seeds).
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import type {Finding} from '../../src/model/finding.js'
import {runRuleChecks} from '../../src/rules/index.js'
import {renderFixes} from '../../src/rules/engine/fix.js'
import type {FlowHint} from '../../src/rules/types.js'
import {applyFixes} from '../../src/dataplane/apply-fix.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {connectionOk} from './helpers.js'

const DIR = 'test/rules/__local__'
const TO_VIP = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
const FROM_LO = {vip: parseEndpoint('127.0.0.1:80')!, proto: 'tcp' as const, client: parseIp('127.0.0.1')!, clientPort: 40000}
const FROM_D = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('10.1.0.1')!, clientPort: 40000}

function load(name: string): HostSnapshot[] {
  return loadSnapshots(readdirSync(join(DIR, name)).sort().map((h) => join(DIR, name, h)))
}

function edit(hosts: readonly HostSnapshot[], host: string, file: string, f: (t: string) => string): HostSnapshot[] {
  return hosts.map((h) => (h.name === host ? hostFromFiles(h.name, h.source, new Map([...h.raw].map(([k, t]) => [k, k === file ? f(t) : t] as [string, string]))) : h))
}

/** The first judgement (no second round after the fixes): what check reports for these snapshots as they are. */
function judge(hosts: readonly HostSnapshot[], flow?: FlowHint): Finding[] {
  return renderFixes(runRuleChecks(flow ? {hosts, flows: [flow]} : {hosts}))
}

function fixed(hosts: readonly HostSnapshot[], findings: readonly Finding[]): HostSnapshot[] {
  return hosts.map((h) => {
    const cmds = findings.filter((f) => f.host === h.name).flatMap((f) => f.fix?.commands ?? [])
    if (cmds.length === 0) return h
    const r = applyFixes(h, cmds)
    expect(r.outcomes.filter((o) => !o.applied)).toEqual([])
    return r.host
  })
}

const rules = (fs: readonly Finding[]) => fs.map((f) => `${f.rule}@${f.host}`)
const commands = (fs: readonly Finding[]) => fs.flatMap((f) => f.fix?.commands ?? [])

describe("a flow to a service on the host's own stack (realserver-filter-blocks-service)", () => {
  test('INPUT policy DROP (loc11-17): the finding names this flow and the policy; the accept repairs it (trace --fix connects; judged again, quiet)', async () => {
    const hosts = load('loc11-17')
    expect(connectionOk(traceConnection(hosts, TO_VIP).connection)).toBe(false)
    const f = judge(hosts, TO_VIP)
    expect(rules(f)).toEqual(['realserver-filter-blocks-service@d'])
    expect(f[0]!.title).toBe("the host's firewall drops the connections to its own service")
    expect(f[0]!.message).toMatch(/198\.51\.100\.100:80 is served by d's own stack \(the flow asked about, from 203\.0\.113\.10: c routes 198\.51\.100\.100 via 203\.0\.113\.1 to d, and d holds 198\.51\.100\.100 on lk9-d0\)/)
    expect(f[0]!.message).toMatch(/SYN \(ctstate NEW\) dropped at INPUT by the DROP policy of filter INPUT \(iptables-save\.txt:3\)/)
    expect(commands(f)).toEqual(['iptables -t filter -A INPUT -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, TO_VIP, f)).result.connection)).toBe(true)
    expect(judge(fixed(hosts, f), TO_VIP)).toEqual([])
  })

  test('quiet without --vip (nothing says the port is a service), and for a port INPUT accepts', () => {
    const hosts = load('loc11-17')
    expect(judge(hosts)).toEqual([])
    const open = edit(hosts, 'd', 'iptables-save.txt', (t) => t.replace(':OUTPUT ACCEPT [', '-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n:OUTPUT ACCEPT ['))
    expect(open.find((h) => h.name === 'd')!.iptables?.ruleCount).toBe(1)
    expect(judge(open, TO_VIP)).toEqual([])
  })

  test('a REJECT before the accept (loc12-16): the accept goes before the REJECT, where it takes effect', async () => {
    const hosts = load('loc12-16')
    const f = judge(hosts, TO_VIP)
    expect(rules(f)).toEqual(['realserver-filter-blocks-service@d'])
    expect(f[0]!.message).toMatch(/rejected at INPUT by rule 1 of filter INPUT, REJECT with icmp-port-unreachable \(iptables-save\.txt:6\)/)
    expect(commands(f)).toEqual(['iptables -t filter -I INPUT 1 -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, TO_VIP, f)).result.connection)).toBe(true)
  })
})

describe('a VIP on no host, routed nowhere (route-drops-service)', () => {
  test('loc11-8: said, with the route that brings the packets to d, and a manual fix (no command: which host should hold it is not in the snapshots)', () => {
    const hosts = load('loc11-8')
    expect(traceConnection(hosts, TO_VIP).firstFailure?.reason).toMatch(/no route to 198\.51\.100\.100/)
    const f = judge(hosts, TO_VIP)
    expect(rules(f)).toEqual(['route-drops-service@d'])
    expect(f[0]!.message).toMatch(/arrive at d \(c routes 198\.51\.100\.100 via 203\.0\.113\.1 to d\); 198\.51\.100\.100 is an address of none of the hosts given/)
    expect(f[0]!.message).toMatch(/no route at all/)
    expect(f[0]!.evidence.map((e) => `${e.host}:${e.file}:${e.line}`)).toEqual(['c:ip-route.json:1'])
    expect(commands(f)).toEqual([])
    expect(f[0]!.fix?.summary).toMatch(/put 198\.51\.100\.100 on the host meant to serve it/)
  })

  test('quiet without --vip, and when d has a route for the VIP', () => {
    const hosts = load('loc11-8')
    expect(judge(hosts)).toEqual([])
    const routed = edit(hosts, 'd', 'ip-route.json', (t) => t.replace(/^\[/, '[{"dst":"default","gateway":"203.0.113.10","dev":"lk9-d0","flags":[]},'))
    expect(rules(judge(routed, TO_VIP))).not.toContain('route-drops-service@d')
  })
})

describe('the host connects to 127.0.0.1 and nat OUTPUT DNATs it to a backend (localhost-dnat)', () => {
  test('loc11-24: filter OUTPUT rejects the DNATed SYN besides route_localnet and the masquerade: all three fixes, and trace --fix connects', async () => {
    const hosts = load('loc11-24')
    const f = judge(hosts, FROM_LO)
    expect(rules(f)).toEqual(['localhost-dnat@d'])
    expect(f[0]!.message).toMatch(/SYN \(ctstate NEW\) rejected at OUTPUT by rule 1 of filter OUTPUT.*\(filter OUTPUT sees the connection addressed to 10\.1\.0\.10:8080\)/)
    expect(commands(f)).toEqual([
      'sysctl -w net.ipv4.conf.lk9-d1.route_localnet=1',
      'iptables -t nat -A POSTROUTING -s 127.0.0.0/8 -d 10.1.0.10/32 -p tcp -m tcp --dport 8080 -j MASQUERADE',
      'iptables -t filter -I OUTPUT 1 -d 10.1.0.10/32 -p tcp -m tcp --dport 8080 -j ACCEPT',
    ])
    expect(connectionOk((await traceWithFixes(hosts, FROM_LO, f)).result.connection)).toBe(true)
  })

  test('loc11-5: route_localnet and the MASQUERADE are right, the filter is not (OUTPUT to the backend, INPUT from it): its own title, accepts for both; fixed, quiet', async () => {
    const hosts = load('loc11-5')
    const f = judge(hosts, FROM_LO)
    expect(rules(f)).toEqual(['localhost-dnat@d'])
    expect(f[0]!.title).toBe("the host's own connections DNATed from 127/8 are dropped after the DNAT")
    expect(f[0]!.message).toMatch(/server's SYN\/ACK \(ctstate ESTABLISHED\) dropped at INPUT by the DROP policy of filter INPUT .*before the DNAT is undone/)
    expect(commands(f)).toEqual(['iptables -t filter -A OUTPUT -d 10.1.0.10/32 -p tcp -m tcp --dport 8080 -j ACCEPT', 'iptables -t filter -A INPUT -s 10.1.0.10/32 -p tcp -m tcp --sport 8080 -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, FROM_LO, f)).result.connection)).toBe(true)
    expect(judge(fixed(hosts, f), FROM_LO)).toEqual([])
    // the same without --vip: the rule does not need the flow
    expect(commands(judge(hosts))).toEqual(commands(f))
  })

  test('loc14-14: a mark set in raw OUTPUT sends the DNATed SYN to a blackhole when the DNAT routes it again: said with the policy rule and the MARK, and an ACCEPT before the MARK for the connection (still 127.0.0.1:80 there); trace --fix connects', async () => {
    const hosts = load('loc14-14')
    const f = judge(hosts, FROM_LO)
    expect(rules(f)).toEqual(['localhost-dnat@d'])
    expect(f[0]!.message).toMatch(/routes the SYN again \(ip_route_me_harder\) with mark 0x1 and finds a blackhole route to 10\.1\.0\.10 \(101: from all fwmark 0x1 lookup 101\): it is dropped there \(iptables-save\.txt:5 sets that mark; without it the route is usable\)/)
    expect(f[0]!.evidence.map((e) => e.text)).toEqual(expect.arrayContaining(['101: from all fwmark 0x1 lookup 101', '-A OUTPUT -p tcp -j MARK --set-xmark 0x1/0xffffffff']))
    expect(commands(f)[0]).toBe('iptables -t raw -I OUTPUT 1 -d 127.0.0.1/32 -p tcp -m tcp --dport 80 -j ACCEPT')
    expect(connectionOk((await traceWithFixes(hosts, FROM_LO, f)).result.connection)).toBe(true)
    // without the policy rule's blackhole the mark routes like no mark: that part is not said
    const open = edit(hosts, 'd', 'ip-route.json', (t) => t.replace('{"type":"blackhole","dst":"default","table":"101","flags":[]},', ''))
    expect(judge(open, FROM_LO).map((x) => x.message).join('\n')).not.toMatch(/ip_route_me_harder/)
  })
})

describe('the host connects to a VIP it DNATs in nat OUTPUT (local-client-blocked)', () => {
  test('loc12-25: no route for the VIP (connect() fails before nat OUTPUT) and INPUT drops the answers: a route the way the backend goes and an ESTABLISHED accept; trace --fix connects', async () => {
    const hosts = load('loc12-25')
    expect(traceConnection(hosts, FROM_D).firstFailure?.reason).toMatch(/no route to 198\.51\.100\.100/)
    const f = judge(hosts, FROM_D)
    expect(rules(f)).toEqual(['local-client-blocked@d'])
    expect(f[0]!.message).toMatch(/d has no route for 198\.51\.100\.100 itself: connect\(\) looks the original destination up before nat OUTPUT runs/)
    expect(commands(f)).toEqual(['ip route add 198.51.100.100/32 dev lk9-d1', 'iptables -t filter -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, FROM_D, f)).result.connection)).toBe(true)
    expect(judge(fixed(hosts, f), FROM_D)).toEqual([])
  })

  test('loc9-4: the VIP is on d itself (lo): the DNATed SYN dropped in OUTPUT is this rule alone (no forwarded path from c for a client that is d)', async () => {
    const hosts = load('loc9-4')
    const f = judge(hosts, FROM_D)
    expect(rules(f)).toEqual(['local-client-blocked@d'])
    expect(f[0]!.message).not.toMatch(/no route/)
    expect(commands(f)).toEqual(['iptables -t filter -A OUTPUT -d 10.1.0.10/32 -p tcp -m tcp --dport 8080 -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, FROM_D, f)).result.connection)).toBe(true)
  })
})

describe("answers marked in mangle OUTPUT and routed again to a dead route (route-drops-service)", () => {
  test("mark-loc11-3 (a DNAT to the host's own 127.0.0.1:8080, mangle OUTPUT marks every TCP packet 0x1, fwmark 0x1 looks up a blackhole): the SYN/ACK is said dropped there, with an ACCEPT for the answers before the MARK; with the INPUT accept, trace --fix connects", async () => {
    const hosts = load('mark-loc11-3')
    const f = judge(hosts, TO_VIP)
    expect(rules(f)).toEqual(['filter-blocks-vip@d', 'route-drops-service@d'])
    const r = f.find((x) => x.rule === 'route-drops-service')!
    expect(r.message).toMatch(/d's own service of TCP 198\.51\.100\.100:80 \(DNAT\) answers from 127\.0\.0\.1:8080 .*mangle OUTPUT marks them 0x1, iptables-save\.txt:8, and the kernel routes them again with that mark\): d looks them up to a blackhole route/)
    expect(r.fix?.commands).toEqual(['iptables -t mangle -I OUTPUT 1 -s 127.0.0.1/32 -p tcp -m tcp --sport 8080 -j ACCEPT'])
    expect(connectionOk((await traceWithFixes(hosts, TO_VIP, f)).result.connection)).toBe(true)
    expect(judge(fixed(hosts, f), TO_VIP)).toEqual([])
  })

  test('quiet without the blackhole (table 101 then falls through to main), and without --vip the DNAT service is still followed', () => {
    const hosts = load('mark-loc11-3')
    const open = edit(hosts, 'd', 'ip-route.json', (t) => t.replace('{"type":"blackhole","dst":"default","table":"101","flags":[]},', ''))
    expect(rules(judge(open, TO_VIP))).toEqual(['filter-blocks-vip@d'])
    expect(rules(judge(hosts))).toContain('route-drops-service@d')
  })
})
