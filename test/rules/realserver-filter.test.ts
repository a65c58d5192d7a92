// realserver-filter-blocks-service (the realserver's own INPUT/OUTPUT drop the balanced connection) and
// forward-blocks-routed-vip (a host's FORWARD drops the VIP it routes to a realserver): what fires, what stays
// quiet, and that the fixes make trace connect.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {loadScenario} from './helpers.js'

const flow = (vip: string, client = '203.0.113.10') => ({vip: parseEndpoint(vip)!, proto: 'tcp' as const, client: parseIp(client)!, clientPort: 40000})

/** A copy of a host with some of its raw files replaced. */
function edited(h: HostSnapshot, files: Record<string, string>): HostSnapshot {
  const raw = new Map(h.raw)
  for (const [k, v] of Object.entries(files)) raw.set(k, v)
  return hostFromFiles(h.name, h.source, raw)
}

const filter = (lines: string) => `*filter\n${lines.trim()}\nCOMMIT\n`
const ok = (c: {connected: boolean; reply: boolean; closed: boolean}) => c.connected && c.reply && c.closed
const mine = (hosts: readonly HostSnapshot[], flows = [flow('192.0.2.100:80')]) => runRules({hosts, flows}).filter((f) => f.rule === 'realserver-filter-blocks-service')

