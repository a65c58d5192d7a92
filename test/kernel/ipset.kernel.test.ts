// ipsets judged by the kernel: namespaces (prefix lis) where the real `ipset` loads sets and the real `iptables`
// matches them with `-m set`; a real TCP exchange; `lvsdoctor snapshot` in every namespace (ipset-save.txt
// collected because a rule uses a set); `trace` over the snapshots must predict what the kernel did, from the sets
// (not assumed), and say which set decided. Every scenario comes in pairs: the set matches / does not.
//
//   c lisc0 10.91.0.2 (+ 10.91.0.3) ── lisd0 10.91.0.1 (+ VIP)  d  lisd1 10.92.0.1 ── lisr0 10.92.0.10  r
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {traceConnection} from '../../src/services/trace.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun, type Scenario} from './harness.js'

const VIP = '198.51.100.100'
const ALL = {connected: true, reply: true, closed: true}
const NOTHING = {connected: false, reply: false, closed: false}

const CD: Scenario['links'][number] = ['c', 'lisc0', '10.91.0.2/24', 'd', 'lisd0', '10.91.0.1/24']
const DR: Scenario['links'][number] = ['d', 'lisd1', '10.92.0.1/24', 'r', 'lisr0', '10.92.0.10/24']
const DNAT = `-d ${VIP}/32 -p tcp -j DNAT --to-destination 10.92.0.10:8080`

interface Case {
  readonly name: string
  readonly why: string
  /** commands on the director: sets and rules */
  readonly d: readonly string[]
  readonly src: '10.91.0.2' | '10.91.0.3'
  readonly port?: number
  readonly proto?: 'tcp' | 'udp'
  /** commands on the realserver (default: its default route through the director) */
  readonly r?: readonly string[]
  readonly expect: Scenario['expect']
  /** the set whose entry (or lack of one) trace must name */
  readonly set: string
  /** words trace's notes must hold (the entry that decided) */
  readonly says?: string
}

function scenario(k: Case): Scenario {
  return {
    name: k.name,
    why: k.why,
    prefix: 'lis',
    ns: {
      c: {role: 'client', setup: ['ip addr add 10.91.0.3/24 dev lisc0', 'ip route add default via 10.91.0.1']},
      d: {role: 'director', setup: ['sysctl -qw net.ipv4.ip_forward=1', `ip addr add ${VIP}/32 dev lisd0`, ...k.d]},
      r: {role: 'realserver', setup: k.r ?? ['ip route add default via 10.92.0.1']},
    },
    links: [CD, DR],
    server: {ns: 'r', port: 8080},
    client: {ns: 'c', src: k.src, connect: `${VIP}:${k.port ?? 80}`},
    ...(k.proto ? {proto: k.proto} : {}),
    expect: k.expect,
  }
}

const netDnat = (extra: string[]) => [
  'ipset create lis-clients hash:net',
  'ipset add lis-clients 10.91.0.0/24',
  ...extra,
  `iptables -t nat -A PREROUTING -m set --match-set lis-clients src ${DNAT}`,
]
const black = [
  'ipset create lis-black hash:ip,port',
  'ipset add lis-black 10.91.0.3,tcp:8080',
  'ipset add lis-black 10.91.0.2,udp:8080',
  `iptables -t nat -A PREROUTING ${DNAT}`,
]
const nodePort = [
  'ipset create lis-nodeport bitmap:port range 30000-32767',
  'ipset add lis-nodeport 30080',
  `iptables -t nat -A PREROUTING -m set --match-set lis-nodeport dst ${DNAT}`,
]
const list = (b: string) => [
  'ipset create lis-a hash:ip',
  'ipset add lis-a 10.91.0.9',
  'ipset create lis-b hash:net',
  `ipset add lis-b ${b}`,
  'ipset create lis-allow list:set',
  'ipset add lis-allow lis-a',
  'ipset add lis-allow lis-b',
  `iptables -t nat -A PREROUTING ${DNAT}`,
  'iptables -A FORWARD -i lisd0 -m set ! --match-set lis-allow src,dst -j DROP',
]
const returnNomatch = [
  'ipset create lis-net hash:net',
  'ipset add lis-net 10.91.0.0/24',
  'ipset add lis-net 10.91.0.2 nomatch',
  `iptables -t nat -A PREROUTING ${DNAT}`,
  'iptables -A FORWARD -m set --match-set lis-net src --return-nomatch -j DROP',
]
const iface = [
  'ipset create lis-ifn hash:net,iface',
  'ipset add lis-ifn 10.91.0.3,lisd0',
  'ipset add lis-ifn 10.91.0.0/24,lisd1',
  `iptables -t nat -A PREROUTING ${DNAT}`,
  'iptables -A FORWARD -m set --match-set lis-ifn src,src -j DROP',
]

