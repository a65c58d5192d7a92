// Random kernel scenarios where the balancer's own stack takes part: the director is the server (REDIRECT, DNAT to
// 127.0.0.1 with or without route_localnet, a plain local service) or the client (nat OUTPUT DNAT to a backend,
// from its own address or from 127.0.0.1), or the realserver is its own client through the director (hairpin).
// These are the paths random-scenarios.ts never takes: nat OUTPUT and the re-route after it, local delivery after
// PREROUTING NAT, the reply's un-NAT after filter INPUT/OUTPUT (nat INPUT and POSTROUTING), martian loopback and
// local sources. Deterministic for a seed; a stream of its own, so random-scenarios.ts keeps its draws.
// The topology of random-common.ts.
import {mulberry32} from '../../bench/kube-common.js'
import type {NsSpec, Scenario} from './harness.js'
import {CD, DR, GC, RG, VIP, draws, renamer} from './random-common.js'

export type LocalKind = 'redirect' | 'dnat-loopback' | 'local-service' | 'output-dnat' | 'hairpin'
export const LOCAL_KINDS: readonly LocalKind[] = ['redirect', 'dnat-loopback', 'local-service', 'output-dnat', 'hairpin']

export function randomLocalScenarios(seed: number, count: number, prefix = 'ldz'): Scenario[] {
  const {dev, links: rename} = renamer(prefix)
  const rnd = mulberry32((seed ^ 0x9e3779b9) >>> 0)
  const {pick, some} = draws(rnd)
  // a third stream (OUTPUT marks and policy routing): LVSDOCTOR_KERNEL_EXTRA=0 leaves it out
  const rnd3 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x7feb352d) >>> 0)
  const pick3 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd3() * xs.length)]!
  // a fourth stream (rp_filter/accept_local where packets turn around, iif policy rules): EXTRA=0 leaves it out too
  const rnd4 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x61c88647) >>> 0)
  const pick4 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd4() * xs.length)]!
  const policyAndRules = (into: string[], chain: 'INPUT' | 'OUTPUT' | 'FORWARD', rules: readonly string[], max: number, p = 0.6): void => {
    if (rnd() >= p) return
    into.push(`iptables -P ${chain} ${pick(['ACCEPT', 'DROP', 'DROP'])}`)
    for (const r of some(rules, max)) into.push(`iptables -A ${chain} ${r}`)
  }
  const out: Scenario[] = []
  for (let i = 0; i < count; i++) {
    // the kinds in turn from a random start, so that a small count still covers them
    const kind = LOCAL_KINDS[(i + Math.floor(rnd() * LOCAL_KINDS.length)) % LOCAL_KINDS.length]!
    const d: string[] = ['sysctl -qw net.ipv4.ip_forward=1']
    const r: string[] = []
    const c: string[] = ['ip route add default via 203.0.113.1']
    const g: string[] = ['sysctl -qw net.ipv4.ip_forward=1', 'ip route add 203.0.113.0/24 via 192.0.2.10']
    const notes: string[] = []
    let server: Scenario['server']
    let client: Scenario['client']
    let vip: string | undefined
    let viaG = false
    let hosts: readonly string[]
    if (kind === 'redirect' || kind === 'dnat-loopback' || kind === 'local-service') {
      // an outside client, the server on the director
      const where = pick(['d0', 'lo', 'none'] as const)
      if (where !== 'none') d.push(`ip addr add ${VIP}/32 dev ${where === 'lo' ? 'lo' : 'ldz-d0'}`)
      notes.push(where === 'none' ? 'VIP not on the director' : `VIP on ${where === 'lo' ? 'lo' : 'ldz-d0'}`)
      const port = kind === 'local-service' ? 80 : 8080
      if (kind === 'redirect') {
        d.push(`iptables -t nat -A PREROUTING ${pick([`-d ${VIP}/32 `, '-i ldz-d0 ', ''])}-p tcp --dport 80 -j REDIRECT --to-ports 8080`)
      } else if (kind === 'dnat-loopback') {
        d.push(`iptables -t nat -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:8080`)
        const lnet = pick(['none', 'all', 'ldz-d0', 'lo'] as const)
        if (lnet !== 'none') d.push(`sysctl -qw net.ipv4.conf.${lnet}.route_localnet=1`)
        notes.push(`route_localnet ${lnet}`)
      }
      policyAndRules(d, 'INPUT', [
        '-i lo -j ACCEPT',
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-m state --state NEW -p tcp --dport 80 -j ACCEPT',
        '-p tcp --dport 80 -j ACCEPT',
        '-p tcp --dport 8080 -j ACCEPT',
        `-d ${VIP}/32 -j ACCEPT`,
        '-d 127.0.0.1/32 -j ACCEPT',
        '-d 203.0.113.1/32 -p tcp -j ACCEPT',
        '-m conntrack --ctstate DNAT -j ACCEPT',
        `-m conntrack --ctorigdst ${VIP}/32 -j ACCEPT`,
        '-m conntrack --ctstate INVALID -j DROP',
        '-j REJECT --reject-with icmp-port-unreachable',
        '-p tcp -j REJECT --reject-with tcp-reset',
      ], 3, 0.75)
      policyAndRules(d, 'OUTPUT', [
        '-o lo -j ACCEPT',
        '-m conntrack --ctstate ESTABLISHED -j ACCEPT',
        '-p tcp --sport 80 -j ACCEPT',
        '-p tcp --sport 8080 -j ACCEPT',
        `-s ${VIP}/32 -j ACCEPT`,
        '-o ldz-d0 -j ACCEPT',
        '-p tcp --tcp-flags FIN FIN -j DROP',
      ], 2, 0.3)
      server = {ns: 'd', port}
      client = {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`}
      hosts = ['c', 'd']
    } else if (kind === 'output-dnat') {
      // the director is the client: nat OUTPUT sends its own connection to the backend
      const loop = rnd() < 0.4
      const dst = loop ? '127.0.0.1' : VIP
      d.push(`iptables -t nat -A OUTPUT -d ${dst}/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`)
      const src = loop ? '127.0.0.1' : pick(['203.0.113.1', '10.1.0.1'])
      if (loop) {
        const lnet = pick(['none', 'all', 'ldz-d1'] as const)
        if (lnet !== 'none') d.push(`sysctl -qw net.ipv4.conf.${lnet}.route_localnet=1`)
        notes.push(`route_localnet ${lnet}`)
      } else {
        // the first route lookup is for the VIP itself, before nat OUTPUT rewrites it
        const route = pick(['default', 'vip-local', 'none'] as const)
        if (route === 'default') d.push('ip route add default via 203.0.113.10')
        if (route === 'vip-local') d.push(`ip addr add ${VIP}/32 dev lo`)
        notes.push(`route to the VIP: ${route}`)
      }
      const snat = pick(['none', 'masq', 'snat'] as const)
      if (snat === 'masq') d.push('iptables -t nat -A POSTROUTING -o ldz-d1 -j MASQUERADE')
      if (snat === 'snat') d.push('iptables -t nat -A POSTROUTING -d 10.1.0.10/32 -p tcp --dport 8080 -j SNAT --to-source 10.1.0.1')
      notes.push(`source ${src}, ${snat === 'none' ? 'no SNAT' : snat}`)
      policyAndRules(d, 'OUTPUT', [
        '-o lo -j ACCEPT',
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        `-d ${dst}/32 -j ACCEPT`,
        '-d 10.1.0.10/32 -j ACCEPT',
        '-p tcp --dport 80 -j ACCEPT',
        '-p tcp --dport 8080 -j ACCEPT',
        '-m conntrack --ctstate DNAT -j ACCEPT',
        '-j REJECT --reject-with icmp-port-unreachable',
      ], 3, 0.5)
      policyAndRules(d, 'INPUT', [
        '-i lo -j ACCEPT',
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-s 10.1.0.10/32 -j ACCEPT',
        `-s ${dst}/32 -j ACCEPT`,
        '-p tcp --sport 8080 -j ACCEPT',
        '-p tcp --sport 80 -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
      ], 3, 0.5)
      viaG = !loop && src === '203.0.113.1' && rnd() < 0.3
      r.push(viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1')
      server = {ns: 'r', port: 8080}
      client = {ns: 'd', src, connect: `${dst}:80`}
      // c is there for the director's own address on ldz-d0 and its default route
      hosts = viaG ? ['c', 'd', 'r', 'g'] : ['c', 'd', 'r']
    } else {
      // hairpin: the realserver is its own client through the director's DNAT
      d.push(`ip addr add ${VIP}/32 dev ${pick(['lo', 'ldz-d1'])}`, `iptables -t nat -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`)
      // the director would also tell r to use 10.1.0.10 directly (an ICMP redirect): kept out of one exchange
      d.push('sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.ldz-d1.send_redirects=0')
      const masq = pick(['none', 'none', 'masq-out', 'masq-src', 'kube-mark'] as const)
      if (masq === 'masq-out') d.push('iptables -t nat -A POSTROUTING -o ldz-d1 -j MASQUERADE')
      if (masq === 'masq-src') d.push('iptables -t nat -A POSTROUTING -s 10.1.0.10/32 -d 10.1.0.10/32 -j MASQUERADE')
      if (masq === 'kube-mark') {
        d.push(
          `iptables -t nat -I PREROUTING 1 -s 10.1.0.10/32 -d ${VIP}/32 -p tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000`,
          'iptables -t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully',
        )
      }
      notes.push(masq === 'none' ? 'no hairpin SNAT' : masq)
      if (rnd() < 0.2) {
        r.push('sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.ldz-r0.accept_local=1')
        notes.push('accept_local on the realserver')
      }
      policyAndRules(d, 'FORWARD', [
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-i ldz-d1 -o ldz-d1 -j ACCEPT',
        '-d 10.1.0.10/32 -p tcp --dport 8080 -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
      ], 2, 0.4)
      r.push('ip route add default via 10.1.0.1')
      server = {ns: 'r', port: 8080}
      client = {ns: 'r', src: '10.1.0.10', connect: `${VIP}:80`}
      hosts = ['d', 'r']
    }
    // (third stream) the director marks what it sends itself and routes the mark by a table of its own: only the
    // mangle table (and nat OUTPUT when it translates the destination) routes a local packet again after LOCAL_OUT
    if (kind !== 'hairpin' && rnd3() < 0.45) {
      const table = pick3(['mangle', 'filter', 'raw', 'nat'])
      const to = pick3(['unreachable default', 'blackhole default', kind === 'output-dnat' ? 'default via 10.1.0.10' : 'default via 203.0.113.10'])
      d.push(`iptables -t ${table} -A OUTPUT -p tcp -j MARK --set-mark 0x1`, 'ip rule add fwmark 0x1 lookup 101 pref 101', `ip route add ${to} table 101`)
      notes.push(`OUTPUT mark in ${table} routed to ${to}`)
    }
    // (fourth stream) source validation on the host where the packets turn around: rp_filter with accept_local, and
    // a policy rule for what the host sends itself (iif lo) or what arrives from the backends (iif ldz-d1)
    if (rnd4() < 0.3) {
      const onto = kind === 'hairpin' ? r : d
      const rpf = pick4(['1', '2'])
      const al = rnd4() < 0.5
      onto.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${rpf}${al ? ' net.ipv4.conf.all.accept_local=1' : ''}`)
      notes.push(`rp_filter ${rpf}${al ? ' accept_local' : ''} on ${kind === 'hairpin' ? 'r' : 'd'}`)
    }
    if (kind !== 'hairpin' && rnd4() < 0.2) {
      const iif = pick4(['lo', 'ldz-d1'])
      const to = pick4(['unreachable default', 'blackhole 203.0.113.0/24', 'default via 10.1.0.10'])
      d.push(`ip rule add iif ${iif} lookup 105 pref 105`, `ip route add ${to} table 105`)
      notes.push(`director ip rule iif ${iif} -> ${to}`)
    }
    const spec = (role: NsSpec['role'], setup: string[]): NsSpec => ({role, setup: setup.map(dev)})
    const ns: Record<string, NsSpec> = {}
    if (hosts.includes('c')) ns.c = spec('client', c)
    ns.d = spec('director', d)
    if (hosts.includes('r')) ns.r = spec('realserver', r)
    if (hosts.includes('g')) ns.g = spec('router', g)
    const links = hosts.includes('r') ? (viaG ? [CD, DR, RG, GC] : hosts.includes('c') ? [CD, DR] : [DR]) : [CD]
    out.push({
      name: `loc${seed % 1000}-${i}`,
      why: `random local scenario ${i} of seed ${seed}: ${kind}${notes.length ? `; ${notes.join(', ')}` : ''}`,
      ns,
      links: rename(links),
      server,
      client,
      ...(vip ? {vip} : {}),
      // not asserted: the kernel's result is the answer trace must give
      expect: {connected: false, reply: false, closed: false},
      prefix,
    })
  }
  return out
}