describe('realserver-filter-blocks-service', () => {
  test("a DNAT backend that accepts the balancer's network only drops the clients' SYN; the fix makes trace connect", async () => {
    const hosts = loadScenario('realserver-input-client-source')
    const o = flow('192.0.2.100:80')
    expect(ok(traceConnection(hosts, o).connection)).toBe(false)
    const f = runRules({hosts, flows: [o]})
    expect(f.map((x) => [x.rule, x.host, x.fix?.commands])).toEqual([['realserver-filter-blocks-service', 'rs1', ['iptables -t filter -A INPUT -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/from the client's address \(e\.g\. 203\.0\.113\.10:40000\)/)
    expect(f[0]!.message).toMatch(/SYN \(ctstate NEW\) dropped at INPUT by the DROP policy of filter INPUT/)
    expect(f[0]!.evidence.map((e) => [e.host, e.file, e.line])).toContainEqual(['director', 'iptables-save.txt', expect.any(Number)])
    const fixed = await traceWithFixes(hosts, o, f)
    expect(fixed.outcomes.every((x) => x.applied)).toBe(true)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('when the balancer masquerades, the SYN comes from its address, which the backend accepts: quiet', () => {
    const [d, rs] = loadScenario('realserver-input-client-source')
    const nat = d!.raw.get('iptables-save.txt')!.replace(/(-A PREROUTING .*\n)/, '$1-A POSTROUTING -o ldr-eth1 -j MASQUERADE\n')
    const withMasq = edited(d!, {'iptables-save.txt': nat})
    expect(withMasq.iptables?.tables.get('nat')?.chains.get('POSTROUTING')?.rules.length).toBe(1)
    expect(mine([withMasq, rs!])).toEqual([])
  })

  test("an OUTPUT DROP policy drops the server's SYN/ACK: the fix accepts the replies by source address and port", async () => {
    const [d, rs] = loadScenario('realserver-input-client-source-fixed')
    const hosts = [d!, edited(rs!, {'iptables-save.txt': filter(':INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT')})]
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t filter -A OUTPUT -s 10.0.0.11/32 -p tcp -m tcp --sport 8080 -j ACCEPT']])
    expect(f[0]!.message).toMatch(/server's SYN\/ACK \(ctstate ESTABLISHED\) dropped at OUTPUT/)
    expect(f[0]!.message).toMatch(/its SYN\/ACK never leaves it/)
    const fixed = await traceWithFixes(hosts, flow('192.0.2.100:80'), runRules({hosts, flows: [flow('192.0.2.100:80')]}))
    expect(ok(fixed.result.connection)).toBe(true)
  })

  test('a --state NEW accept under a DROP policy passes the SYN and drops the rest of the connection', () => {
    const [d, rs] = loadScenario('realserver-input-client-source-fixed')
    const hosts = [d!, edited(rs!, {'iptables-save.txt': filter(':INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 8080 -j ACCEPT')})]
    const f = mine(hosts)
    expect(f).toHaveLength(1)
    expect(f[0]!.message).toMatch(/handshake ACK \(ctstate ESTABLISHED\) dropped at INPUT/)
    expect(f[0]!.message).not.toMatch(/^ {2}SYN /m)
    expect(f[0]!.message).toMatch(/The SYN is accepted \(iptables-save\.txt:5\)/)
    expect(f[0]!.fix?.commands).toEqual(['iptables -t filter -A INPUT -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j ACCEPT'])
  })

  test("replies that bypass the balancer: nat-reply-bypasses-director's masquerade makes the source the balancer's, which the realserver must pass too", () => {
    const [d, rs] = loadScenario('realserver-input-client-source-fixed')
    const routes = (JSON.parse(rs!.raw.get('ip-route.json')!) as {dst: string}[]).map((r) => (r.dst === 'default' ? {...r, gateway: '10.0.0.254'} : r))
    const clientsOnly = filter(':INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -s 203.0.113.0/24 -j ACCEPT')
    const hosts = [d!, edited(rs!, {'ip-route.json': JSON.stringify(routes), 'iptables-save.txt': clientsOnly})]
    const f = runRules({hosts, flows: [flow('192.0.2.100:80')]})
    expect(f.map((x) => [x.rule, x.host, x.fix?.commands])).toEqual([
      ['nat-reply-bypasses-director', 'director', ['iptables -t nat -A POSTROUTING -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j MASQUERADE']],
      ['realserver-filter-blocks-service', 'rs1', ['iptables -t filter -A INPUT -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j ACCEPT']],
    ])
    expect(f[1]!.message).toMatch(/from director's address 10\.0\.0\.1:40000 once the connection is masqueraded/)
  })

  test('a host that is no backend of any service, and a realserver given without its director, are not judged', () => {
    const [d, rs] = loadScenario('realserver-input-client-source')
    expect(mine([rs!])).toEqual([])
    // the same firewall on a host that owns no backend address
    const addr = rs!.raw.get('ip-addr.json')!.replace(/10\.0\.0\.11/g, '10.0.0.99')
    expect(mine([d!, edited(rs!, {'ip-addr.json': addr})])).toEqual([])
  })

  test('the correct setups of the other scenarios stay quiet (the RH firewall on DR realservers accepts port 80)', () => {
    for (const s of ['lvs-howto-29.14-rh-firewall-fixed', 'lvs-howto-29.14-rh-firewall', 'dnat-forward-drop-fixed', 'fwd-rh-firewall-fixed', 'zevenet-dnat-foreign-gateway-fixed']) {
      expect(runRules({hosts: loadScenario(s)}).filter((f) => f.rule === 'realserver-filter-blocks-service'), s).toEqual([])
    }
  })
})

describe('forward-blocks-routed-vip', () => {
  const o = flow('198.51.100.100:80', '192.0.2.10')

  test("FORWARD accepts the realserver's address, but the routed packets carry the VIP: the SYN dies; the fix makes trace connect", async () => {
    const hosts = loadScenario('fwd-forward-accepts-rip')
    expect(ok(traceConnection(hosts, o).connection)).toBe(false)
    const f = runRules({hosts, flows: [o]})
    expect(f.map((x) => [x.rule, x.severity, x.host, x.fix?.commands])).toEqual([['forward-blocks-routed-vip', 'error', 'director', ['iptables -t filter -A FORWARD -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/SYN \(ctstate NEW\) dropped at FORWARD by the DROP policy of filter FORWARD/)
    const fixed = await traceWithFixes(hosts, o, f)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('replies that come back through the forwarding host are checked too: both directions are fixed', async () => {
    const [d, rs] = loadScenario('fwd-forward-accepts-rip-fixed') // accepts the VIP
    const routes = JSON.parse(rs!.raw.get('ip-route.json')!) as {dst: string; gateway?: string; dev?: string}[]
    const viaDirector = routes.map((r) => (r.dst === 'default' ? {...r, gateway: '10.0.0.1', dev: 'ldf-eth0'} : r))
    const hosts = [d!, edited(rs!, {'ip-route.json': JSON.stringify(viaDirector)})]
    const f = runRules({hosts, flows: [o]})
    expect(f.map((x) => [x.rule, x.fix?.commands])).toEqual([['forward-blocks-routed-vip', ['iptables -t filter -A FORWARD -s 198.51.100.100/32 -p tcp -m tcp --sport 80 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/reply: server's SYN\/ACK \(ctstate ESTABLISHED\) dropped at FORWARD/)
    const fixed = await traceWithFixes(hosts, o, f)
    expect(ok(fixed.result.connection)).toBe(true)
  })

  test('a NEW-only accept on a one-way path is dr-stateful-filter\'s, not this rule\'s', () => {
    expect(runRules({hosts: loadScenario('fwd-dr-state-new'), flows: [o]}).map((f) => f.rule)).toEqual(['dr-stateful-filter'])
  })

  test('without a flow and without a rule naming the VIP or the realserver, the assumed port makes it a warning', () => {
    const [d, rs] = loadScenario('fwd-forward-accepts-rip')
    const closed = edited(d!, {'iptables-save.txt': filter(':INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]')})
    const f = runRules({hosts: [closed, rs!]})
    expect(f.map((x) => [x.rule, x.severity])).toEqual([['forward-blocks-routed-vip', 'warning']])
    expect(f[0]!.message).toMatch(/port 80 is assumed/)
  })
})

describe('forward-drops-nat-requests', () => {
  const o = flow('192.0.2.100:80', '192.0.2.10')

  test("a NEW-only accept for the DNATed request under a DROP policy passes the SYN and drops the client's later packets; the fix makes trace connect", async () => {
    const hosts = loadScenario('dnat-forward-syn-only')
    expect(traceConnection(hosts, o).connection).toEqual({connected: true, reply: false, closed: false})
    const f = runRules({hosts, flows: [o]})
    expect(f.map((x) => [x.rule, x.host, x.fix?.commands])).toEqual([['forward-drops-nat-requests', 'director', ['iptables -t filter -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/handshake ACK \(ctstate ESTABLISHED\) dropped at FORWARD by the DROP policy/)
    expect(f[0]!.message).toMatch(/The SYN passes \(iptables-save\.txt:6\)/)
    const fixed = await traceWithFixes(hosts, o, f)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('a FIN filter before the accept: only the FIN is reported, the ESTABLISHED accept goes before it', () => {
    const [d, rs] = loadScenario('dnat-forward-syn-only-fixed')
    const text = d!.raw.get('iptables-save.txt')!.replace(':FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n', ':FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p tcp -m tcp --tcp-flags FIN FIN -j DROP\n')
    const hosts = [edited(d!, {'iptables-save.txt': text}), rs!]
    const all = runRules({hosts, flows: [o]})
    // the server's FIN meets the same rule: forward-drops-nat-replies gives the fix (the ESTABLISHED accept moved before the FIN rule), this finding shares it
    expect(all.map((x) => [x.rule, x.fix?.commands])).toEqual([
      ['forward-drops-nat-replies', ['iptables -t filter -D FORWARD 2', 'iptables -t filter -I FORWARD 1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT']],
      ['forward-drops-nat-requests', []],
    ])
    const f = all.filter((x) => x.rule === 'forward-drops-nat-requests')
    expect(f[0]!.fix?.summary).toMatch(/same fix as forward-drops-nat-replies above, nothing more to run/)
    expect(f[0]!.message).toMatch(/^ {2}FIN\/ACK \(ctstate ESTABLISHED\) dropped at FORWARD by rule 1 of filter FORWARD, DROP/m)
    expect(f[0]!.message).not.toMatch(/handshake ACK/)
    expect(f[0]!.message).toMatch(/its FINs never pass/)
  })

  test("a chain that drops the SYN too is filter-blocks-vip's, whose stateless accept covers the later packets as well", () => {
    const [d, rs] = loadScenario('dnat-forward-drop-fixed')
    const closed = edited(d!, {'iptables-save.txt': d!.raw.get('iptables-save.txt')!.replace(/^-A FORWARD .*\n/gm, '')})
    const f = runRules({hosts: [closed, rs!]}).map((x) => x.rule)
    expect(f).toContain('filter-blocks-vip')
    expect(f).not.toContain('forward-drops-nat-requests')
  })
})

describe('realserver-filter-blocks-service and the listening sockets', () => {
  test("a port read off the router's FORWARD rules that nothing listens on (ss-ltnu.txt) is no service of the realserver: quiet; told the flow, or something listens: said", () => {
    const [d, rs] = loadScenario('fwd-forward-accepts-rip')
    const input = '*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n'
    const rsWith = (listen: string) => edited(rs!, {'iptables-save.txt': input, 'ss-ltnu.txt': listen})
    const fired = (hosts: HostSnapshot[], flows?: ReturnType<typeof flow>[]) => runRules(flows ? {hosts, flows} : {hosts}).filter((f) => f.rule === 'realserver-filter-blocks-service')
    expect(fired([d!, rsWith('tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:*\n')])).toHaveLength(1)
    expect(fired([d!, rsWith('tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n')])).toEqual([])
    expect(fired([d!, rsWith('tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n')], [flow('198.51.100.100:80')])).toHaveLength(1)
  })
})
