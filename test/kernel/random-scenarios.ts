// Random kernel scenarios: the declarative scenarios (scenarios.ts) show one pitfall each; these combine the same
// parts at random — DNAT or a DR-shaped route on the director, SNAT or not, the realserver answering through the
// director or around it, stateful and stateless filter rules and policies on both, rp_filter — so that trace is
// judged by the kernel on combinations nobody wrote down. Deterministic for a seed (LVSDOCTOR_KERNEL_SEED).
//
// Same addresses as scenarios.ts, prefix ldz:
//   c ldz-c0 203.0.113.10 ── ldz-d0 203.0.113.1  d  ldz-d1 10.1.0.1 ── ldz-r0 10.1.0.10  r
//   c ldz-c1 192.0.2.10   ── ldz-g1 192.0.2.1    g  ldz-g0 10.2.0.1 ── ldz-r1 10.2.0.10  r
import {mulberry32} from '../../bench/kube-common.js'
import type {Scenario} from './harness.js'
import {CD, DR, GC, RG, VIP, draws, realserverInput, realserverOutput, renamer} from './random-common.js'

export function randomScenarios(seed: number, count: number, prefix = 'ldz'): Scenario[] {
  // the namespace and interface prefix (LVSDOCTOR_KERNEL_PREFIX): the rules name the interfaces, so they follow it
  const {dev, links} = renamer(prefix)
  const rnd = mulberry32(seed)
  const {pick, some} = draws(rnd)
  // the rarer parts: their own stream, so that adding them leaves the first stream's draws unchanged
  const rnd2 = mulberry32((seed ^ 0x5bd1e995) >>> 0)
  const pick2 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd2() * xs.length)]!
  const some2 = <T>(xs: readonly T[], max: number): T[] => {
    const out: T[] = []
    for (let n = 1 + Math.floor(rnd2() * max); n > 0; n--) out.push(pick2(xs))
    return out
  }
  // a third stream (policy routing, marks, user chains, the router's state rules): LVSDOCTOR_KERNEL_EXTRA=0 leaves it out
  const rnd3 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x27d4eb2f) >>> 0)
  // a fourth stream (policy-rule selectors, addrtype DNAT, SNAT options): LVSDOCTOR_KERNEL_EXTRA=0 leaves it out too
  const rnd4 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x165667b1) >>> 0)
  const out: Scenario[] = []
  for (let i = 0; i < count; i++) {
    const mode = pick(['dnat', 'dnat', 'route'] as const)
    const viaG = rnd() < 0.5
    const port = mode === 'dnat' ? 8080 : 80
    const d: string[] = ['sysctl -qw net.ipv4.ip_forward=1']
    const r: string[] = [viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1']
    if (mode === 'dnat') {
      d.push(`ip addr add ${VIP}/32 dev ldz-d0`, `iptables -t nat -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`)
      const snat = pick(['none', 'none', 'snat', 'masq'] as const)
      if (snat === 'snat') d.push('iptables -t nat -A POSTROUTING -d 10.1.0.10/32 -p tcp --dport 8080 -j SNAT --to-source 10.1.0.1')
      if (snat === 'masq') d.push('iptables -t nat -A POSTROUTING -o ldz-d1 -j MASQUERADE')
    } else {
      d.push(`ip route add ${VIP}/32 via 10.1.0.10`)
      r.unshift(`ip addr add ${VIP}/32 dev lo`)
    }
    d.push(`iptables -P FORWARD ${pick(['ACCEPT', 'ACCEPT', 'DROP'])}`)
    for (const rule of some([
      '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      `-p tcp -m state --state NEW -m tcp --dport ${port} -j ACCEPT`,
      '-m conntrack --ctstate INVALID -j DROP',
      '-d 10.1.0.10/32 -p tcp --syn -j ACCEPT',
      '-s 10.1.0.10/32 -j ACCEPT',
      '-d 10.1.0.10/32 -j ACCEPT',
      `-d ${VIP}/32 -p tcp --dport 80 -j ACCEPT`,
      '-i ldz-d0 -j ACCEPT',
      '-o ldz-d0 -j ACCEPT',
      `-p tcp --sport ${port} -j ACCEPT`,
      '-m conntrack --ctstate DNAT -j ACCEPT',
      '-p tcp --tcp-flags FIN FIN -j DROP',
      '-j REJECT --reject-with icmp-host-prohibited',
      '-p tcp -j REJECT --reject-with tcp-reset',
    ], 4)) d.push(`iptables -A FORWARD ${rule}`)
    r.push(`iptables -P INPUT ${pick(['ACCEPT', 'ACCEPT', 'DROP'])}`)
    for (const rule of some(realserverInput('tcp', port), 3)) r.push(`iptables -A INPUT ${rule}`)
    if (rnd() < 0.3) {
      r.push(`iptables -P OUTPUT ${pick(['ACCEPT', 'DROP'])}`)
      for (const rule of some(realserverOutput('tcp', port), 2)) r.push(`iptables -A OUTPUT ${rule}`)
    }
    const rp = pick(['0', '0', '0', '1', '2'])
    if (rp !== '0') r.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${rp}`)
    // the rarer parts (second stream)
    const extras: string[] = []
    const g: string[] = ['sysctl -qw net.ipv4.ip_forward=1', 'ip route add 203.0.113.0/24 via 192.0.2.10']
    if (rnd2() < 0.25) {
      // the director's own INPUT/OUTPUT: forwarded packets never see them, but what the director sends itself does
      // (a REJECT's RST or ICMP error goes out through OUTPUT)
      extras.push('director INPUT/OUTPUT')
      if (rnd2() < 0.5) {
        d.push(`iptables -P INPUT ${pick2(['ACCEPT', 'DROP'])}`)
        for (const rule of some2(['-i lo -j ACCEPT', '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', '-p tcp --dport 22 -j ACCEPT', `-d ${VIP}/32 -p tcp --dport 80 -j DROP`, '-j REJECT --reject-with icmp-host-prohibited'], 2)) d.push(`iptables -A INPUT ${rule}`)
      }
      if (rnd2() < 0.7) {
        d.push(`iptables -P OUTPUT ${pick2(['ACCEPT', 'DROP'])}`)
        for (const rule of some2(['-o lo -j ACCEPT', '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', '-p icmp -j DROP', '-p tcp --tcp-flags RST RST -j DROP', '-o ldz-d0 -j ACCEPT'], 2)) d.push(`iptables -A OUTPUT ${rule}`)
      }
    }
    if (rnd2() < 0.15) {
      // the service untracked: no DNAT for it, and state matches see UNTRACKED
      const where = pick2(['director', 'realserver'] as const)
      extras.push(`NOTRACK on the ${where}`)
      const target = pick2(['NOTRACK', 'CT --notrack'])
      if (where === 'director') d.push(`iptables -t raw -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j ${target}`)
      else {
        r.push(`iptables -t raw -A PREROUTING -p tcp --dport ${port} -j ${target}`)
        if (rnd2() < 0.5) r.push(`iptables -t raw -A OUTPUT -p tcp --sport ${port} -j ${target}`)
      }
    }
    if (viaG && rnd2() < 0.3) {
      // the router translates what it sends to the client
      extras.push('SNAT on the router')
      g.push(rnd2() < 0.5 ? 'iptables -t nat -A POSTROUTING -o ldz-g1 -j MASQUERADE' : 'iptables -t nat -A POSTROUTING -o ldz-g1 -p tcp -j SNAT --to-source 192.0.2.1')
    }
    if (rnd2() < 0.2) {
      // a plain DROP, silent where REJECT answers
      extras.push('DROP in the realserver INPUT')
      r.push(pick2([`iptables -A INPUT -j DROP`, `iptables -A INPUT -p tcp --dport ${port} -j DROP`, `iptables -I INPUT 1 -p tcp --dport ${port} -j DROP`, `iptables -I INPUT 1 -s 203.0.113.0/24 -j DROP`]))
    }
    if (rnd2() < 0.25) {
      // rp_filter on one interface: the effective value is max(conf.all, conf.<if>)
      extras.push('rp_filter per interface')
      const iface = pick2(viaG ? ['d:ldz-d0', 'd:ldz-d1', 'r:ldz-r0', 'r:ldz-r1'] : ['d:ldz-d0', 'd:ldz-d1', 'r:ldz-r0'])
      const [host, name] = iface.split(':') as [string, string]
      ;(host === 'd' ? d : r).push(`sysctl -qw net.ipv4.conf.${name}.rp_filter=${pick2(['1', '1', '2'])}`)
    }
    // policy routing, marks, user chains, the router's own state rules (third stream: the first two keep their draws)
    const pick3 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd3() * xs.length)]!
    if (rnd3() < 0.2) {
      // the realserver answers by the source address's own table (ip rule from ... lookup 100)
      const from = pick3(mode === 'route' ? [VIP, '10.1.0.10', '10.2.0.10'] : ['10.1.0.10', '10.1.0.0/24', '10.2.0.10'])
      const via = pick3(viaG ? ['10.1.0.1', '10.2.0.1', 'unreachable'] : ['10.1.0.1', '10.1.0.1', 'unreachable'])
      extras.push(`realserver ip rule from ${from} -> ${via}`)
      r.push(`ip rule add from ${from} lookup 100 pref 100`, via === 'unreachable' ? 'ip route add unreachable default table 100' : `ip route add default via ${via} table 100`)
    }
    if (rnd3() < 0.2) {
      // the realserver marks what came in on ldz-r0 and answers through the table of that mark (CONNMARK restore)
      extras.push('realserver CONNMARK reply routing')
      r.push(pick3([
        'iptables -t mangle -A PREROUTING -i ldz-r0 -m conntrack --ctstate NEW -j CONNMARK --set-mark 0x1',
        'iptables -t mangle -A PREROUTING -i ldz-r0 -j CONNMARK --set-mark 0x1',
        'iptables -t mangle -A INPUT -i ldz-r0 -j CONNMARK --set-xmark 0x1/0xff',
      ]))
      if (rnd3() < 0.5) r.push('iptables -t mangle -A PREROUTING -j CONNMARK --restore-mark')
      // (in the filter table the restored mark routes nothing again: only mangle calls ip_route_me_harder)
      r.push(pick3(['iptables -t mangle -A OUTPUT -j CONNMARK --restore-mark', 'iptables -t mangle -A OUTPUT -m connmark --mark 0x1 -j MARK --set-mark 0x1', 'iptables -A OUTPUT -j CONNMARK --restore-mark']))
      r.push('ip rule add fwmark 0x1 lookup 101 pref 101', `ip route add default via ${pick3(viaG ? ['10.1.0.1', '10.2.0.1'] : ['10.1.0.1'])} table 101`)
      if (rnd3() < 0.4) r.push('sysctl -qw net.ipv4.conf.all.src_valid_mark=1')
    }
    if (rnd3() < 0.3) {
      // the director's FORWARD rules in a chain of their own, entered by a jump or a goto
      extras.push('director user chain')
      const how = pick3(['-j', '-j', '-g'])
      d.push('iptables -N ldz-fwd', `iptables -I FORWARD 1 ${pick3(['', '-p tcp ', '-i ldz-d0 ', '-o ldz-d1 ', '! -o ldz-d0 '])}${how} ldz-fwd`)
      for (let n = 1 + Math.floor(rnd3() * 3); n > 0; n--) {
        d.push(`iptables -A ldz-fwd ${pick3([
          '-s 203.0.113.0/24 -j RETURN',
          `-p tcp -m multiport --dports 80,${port} -j ACCEPT`,
          '-m iprange --src-range 203.0.113.5-203.0.113.20 -j ACCEPT',
          '-m iprange --dst-range 10.1.0.2-10.1.0.9 -j ACCEPT',
          '! -i ldz-d0 -j RETURN',
          '-p tcp ! --syn -m conntrack --ctstate NEW -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
          '-p tcp --tcp-flags SYN,RST,ACK,FIN SYN -j ACCEPT',
          '-m conntrack --ctstate NEW --ctorigdstport 80 -j ACCEPT',
          `-m conntrack --ctorigdst ${VIP}/32 -j ACCEPT`,
          '-j DROP',
        ])}`)
      }
    }
    if (viaG && rnd3() < 0.35) {
      // the router sees only the replies: its own state rules and conntrack settings
      extras.push('router state rules')
      g.push(...[pick3(['iptables -A FORWARD -p tcp ! --syn -m conntrack --ctstate NEW -j DROP', 'iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP', 'iptables -A FORWARD -m state --state NEW,INVALID -j DROP', 'iptables -A FORWARD -p tcp --tcp-flags SYN,ACK SYN,ACK -j DROP'])])
      if (rnd3() < 0.5) g.push(`sysctl -qw net.netfilter.nf_conntrack_tcp_${pick3(['loose=0', 'be_liberal=1'])}`)
    }
    if (rnd3() < 0.15) {
      // the director marks the service's packets and routes the mark by a table of its own
      extras.push('director fwmark routing')
      d.push(`iptables -t mangle -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 ${pick3(['', '-m conntrack --ctstate NEW '])}-j MARK --set-mark 0x7`)
      d.push('ip rule add fwmark 0x7 lookup 107 pref 107', pick3(['ip route add unreachable default table 107', 'ip route add prohibit default table 107', 'ip route add default via 10.1.0.10 table 107', 'ip route add blackhole default table 107']))
      if (rnd3() < 0.3) d.push('sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0')
    }
    // (fourth stream) policy-rule selectors, the director's addrtype DNAT, SNAT options: the first three keep their draws
    const pick4 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd4() * xs.length)]!
    if (rnd4() < 0.2) {
      // the realserver answers its service by a table of its own (ip rule ipproto/sport): the source check of the
      // requests (rp_filter) looks the route back up with the same selectors
      const via = pick4(viaG ? ['10.1.0.1', '10.2.0.1'] : ['10.1.0.1'])
      extras.push(`realserver ip rule sport ${port} -> ${via}`)
      r.push(`ip rule add ipproto tcp sport ${port} lookup 102 pref 90`, `ip route add default via ${via} table 102`)
      if (rnd4() < 0.6) r.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${pick4(['1', '1', '2'])}`)
    }
    if (rnd4() < 0.2) {
      // the director routes what arrives from the backends' side by a table of its own (ip rule iif): the answers,
      // and the source check of the requests it forwards there (looked up with that iif)
      const to = pick4(['203.0.113.0/24 dev ldz-d0', 'default via 10.1.0.10', 'unreachable default', '203.0.113.0/24 via 10.1.0.10'])
      extras.push(`director ip rule iif ldz-d1 -> ${to}`)
      d.push('ip rule add iif ldz-d1 lookup 103 pref 95', `ip route add ${to} table 103`)
      if (rnd4() < 0.6) d.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${pick4(['1', '2'])}`)
    }
    if (rnd4() < 0.25) {
      // selectors that match none of these packets (tos, uid range, a mark bit) or all of them but one table's
      // prefix (suppress_prefixlength, wg-quick style), towards a table that would break the path
      const host = pick4(['d', 'r'] as const)
      const rule = pick4(['tos 0x10', 'uidrange 1000-2000', 'fwmark 0x1/0x1', 'not to 0.0.0.0/0', 'lookup main suppress_prefixlength 0', 'ipproto udp', 'not from 0.0.0.0/0'])
      extras.push(`${host} ip rule ${rule}`)
      const into = host === 'd' ? d : r
      if (rule.startsWith('lookup main')) into.push(`ip rule add ${rule} pref 50`, 'ip rule add lookup 104 pref 60')
      else into.push(`ip rule add ${rule} lookup 104 pref 60`)
      into.push(`ip route add ${pick4(['unreachable default', 'blackhole default', 'prohibit default'])} table 104`)
    }
    if (mode === 'dnat' && rnd4() < 0.25) {
      // the DNAT by address type (Docker, kube-proxy): LOCAL, or LOCAL on the arrival device only; the VIP maybe on lo
      const onLo = rnd4() < 0.5
      const limit = rnd4() < 0.6
      extras.push(`director addrtype DNAT${limit ? ' --limit-iface-in' : ''}${onLo ? ', VIP on lo' : ''}`)
      if (onLo) d.push(`ip addr del ${VIP}/32 dev ldz-d0`, `ip addr add ${VIP}/32 dev lo`)
      d.push(`iptables -t nat -I PREROUTING 1 -m addrtype --dst-type LOCAL${limit ? ' --limit-iface-in' : ''} -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`)
      if (rnd4() < 0.5) d.push(`iptables -t nat -D PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`)
    }
    if (mode === 'dnat' && rnd4() < 0.2) {
      // SNAT with its options, in front of whatever the first stream chose
      const opt = pick4(['--random', '--persistent', '--random-fully', ''])
      extras.push(`SNAT ${opt || 'range'}`)
      d.push(`iptables -t nat -I POSTROUTING 1 -o ldz-d1 -p tcp -j SNAT --to-source 10.1.0.1${opt ? ` ${opt}` : ':20000-20010'}`)
    }
    if (rnd4() < 0.15) {
      // the realserver takes its own addresses as sources (accept_local) with rp_filter; the router's rp_filter
      extras.push('accept_local/rp_filter')
      r.push(`sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.all.rp_filter=${pick4(['1', '2'])}`)
      if (viaG) g.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${pick4(['1', '2'])}`)
    }
    // hairpin NAT: the client h sits on the backends' own LAN (a bridge with d and r) and reaches the VIP through
    // the director; without SNAT of those connections the realserver answers h directly
    const lan = mode === 'dnat' && rnd4() < 0.15
    const h: string[] = ['ip route add default via 10.1.0.1']
    if (lan) {
      const masq = pick4(['none', 'masq-out', 'masq-lan', 'kube-mark'] as const)
      extras.push(`client on the backends' LAN (hairpin), ${masq}`)
      if (masq === 'masq-out') d.push('iptables -t nat -A POSTROUTING -o ldz-d1 -j MASQUERADE')
      if (masq === 'masq-lan') d.push('iptables -t nat -A POSTROUTING -s 10.1.0.0/24 -d 10.1.0.0/24 -j MASQUERADE')
      if (masq === 'kube-mark') {
        d.push(
          `iptables -t nat -I PREROUTING 1 -s 10.1.0.0/24 -d ${VIP}/32 -p tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000`,
          'iptables -t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE',
        )
      }
      // the director would tell h to use r directly (an ICMP redirect, which h's secure_redirects refuses anyway)
      if (rnd4() < 0.5) d.push('sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.ldz-d1.send_redirects=0')
      if (rnd4() < 0.3) d.push('iptables -I FORWARD 1 -i ldz-d1 -o ldz-d1 -j ACCEPT')
    }
    out.push({
      name: `rnd${seed % 1000}-${i}`,
      why: `random scenario ${i} of seed ${seed}: ${mode}, replies via ${viaG ? 'the router' : 'the director'}${extras.length ? `; ${extras.join(', ')}` : ''}`,
      ns: {
        c: {role: 'client', setup: ['ip route add default via 203.0.113.1']},
        d: {role: 'director', setup: d.map(dev)},
        r: {role: 'realserver', setup: r.map(dev)},
        ...(viaG ? {g: {role: 'router' as const, setup: g.map(dev)}} : {}),
        ...(lan ? {h: {role: 'client' as const, setup: h.map(dev)}} : {}),
      },
      links: links(lan ? (viaG ? [CD, RG, GC] : [CD]) : viaG ? [CD, DR, RG, GC] : [CD, DR]),
      ...(lan ? {lans: [[['d', dev('ldz-d1'), '10.1.0.1/24'], ['r', dev('ldz-r0'), '10.1.0.10/24'], ['h', dev('ldz-h0'), '10.1.0.20/24']] as const]} : {}),
      server: {ns: 'r', port},
      client: lan ? {ns: 'h', src: '10.1.0.20', connect: `${VIP}:80`} : {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`},
      // not asserted: the kernel's result is the answer trace must give
      expect: {connected: false, reply: false, closed: false},
      prefix,
    })
  }
  return out
}
