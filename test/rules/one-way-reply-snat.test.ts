// one-way-reply-snat: a NAT router on the way of an LVS-DR realserver's answers, which never sees the requests,
// masquerades them. The kernel showed it (test/kernel/random-udp.kernel.test.ts with MASQUERADE on the router; a
// TCP netns run: the SYN/ACK passes as INVALID, the first data packet is picked up and masqueraded, the client
// resets); trace predicts both, and its --fix replays the exemption check proposes.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {readdirSync} from 'node:fs'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {runRules} from '../../src/rules/index.js'
import {hostFromFiles, loadSnapshots} from '../../src/snapshot/store.js'
import {editedScenario, findingsOf, loadScenario} from './helpers.js'

const RULE = 'one-way-reply-snat'
const mine = findingsOf(RULE)
const flow = (vip: string, proto: 'tcp' | 'udp' = 'tcp') => ({vip: parseEndpoint(vip)!, proto, client: parseIp('198.51.100.10')!, clientPort: 40000})

describe('one-way-reply-snat', () => {
  test('TCP: fires on the router with an exemption before its MASQUERADE; trace: connected, then the masqueraded answer is reset; --fix closes', async () => {
    const hosts = loadScenario('dr-router-masquerade')
    const f = mine(hosts)
    expect(f.map((x) => [x.host, x.fix?.commands])).toEqual([['g', ['iptables -t nat -I POSTROUTING 1 -s 192.0.2.100/32 -p tcp -m tcp --sport 80 -j ACCEPT']]])
    expect(f[0]!.message).toMatch(/picked up mid-stream.*rewrites their source to 203\.0\.113\.254/)
    const t = traceConnection(hosts, flow('192.0.2.100:80'))
    expect(t.connection).toEqual({connected: true, reply: false, closed: false})
    expect(t.firstFailure?.reason).toMatch(/from 203\.0\.113\.254:80/)
    const fixed = await traceWithFixes(hosts, flow('192.0.2.100:80'), f)
    expect(fixed.result.connection).toEqual({connected: true, reply: true, closed: true})
    expect(mine(loadScenario('dr-router-masquerade-fixed'))).toEqual([])
    expect(traceConnection(loadScenario('dr-router-masquerade-fixed'), flow('192.0.2.100:80')).connection.closed).toBe(true)
  })

  test('UDP: every answer is a new connection for the router', async () => {
    const hosts = editedScenario('dr-router-masquerade', 'director', (f, t) => (f === 'ipvsadm-Sn.txt' ? t.replace(/-t 192\.0\.2\.100:80/g, '-u 192.0.2.100:53').replace('192.0.2.11:80', '192.0.2.11:53') : t))
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t nat -I POSTROUTING 1 -s 192.0.2.100/32 -p udp -m udp --sport 53 -j ACCEPT']])
    expect(f[0]!.message).toMatch(/the first UDP answer; the later ones belong to that entry/)
    expect(traceConnection(hosts, flow('192.0.2.100:53', 'udp')).connection.reply).toBe(false)
    expect((await traceWithFixes(hosts, flow('192.0.2.100:53', 'udp'), f)).result.connection.reply).toBe(true)
  })

  test('quiet: nf_conntrack_tcp_loose=0 on the router (the answers stay INVALID and are never NATed), a MASQUERADE of other sources', () => {
    const loose0 = editedScenario('dr-router-masquerade', 'g', (f, t) => (f === 'sysctl.txt' ? t.replace('net.netfilter.nf_conntrack_tcp_loose = 1', 'net.netfilter.nf_conntrack_tcp_loose = 0') : t))
    expect(mine(loose0)).toEqual([])
    expect(traceConnection(loose0, flow('192.0.2.100:80')).connection.closed).toBe(true)
    const other = editedScenario('dr-router-masquerade', 'g', (f, t) => (f === 'iptables-save.txt' ? t.replace('-A POSTROUTING -o ldr-eth1 -j MASQUERADE', '-A POSTROUTING -s 10.0.0.0/8 -o ldr-eth1 -j MASQUERADE') : t))
    expect(mine(other)).toEqual([])
  })
})