// KUBE-LOOP-BACK-style hash:ip,port,ip (dst,dst,src) MASQUERADE; the realserver has no route back to the clients,
// so only a masqueraded connection is answered
const loopBack = (client: string) => [
  'ipset create lis-lb hash:ip,port,ip',
  `ipset add lis-lb 10.92.0.10,tcp:8080,${client}`,
  `iptables -t nat -A PREROUTING ${DNAT}`,
  'iptables -t nat -A POSTROUTING -m set --match-set lis-lb dst,dst,src -j MASQUERADE',
]
// UDP: the port dimension of a ClusterIP-style hash:ip,port (dst,dst) holds udp:53 or tcp:53
const udpSvc = (proto: string) => [
  'ipset create lis-svc hash:ip,port',
  `ipset add lis-svc ${VIP},${proto}:53`,
  `iptables -t nat -A PREROUTING -p udp -m set --match-set lis-svc dst,dst -j DNAT --to-destination 10.92.0.10:8080`,
]

// hash:ip with netmask 24 (an entry stands for its /24) and a bitmap:ip inside a list:set
const masked = (entry: string) => [
  'ipset create lis-m hash:ip netmask 24',
  `ipset add lis-m ${entry}`,
  'ipset create lis-bm bitmap:ip range 10.80.0.0/16',
  'ipset add lis-bm 10.80.0.1',
  'ipset create lis-ml list:set',
  'ipset add lis-ml lis-bm',
  'ipset add lis-ml lis-m',
  `iptables -t nat -A PREROUTING -m set --match-set lis-ml src ${DNAT}`,
]

const CASES: readonly Case[] = [
  {name: 'net-dnat-hit', why: 'DNAT only for clients in a hash:net set: 10.91.0.2 is in 10.91.0.0/24', d: netDnat([]), src: '10.91.0.2', expect: ALL, set: 'lis-clients', says: 'add lis-clients 10.91.0.0/24'},
  {name: 'net-dnat-nomatch', why: 'the same set with 10.91.0.3 as a nomatch entry: the most specific entry decides, no DNAT, the director resets the SYN to its own port 80', d: netDnat(['ipset add lis-clients 10.91.0.3 nomatch']), src: '10.91.0.3', expect: NOTHING, set: 'lis-clients', says: 'nomatch'},
  {name: 'black-hit', why: 'a FORWARD drop for a hash:ip,port blacklist (src,dst: client address, destination port after DNAT): 10.91.0.3,tcp:8080 is listed', d: [...black, 'iptables -A FORWARD -m set --match-set lis-black src,dst -j DROP'], src: '10.91.0.3', expect: NOTHING, set: 'lis-black', says: 'add lis-black 10.91.0.3,tcp:8080'},
  {name: 'black-proto', why: 'the same blacklist: 10.91.0.2 is listed for udp:8080 only, the port dimension includes the protocol', d: [...black, 'iptables -A FORWARD -m set --match-set lis-black src,dst -j DROP'], src: '10.91.0.2', expect: ALL, set: 'lis-black', says: 'does not hold 10.91.0.2,tcp:8080'},
  {name: 'black-one-flag', why: 'the blacklist matched with one flag for its two dimensions: the kernel never matches (ip_set_test dim check)', d: [...black, 'iptables -A FORWARD -m set --match-set lis-black src -j DROP'], src: '10.91.0.3', expect: ALL, set: 'lis-black', says: '2 dimensions'},
  {name: 'nodeport-hit', why: 'a NodePort-style bitmap:port set: 30080 is in it, DNAT', d: nodePort, src: '10.91.0.2', port: 30080, expect: ALL, set: 'lis-nodeport', says: 'add lis-nodeport 30080'},
  {name: 'nodeport-miss', why: 'the same bitmap:port set: 30081 is in its range but not in it, no DNAT, reset', d: nodePort, src: '10.91.0.2', port: 30081, expect: NOTHING, set: 'lis-nodeport', says: 'does not hold'},
  {name: 'list-hit', why: 'list:set of a hash:ip and a hash:net (flags src,dst: more flags than dimensions are ignored): its second member holds the client, not dropped', d: list('10.91.0.0/24'), src: '10.91.0.2', expect: ALL, set: 'lis-allow', says: 'member lis-b'},
  {name: 'list-miss', why: 'the same list:set whose members hold neither client: ! --match-set drops', d: list('10.80.0.0/16'), src: '10.91.0.2', expect: NOTHING, set: 'lis-allow', says: 'no member of lis-allow'},
  {name: 'retnomatch-hit', why: '--return-nomatch: the nomatch entry 10.91.0.2 becomes a match, dropped', d: returnNomatch, src: '10.91.0.2', expect: NOTHING, set: 'lis-net', says: '--return-nomatch makes it a match'},
  {name: 'retnomatch-miss', why: '--return-nomatch: 10.91.0.3 is in a plain entry, which becomes no match: forwarded', d: returnNomatch, src: '10.91.0.3', expect: ALL, set: 'lis-net', says: '--return-nomatch makes a plain entry no match'},
  {name: 'iface-hit', why: 'hash:net,iface with src,src: 10.91.0.3 arriving on lisd0 is listed, dropped', d: iface, src: '10.91.0.3', expect: NOTHING, set: 'lis-ifn', says: 'add lis-ifn 10.91.0.3,lisd0'},
  {name: 'loopback-hit', why: 'hash:ip,port,ip dst,dst,src holds the DNATed destination, its port and the client: masqueraded, so the realserver (no route to the clients) can answer', d: loopBack('10.91.0.2'), r: [], src: '10.91.0.2', expect: ALL, set: 'lis-lb', says: 'add lis-lb 10.92.0.10,tcp:8080,10.91.0.2'},
  {name: 'loopback-miss', why: 'the same set holds the other client (third dimension): not masqueraded, the realserver cannot answer', d: loopBack('10.91.0.3'), r: [], src: '10.91.0.2', expect: NOTHING, set: 'lis-lb', says: 'does not hold 10.92.0.10,tcp:8080,10.91.0.2'},
  {name: 'udp-hit', why: 'UDP to a hash:ip,port set holding VIP,udp:53: DNAT to the realserver', d: udpSvc('udp'), src: '10.91.0.2', port: 53, proto: 'udp', expect: ALL, set: 'lis-svc', says: 'holds 198.51.100.100,udp:53'},
  {name: 'udp-other-proto', why: 'the set holds VIP,tcp:53: a UDP datagram to port 53 is not in it, no DNAT, the director answers port unreachable', d: udpSvc('tcp'), src: '10.91.0.2', port: 53, proto: 'udp', expect: NOTHING, set: 'lis-svc', says: 'does not hold 198.51.100.100,udp:53'},
  {name: 'netmask-hit', why: 'hash:ip netmask 24 (inside a list:set after a bitmap:ip): the entry 10.91.0.77 stands for 10.91.0.0/24, which holds 10.91.0.2: DNAT', d: masked('10.91.0.77'), src: '10.91.0.2', expect: ALL, set: 'lis-ml', says: 'member lis-m (hash:ip) holds 10.91.0.2'},
  {name: 'netmask-miss', why: 'the same with the entry 10.90.0.77 (10.90.0.0/24): no DNAT, reset', d: masked('10.90.0.77'), src: '10.91.0.2', expect: NOTHING, set: 'lis-ml', says: 'no member of lis-ml'},
  {name: 'iface-miss', why: 'the same set: 10.91.0.2 is listed only with lisd1, and arrives on lisd0', d: iface, src: '10.91.0.2', expect: ALL, set: 'lis-ifn', says: 'does not hold 10.91.0.2,lisd0'},
]

