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
    out.push({
      name: `rnd${seed % 1000}-${i}`,
      why: `random scenario ${i} of seed ${seed}: ${mode}, replies via ${viaG ? 'the router' : 'the director'}${extras.length ? `; ${extras.join(', ')}` : ''}`,
      ns: {
        c: {role: 'client', setup: ['ip route add default via 203.0.113.1']},
        d: {role: 'director', setup: d.map(dev)},
        r: {role: 'realserver', setup: r.map(dev)},
        ...(viaG ? {g: {role: 'router' as const, setup: g.map(dev)}} : {}),
      },
      links: links(viaG ? [CD, DR, RG, GC] : [CD, DR]),
      server: {ns: 'r', port},
      client: {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`},
      // not asserted: the kernel's result is the answer trace must give
      expect: {connected: false, reply: false, closed: false},
      prefix,
    })
  }
  return out
}