describe('one-way-reply-snat: routers that see the requests, and routers that drop INVALID', () => {
  test('the director reaches the clients through the router too (the requests cross it): quiet', () => {
    const hosts = editedScenario('dr-router-masquerade', 'director', (f, t) => (f === 'ip-route.json' ? t.replace('"dst":"default","gateway":"203.0.113.2","dev":"ldr-eth1"', '"dst":"default","gateway":"192.0.2.254","dev":"ldr-eth0"') : t))
    expect(hosts.find((h) => h.name === 'director')!.routes!.find((r) => r.dst.len === 0)!.gateway!.value).toBe(0xc00002fen)
    expect(mine(hosts)).toEqual([])
  })

  test('a router FORWARD that drops INVALID: the SYN/ACK dies there (trace agrees); both accepts are proposed, and with them trace connects', async () => {
    const hosts = editedScenario('dr-router-masquerade', 'g', (f, t) => t, {
      'iptables-save.txt':
        '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o ldr-eth1 -j MASQUERADE\nCOMMIT\n',
    })
    const f = mine(hosts)
    expect(f.map((x) => x.fix?.commands)).toEqual([['iptables -t filter -I FORWARD 1 -s 192.0.2.100/32 -p tcp -m tcp --sport 80 -j ACCEPT', 'iptables -t nat -I POSTROUTING 1 -s 192.0.2.100/32 -p tcp -m tcp --sport 80 -j ACCEPT']])
    expect(f[0]!.message).toMatch(/the packet is INVALID, and it is dropped at FORWARD.*\n.*MASQUERADE rewrites their source/s)
    const t = traceConnection(hosts, flow('192.0.2.100:80'))
    expect(t.connection.connected).toBe(false)
    expect(t.firstFailure?.host).toBe('g')
    expect((await traceWithFixes(hosts, flow('192.0.2.100:80'), f)).result.connection).toEqual({connected: true, reply: true, closed: true})
  })
})

describe('one-way-reply-snat: a router that accepts only SYNs as new connections (kernel rnd12-14)', () => {
  const DIR = 'fixtures/kernel-gaps/rnd12-14'
  const kflow = {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}
  const load = () => loadSnapshots(readdirSync(DIR).filter((n) => /^[a-z]$/.test(n)).map((n) => `${DIR}/${n}`))

  test('the answers after the SYN/ACK are NEW without SYN there and dropped: found on g with the accept; trace agrees, and with all the fixes connects', async () => {
    const hosts = load()
    const before = traceConnection(hosts, kflow)
    expect(before.connection.connected).toBe(false)
    const all = runRules({hosts, flows: [kflow]})
    const f = all.filter((x) => x.rule === RULE)
    expect(f.map((x) => x.host)).toEqual(['g'])
    expect(f[0]!.message).toMatch(/picked up mid-stream as a NEW connection although they are no SYN .* dropped at FORWARD by rule 1 of filter FORWARD/)
    expect(f[0]!.fix?.commands).toEqual(['iptables -t filter -I FORWARD 1 -s 198.51.100.100/32 -p tcp -m tcp --sport 80 -j ACCEPT'])
    // the kernel, with check's FORWARD fix on d alone, connected and stalled: that was the gap
    expect((await traceWithFixes(hosts, kflow, all)).result.connection).toEqual({connected: true, reply: true, closed: true})
  })

  test('quiet with nf_conntrack_tcp_loose=0 on g: the answers are INVALID there, which the rule dropping NEW non-SYNs does not match (and g drops no INVALID)', () => {
    const hosts = load().map((h) => (h.name === 'g' ? edited(h, 'sysctl.txt', (t) => t.replace(/net\.netfilter\.nf_conntrack_tcp_loose = 1/, 'net.netfilter.nf_conntrack_tcp_loose = 0')) : h))
    expect(runRules({hosts, flows: [kflow]}).filter((x) => x.rule === RULE)).toEqual([])
  })
})

function edited(h: HostSnapshot, file: string, f: (t: string) => string): HostSnapshot {
  const raw = new Map(h.raw)
  raw.set(file, f(raw.get(file)!))
  return hostFromFiles(h.name, h.source, raw)
}
