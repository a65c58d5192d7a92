// Forwarded DR-shaped paths (a host routes a VIP unchanged to the realserver holding it; engine/forward.ts),
// fwmark policy routes, and the flows a caller asks about (RuleContext.flows, as trace --fix knows them).
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {world} from '../../src/rules/engine/world.js'
import type {RuleContext} from '../../src/rules/types.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {applyFixes, editedScenario, loadScenario} from './helpers.js'
import {checkHosts} from '../../src/services/check.js'

const flow = (vip: string, client = '203.0.113.10') => ({vip: parseEndpoint(vip)!, proto: 'tcp' as const, client: parseIp(client)!, clientPort: 40000})

/** A copy of a host with some of its raw files replaced. */
function edited(h: HostSnapshot, files: Record<string, string>): HostSnapshot {
  const raw = new Map(h.raw)
  for (const [k, v] of Object.entries(files)) raw.set(k, v)
  return hostFromFiles(h.name, h.source, raw)
}

describe('forwarded DR-shaped paths', () => {
  test('the director that routes the VIP to the realserver is found, with the realserver\'s way back around it', () => {
    const w = world({hosts: loadScenario('fwd-dr-state-new')})
    expect(w.forwards.map((f) => [f.host.name, f.realserver.name, f.proto, f.port, f.rsIif, f.ret.kind])).toEqual([['director', 'rs1', 'tcp', 80, 'ldf-eth0', 'around']])
    expect(w.services).toEqual([])
  })

  test('a realserver that answers through the director makes the path two-way: the stateful rule is no dr-stateful-filter finding, but FORWARD must pass the replies too', () => {
    const [d, rs] = loadScenario('fwd-dr-state-new')
    const routes = JSON.parse(rs!.raw.get('ip-route.json')!) as {dst: string; gateway?: string}[]
    const viaDirector = routes.map((r) => (r.dst === 'default' ? {...r, gateway: '10.0.0.1', dev: 'ldf-eth0'} : r))
    const hosts = [d!, edited(rs!, {'ip-route.json': JSON.stringify(viaDirector)})]
    expect(world({hosts}).forwards[0]!.ret.kind).toBe('through')
    // the NEW-only accept passes the SYN; the DROP policy takes the SYN/ACK from the VIP and the client's ESTABLISHED ACK
    const f = runRules({hosts})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([
      ['forward-blocks-routed-vip', ['iptables -t filter -A FORWARD -s 198.51.100.100/32 -p tcp -m tcp --sport 80 -j ACCEPT', 'iptables -t filter -A FORWARD -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j ACCEPT']],
    ])
    expect(f[0]!.message).toMatch(/reply: server's SYN\/ACK \(ctstate ESTABLISHED\) dropped at FORWARD/)
  })

  test('without the realserver\'s snapshot nothing proves the path one-way: no finding', () => {
    const [d] = loadScenario('fwd-dr-state-new')
    expect(runRules({hosts: [d!]})).toEqual([])
  })

  test('the fix replaces the NEW-only accept by its stateless form', () => {
    const f = runRules({hosts: loadScenario('fwd-dr-state-new')})
    expect(f.map((x) => [x.rule, x.host, x.fix?.commands])).toEqual([['dr-stateful-filter', 'director', ['iptables -t filter -R FORWARD 1 -p tcp -m tcp --dport 80 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/handshake ACK \(ctstate INVALID\) dropped at FORWARD/)
  })

  test('the realserver of a routed path is not asked to hide the VIP from ARP (the director routes to its address)', () => {
    const [d, rs] = loadScenario('fwd-dr-state-new-fixed')
    const sysctl = rs!.raw.get('sysctl.txt')!.replace(/^net\.ipv4\.conf\.all\.arp_(ignore|announce) = \d+$/gm, 'net.ipv4.conf.all.arp_$1 = 0')
    const hosts = [d!, edited(rs!, {'sysctl.txt': sysctl})]
    expect(runRules({hosts}).map((f) => f.rule)).toEqual([])
    // alone, the realserver is still checked (nothing says how its VIP is reached)
    expect(runRules({hosts: [hosts[1]!]}).map((f) => f.rule)).toEqual(['dr-realserver-arp'])
  })
})

describe('fwmark: policy routes and the flow asked about', () => {
  test('a policy route whose mark nothing sets fires, with a MARK rule for the VIP', () => {
    const f = runRules({hosts: loadScenario('fwmark-policy-route-unmarked')})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['fwmark-service-unmarked', ['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -j MARK --set-mark 0x1']]])
    expect(f[0]!.message).toMatch(/unmarked, it is routed via 192\.0\.2\.254/)
  })

  test('told the flow, the MARK rule it proposes matches the flow\'s port', () => {
    const f = runRules({hosts: loadScenario('fwmark-policy-route-unmarked'), flows: [flow('198.51.100.100:443')]})
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -p tcp -m tcp --dport 443 -j MARK --set-mark 0x1']])
  })

  test('a MARK rule for another port is fine on its own, and a finding for the flow asked about', () => {
    const hosts = loadScenario('fwmark-policy-route-unmarked-fixed') // marks :80
    expect(runRules({hosts})).toEqual([])
    expect(runRules({hosts, flows: [flow('198.51.100.100:80')]})).toEqual([])
    const f = runRules({hosts, flows: [flow('198.51.100.100:8080')]})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['fwmark-service-unmarked', ['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -p tcp -m tcp --dport 8080 -j MARK --set-mark 0x1']]])
    expect(f[0]!.message).toMatch(/TCP 198\.51\.100\.100:8080, leaves mangle PREROUTING with mark 0x0/)
  })

  test('a flow to an address the mark is not for is none of the rule\'s business', () => {
    const hosts = loadScenario('fwmark-policy-route-unmarked-fixed')
    expect(runRules({hosts, flows: [flow('192.0.2.77:80')]})).toEqual([])
  })

  test('the IPVS fwmark service of fixtures/trace/lvs-fwmark-unmarked (MARK on :443, the flow is :80): found, and trace --fix connects', async () => {
    const hosts = loadSnapshots(['director', 'rs1', 'rs2'].map((h) => `fixtures/trace/lvs-fwmark-unmarked/${h}`))
    expect(runRules({hosts}).filter((f) => f.rule === 'fwmark-service-unmarked')).toEqual([])
    const o = flow('198.51.100.100:80')
    const ctx: RuleContext = {hosts, flows: [o]}
    const f = runRules(ctx).filter((x) => x.rule === 'fwmark-service-unmarked')
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j MARK --set-mark 0x1']])
    const fixed = await traceWithFixes(hosts, o, runRules(ctx))
    expect(fixed.outcomes.filter((x) => !x.applied)).toEqual([])
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  })
})

describe('forward-drops-nat-replies', () => {
  test('LVS-NAT with net.ipv4.vs.conntrack=0: the replies are not ESTABLISHED, so the fix accepts them by address and source port', () => {
    const [d, rs] = loadScenario('lvs-nat-forward-drop')
    const hosts = [edited(d!, {'sysctl.txt': d!.raw.get('sysctl.txt')!.replace('net.ipv4.vs.conntrack = 1', 'net.ipv4.vs.conntrack = 0')}), rs!]
    const report = checkHosts(hosts, {version: 'test'})
    expect(report.findings.map((f) => [f.rule, f.fix?.commands])).toEqual([['forward-drops-nat-replies', ['iptables -t filter -A FORWARD -s 10.0.0.11/32 -p tcp -m tcp --sport 80 -j ACCEPT']]])
    const again = checkHosts(applyFixes(hosts, report.findings), {version: 'test'})
    expect(again.findings.map((f) => f.rule)).toEqual([])
  })

  test('replies that go around the balancer are nat-reply-bypasses-director\'s, and still checked: its fix brings them back through FORWARD', () => {
    const [d, rs] = loadScenario('dnat-forward-drop')
    const routes = (JSON.parse(rs!.raw.get('ip-route.json')!) as {dst: string}[]).map((r) => (r.dst === 'default' ? {...r, gateway: '10.0.0.254'} : r))
    const hosts = [d!, edited(rs!, {'ip-route.json': JSON.stringify(routes)})]
    const f = runRules({hosts})
    expect(f.map((x) => x.rule)).toEqual(['nat-reply-bypasses-director', 'forward-drops-nat-replies'])
    expect(f[1]!.message).toMatch(/replies go around director now \(see nat-reply-bypasses-director\); once they come back through it/)
    expect(f[1]!.fix?.commands).toEqual(['iptables -t filter -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'])
  })
})

describe('flows asked about', () => {
  test('a loopback client (a local process) does not replace the outside client the rules reason about', () => {
    const hosts = loadScenario('fwd-dr-state-new')
    expect(world({hosts, flows: [flow('198.51.100.100:80', '127.0.0.1')]}).client.ip).toEqual(world({hosts}).client.ip)
    expect(world({hosts, flows: [flow('198.51.100.100:80', '203.0.113.77')]}).client.ip).toEqual(parseIp('203.0.113.77'))
  })
})

test('no flow and no rule naming the routed VIP\'s port: the TCP port 80 probe is said to stand in, with the --vip that checks the real one', () => {
  const noPort = editedScenario('fwd-dr-state-new-fixed', 'director', (f, t) => (f === 'iptables-save.txt' ? t.replace('-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT', '-A FORWARD -d 10.9.9.9/32 -j ACCEPT') : t))
  const f = runRules({hosts: noPort}).filter((x) => x.rule === 'forward-blocks-routed-vip')
  expect(f.length).toBe(1)
  expect(f[0]!.message).toMatch(/:80 \(routed by director to rs1 via [\d.]+; port 80 stands in: no rule names the VIP's port, check --vip [\d.]+:PORT checks the real one\)/)
  // a rule naming the port: no stand-in
  expect(runRules({hosts: editedScenario('fwd-dr-state-new-fixed', 'director', (_f, t) => t)}).some((x) => x.message.includes('stands in'))).toBe(false)
})