const why = cannotRun(['ip', 'iptables', 'ipset', 'python3', 'sysctl'])
if (why) console.log(`ipset kernel scenarios skipped: ${why}`)

describe.skipIf(why !== undefined)('ipset: trace predicts the kernel from the sets', () => {
  test.each(CASES.map((k) => [k.name, k] as const))('%s', async (_name, k) => {
    const s = scenario(k)
    let run: KernelRun | undefined
    try {
      run = await runScenario(s)
      // the kernel did what the case says (else it no longer shows its point)
      expect(run.result, `kernel: ${run.detail}`).toEqual(k.expect)
      const hosts = loadSnapshots(run.snapshots)
      for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
      const d = hosts.find((h) => h.name === 'd')!
      expect(d.files, 'snapshot collects ipset-save.txt when a rule uses a set').toContain('ipset-save.txt')
      expect(d.ipsets?.sets.has(k.set)).toBe(true)
      const r = traceConnection(hosts, {vip: parseEndpoint(s.client.connect)!, proto: k.proto ?? 'tcp', client: parseIp(k.src)!, clientPort: CLIENT_PORT})
      const text = renderTraceText(r)
      expect(r.connection, `${k.why}\n${text}`).toEqual(run.result)
      // decided from the sets, not assumed; the notes name the set and what decided
      expect(r.assumptions.filter((a) => a.includes('--match-set')), text).toEqual([])
      const notes = r.packets.flatMap((p) => p.steps.map((st) => st.note ?? '')).join('\n')
      expect(notes, text).toContain(k.set)
      if (k.says) expect(notes, text).toContain(k.says)
    } finally {
      cleanup(run)
    }
  })
})
