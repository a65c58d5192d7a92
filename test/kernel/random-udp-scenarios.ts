// Random UDP kernel scenarios (a DNS-style service: one request datagram, one answer): the shapes of
// random-scenarios.ts (a DNAT director or a DR-shaped route, replies through the director or around it through
// the router, SNAT or not, stateful and stateless filter rules on both, NOTRACK, rp_filter) with UDP, whose
// conntrack differs from TCP's: no handshake, an entry stays NEW in the original direction until a reply is
// seen, and an ICMP error answers a REJECT or a closed port. Deterministic for a seed; a stream of its own.
// The topology of random-common.ts.
import {mulberry32} from '../../bench/kube-common.js'
import type {Scenario} from './harness.js'
import {CD, DR, GC, RG, VIP, draws, realserverInput, realserverOutput, renamer} from './random-common.js'

export function randomUdpScenarios(seed: number, count: number, prefix = 'ldz'): Scenario[] {
  const {dev, links} = renamer(prefix)
  const rnd = mulberry32((seed ^ 0x7f4a7c15) >>> 0)
  const {pick, some} = draws(rnd)
  // a third stream (policy routing, the router's own UDP state rules, director marks): the first keeps its draws;
  // LVSDOCTOR_KERNEL_EXTRA=0 turns it off
  const rnd3 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x1b873593) >>> 0)
  const pick3 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd3() * xs.length)]!
  // a fourth stream (port rules, addrtype DNAT, hairpin LAN): LVSDOCTOR_KERNEL_EXTRA=0 leaves it out too
  const rnd4 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x85ebca6b) >>> 0)
  const pick4 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd4() * xs.length)]!
  const out: Scenario[] = []
  for (let i = 0; i < count; i++) {
    const mode = pick(['dnat', 'dnat', 'route'] as const)
    const viaG = rnd() < 0.4
    const port = mode === 'dnat' ? 5353 : 53
    const notes: string[] = [mode, `replies via ${viaG ? 'the router' : 'the director'}`]
    const d: string[] = ['sysctl -qw net.ipv4.ip_forward=1']
    const r: string[] = [viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1']
    const g: string[] = ['sysctl -qw net.ipv4.ip_forward=1', 'ip route add 203.0.113.0/24 via 192.0.2.10']
    if (mode === 'dnat') {
      d.push(`ip addr add ${VIP}/32 dev ldz-d0`, `iptables -t nat -A PREROUTING -d ${VIP}/32 -p udp --dport 53 -j DNAT --to-destination 10.1.0.10:5353`)
      const snat = pick(['none', 'none', 'snat', 'masq'] as const)
      if (snat === 'snat') d.push('iptables -t nat -A POSTROUTING -d 10.1.0.10/32 -p udp --dport 5353 -j SNAT --to-source 10.1.0.1')
      if (snat === 'masq') d.push('iptables -t nat -A POSTROUTING -o ldz-d1 -j MASQUERADE')
      if (snat !== 'none') notes.push(snat)
    } else {
      d.push(`ip route add ${VIP}/32 via 10.1.0.10`)
      r.unshift(`ip addr add ${VIP}/32 dev lo`)
    }
    d.push(`iptables -P FORWARD ${pick(['ACCEPT', 'DROP'])}`)
    for (const rule of some([
      '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-m state --state ESTABLISHED -j ACCEPT',
      `-p udp -m state --state NEW -m udp --dport ${port} -j ACCEPT`,
      '-m conntrack --ctstate INVALID -j DROP',
      '-m conntrack --ctstate NEW -j ACCEPT',
      '-d 10.1.0.10/32 -p udp -j ACCEPT',
      `-d ${VIP}/32 -p udp --dport 53 -j ACCEPT`,
      '-s 10.1.0.10/32 -j ACCEPT',
      '-i ldz-d0 -j ACCEPT',
      `-p udp --sport ${port} -j ACCEPT`,
      '-m conntrack --ctstate DNAT -j ACCEPT',
      '-p udp -j REJECT --reject-with icmp-port-unreachable',
      '-j REJECT --reject-with icmp-host-prohibited',
    ], 4)) d.push(`iptables -A FORWARD ${rule}`)
    if (rnd() < 0.3) {
      // the director's own INPUT: only a DR-shaped route's VIP is never local there
      d.push(`iptables -P INPUT ${pick(['ACCEPT', 'DROP'])}`)
      for (const rule of some(['-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', `-d ${VIP}/32 -p udp --dport 53 -j DROP`, '-p udp --dport 53 -j ACCEPT'], 2)) d.push(`iptables -A INPUT ${rule}`)
      notes.push('director INPUT')
    }
    r.push(`iptables -P INPUT ${pick(['ACCEPT', 'ACCEPT', 'DROP'])}`)
    for (const rule of some(realserverInput('udp', port), 3)) r.push(`iptables -A INPUT ${rule}`)
    if (rnd() < 0.3) {
      r.push(`iptables -P OUTPUT ${pick(['ACCEPT', 'DROP'])}`)
      for (const rule of some(realserverOutput('udp', port), 2)) r.push(`iptables -A OUTPUT ${rule}`)
      notes.push('realserver OUTPUT')
    }
    if (rnd() < 0.15) {
      const where = pick(['director', 'realserver'] as const)
      notes.push(`NOTRACK on the ${where}`)
      if (where === 'director') d.push(`iptables -t raw -A PREROUTING -d ${VIP}/32 -p udp --dport 53 -j NOTRACK`)
      else r.push(`iptables -t raw -A PREROUTING -p udp --dport ${port} -j NOTRACK`, `iptables -t raw -A OUTPUT -p udp --sport ${port} -j NOTRACK`)
    }
    if (viaG && rnd() < 0.3) {
      notes.push('MASQUERADE on the router')
      g.push('iptables -t nat -A POSTROUTING -o ldz-g1 -j MASQUERADE')
    }
    // a DR-shaped realserver answers from the VIP only when its server is bound to it (udp-reply-wrong-source)
    const bindVip = mode === 'route' && rnd() < 0.6
    if (mode === 'route') notes.push(bindVip ? 'server bound to the VIP' : 'server bound to 0.0.0.0')
    const rp = pick(['0', '0', '0', '1', '2'])
    if (rp !== '0') {
      r.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${rp}`)
      notes.push(`rp_filter ${rp} on the realserver`)
    }
    if (rnd3() < 0.2) {
      // the realserver answers by the source address's own table (ip rule from ... lookup 100)
      const from = pick3(mode === 'route' ? [VIP, '10.1.0.10', '10.1.0.0/24'] : ['10.1.0.10', '10.1.0.0/24'])
      const via = pick3(viaG ? ['10.1.0.1', '10.2.0.1', 'unreachable'] : ['10.1.0.1', '10.1.0.1', 'unreachable'])
      notes.push(`realserver ip rule from ${from} -> ${via}`)
      r.push(`ip rule add from ${from} lookup 100 pref 100`, via === 'unreachable' ? 'ip route add unreachable default table 100' : `ip route add default via ${via} table 100`)
    }
    if (viaG && rnd3() < 0.35) {
      // the router sees only the answers: for UDP each is NEW there (no packet in the other direction)
      notes.push('router UDP state rules')
      g.push(pick3(['iptables -A FORWARD -p udp -m conntrack --ctstate NEW -j DROP', 'iptables -A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT', 'iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP']))
      if (rnd3() < 0.5) g.push(pick3(['iptables -P FORWARD DROP', 'iptables -A FORWARD -p udp --sport 53 -j ACCEPT', `iptables -A FORWARD -s ${VIP}/32 -j ACCEPT`]))
    }
    if (rnd3() < 0.15) {
      // the director marks the service's packets and routes the mark by a table of its own
      notes.push('director fwmark routing')
      d.push(`iptables -t mangle -A PREROUTING -d ${VIP}/32 -p udp --dport 53 -j MARK --set-mark 0x7`)
      d.push('ip rule add fwmark 0x7 lookup 107 pref 107', pick3(['ip route add unreachable default table 107', 'ip route add default via 10.1.0.10 table 107', 'ip route add blackhole default table 107']))
    }
    if (mode === 'dnat' && rnd3() < 0.15) {
      // a NOTRACK of the realserver's answers on the director: they are never un-DNATed
      notes.push("director NOTRACK of the answers")
      d.push('iptables -t raw -A PREROUTING -s 10.1.0.10/32 -p udp --sport 5353 -j NOTRACK')
    }
    // (fourth stream) the answers' table by protocol and port, the director's addrtype DNAT, a client on the
    // backends' LAN (hairpin): the first three streams keep their draws
    if (rnd4() < 0.2) {
      const via = pick4(viaG ? ['10.1.0.1', '10.2.0.1', 'unreachable'] : ['10.1.0.1', 'unreachable'])
      notes.push(`realserver ip rule ipproto udp sport ${port} -> ${via}`)
      r.push(`ip rule add ipproto udp sport ${port} lookup 102 pref 90`, via === 'unreachable' ? 'ip route add unreachable default table 102' : `ip route add default via ${via} table 102`)
      if (rnd4() < 0.5) r.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${pick4(['1', '2'])}`)
    }
    if (mode === 'dnat' && rnd4() < 0.2) {
      const limit = rnd4() < 0.6
      const onLo = rnd4() < 0.5
      notes.push(`addrtype DNAT${limit ? ' --limit-iface-in' : ''}${onLo ? ', VIP on lo' : ''}`)
      if (onLo) d.push(`ip addr del ${VIP}/32 dev ldz-d0`, `ip addr add ${VIP}/32 dev lo`)
      d.push(`iptables -t nat -I PREROUTING 1 -m addrtype --dst-type LOCAL${limit ? ' --limit-iface-in' : ''} -p udp --dport 53 -j DNAT --to-destination 10.1.0.10:5353`)
    }
    if (viaG && rnd4() < 0.2) {
      // the answers of a server on 0.0.0.0 take the route's preferred source (ip route ... src): another address
      // than the one the request went to is never un-DNATed nor taken by the client's connected socket
      const src = pick4(['10.1.0.10', '10.2.0.10'])
      notes.push(`realserver default route src ${src}`)
      r.push(`ip route change default via 10.2.0.1 src ${src}`)
    }
    const lan = mode === 'dnat' && rnd4() < 0.15
    if (lan) {
      const masq = pick4(['none', 'masq-out', 'masq-lan'] as const)
      notes.push(`client on the backends' LAN (hairpin), ${masq}`)
      if (masq === 'masq-out') d.push('iptables -t nat -A POSTROUTING -o ldz-d1 -j MASQUERADE')
      if (masq === 'masq-lan') d.push('iptables -t nat -A POSTROUTING -s 10.1.0.0/24 -d 10.1.0.0/24 -j MASQUERADE')
      if (rnd4() < 0.5) d.push('sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.ldz-d1.send_redirects=0')
    }
    out.push({
      name: `udp${seed % 1000}-${i}`,
      why: `random UDP scenario ${i} of seed ${seed}: ${notes.join(', ')}`,
      ns: {
        c: {role: 'client', setup: ['ip route add default via 203.0.113.1']},
        d: {role: 'director', setup: d.map(dev)},
        r: {role: 'realserver', setup: r.map(dev)},
        ...(viaG ? {g: {role: 'router' as const, setup: g.map(dev)}} : {}),
        ...(lan ? {h: {role: 'client' as const, setup: ['ip route add default via 10.1.0.1']}} : {}),
      },
      links: links(lan ? (viaG ? [CD, RG, GC] : [CD]) : viaG ? [CD, DR, RG, GC] : [CD, DR]),
      ...(lan ? {lans: [[['d', dev('ldz-d1'), '10.1.0.1/24'], ['r', dev('ldz-r0'), '10.1.0.10/24'], ['h', dev('ldz-h0'), '10.1.0.20/24']] as const]} : {}),
      server: {ns: 'r', port, ...(bindVip ? {bind: VIP} : {})},
      client: lan ? {ns: 'h', src: '10.1.0.20', connect: `${VIP}:53`} : {ns: 'c', src: '203.0.113.10', connect: `${VIP}:53`},
      proto: 'udp',
      // not asserted: the kernel's result is the answer trace must give
      expect: {connected: false, reply: false, closed: false},
      prefix,
    })
  }
  return out
}
