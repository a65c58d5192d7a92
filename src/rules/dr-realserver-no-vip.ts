// dr-realserver-no-vip: an LVS-DR realserver receives the client's packet unchanged (only the MAC is the
// realserver's), addressed to the VIP; an LVS-TUN realserver receives it inside IPIP and unwraps it on its ipip
// tunnel device. Either way the kernel delivers it to a socket only when the VIP is a local address of the
// realserver (ip_route_input: RTN_LOCAL), or when the realserver's own PREROUTING redirects it to itself (the
// LVS-HOWTO's "transparent proxy" realserver). Otherwise the packet is forwarded on (net.ipv4.conf.<if>.forwarding
// on: back to a router, often to the director again, until its TTL runs out) or dropped without a word (forwarding
// off: ip_error counts it in InAddrErrors and sends nothing). LVS-TUN also needs the tunnel device itself: without
// an ipip device that is up, ipip_rcv finds no tunnel and the kernel answers protocol unreachable.
import {formatIp} from '../model/ip.js'
import type {Evidence} from '../model/finding.js'
import type {Interface} from '../model/net.js'
import {customRule, finding} from './engine/helpers.js'
import {ev, type HostView} from './engine/host.js'
import {flowPacket} from './engine/packets.js'
import {received} from './engine/path.js'
import {describeBackend, describeService, type Backend, type LbService} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'dr-realserver-no-vip',
  title: 'an LVS-DR/TUN realserver does not accept packets for the VIP',
  severity: 'error',
  description:
    "An LVS-DR realserver gets the client's packets unchanged, addressed to the VIP (the director changes only the MAC); an LVS-TUN realserver gets them inside IPIP and unwraps them on its ipip tunnel device. The realserver's kernel hands such a packet to the service only when the VIP is one of its own addresses (usually a /32 on lo, with arp_ignore/arp_announce so that it does not answer ARP for it), or when its own PREROUTING redirects it to itself. Otherwise it forwards the packet on (forwarding on) or drops it silently (forwarding off): no connection is ever made. LVS-TUN also needs an ipip device (tunl0) that is up, or the kernel answers the director's IPIP packets with protocol unreachable.",
  sources: [
    '000_e07122559a47da1e.txt (LVS-DR: only the MAC is changed; the realserver must hold the VIP)',
    'LVS-HOWTO, LVS-DR and LVS-Tun (the VIP on lo or tunl0 of each realserver)',
    'net/ipv4/route.c ip_route_input_slow (not local, forwarding off: -EHOSTUNREACH, ip_error sends nothing)',
    'net/ipv4/ipip.c ipip_rcv, net/ipv4/ip_tunnel.c ip_tunnel_lookup (the fallback tunl0 only when up)',
  ],
}

/** The host's ipip tunnel device (tunl0 or another of kind ipip), preferring one that is up. */
function ipipDevice(rs: HostView): Interface | undefined {
  const tuns = (rs.snap.interfaces ?? []).filter((i) => i.kind === 'ipip' || i.linkType === 'ipip' || /^tunl\d+$/.test(i.name))
  return tuns.find((i) => i.flags.includes('UP')) ?? tuns[0]
}

function forwardingOf(rs: HostView, iif: string): {on: boolean; evidence: Evidence[]; known: boolean} {
  const c = rs.sysctl.conf('forwarding', iif, 'dev')
  if (c.known) return {on: c.value === 1, evidence: c.lines.map((l) => ev(l.loc)), known: true}
  const f = rs.sysctl.get('net.ipv4.ip_forward')
  return f ? {on: rs.sysctl.num('net.ipv4.ip_forward') === 1, evidence: [ev(f.loc)], known: true} : {on: false, evidence: [], known: false}
}

/** arp_ignore / arp_announce ops a DR realserver needs once the VIP is on lo (what dr-realserver-arp would ask). */
function arpOps(rs: HostView): FixOp[] {
  const ops: FixOp[] = []
  const ifs = (rs.snap.interfaces ?? []).filter((i) => i.name !== 'lo' && !i.flags.includes('NOARP') && i.addresses.some((a) => a.family === 4)).map((i) => i.name)
  if (!rs.sysctl.present) return ops
  if (ifs.some((i) => rs.sysctl.conf('arp_ignore', i, 'max').value < 1)) ops.push({kind: 'sysctl', key: 'net.ipv4.conf.all.arp_ignore', value: '1'})
  if (ifs.some((i) => rs.sysctl.conf('arp_announce', i, 'max').value < 2)) ops.push({kind: 'sysctl', key: 'net.ipv4.conf.all.arp_announce', value: '2'})
  return ops
}

function check(svc: LbService, b: Backend, rs: HostView): RuleFinding | undefined {
  const probe = svc.probes[0]
  if (!probe) return undefined
  const vip = probe.dst
  const tun = b.method === 'tunnel'
  const kind = tun ? 'LVS-TUN' : 'LVS-DR'
  const d = svc.host
  const rip = rs.addressOf(b.ip)
  const base: Evidence[] = [ev(svc.loc, d.name), ev(b.loc, d.name), ...(rip ? [ev(rip.addr.loc)] : [])]
  const what = `${rs.name} (${describeBackend(b)}) is an ${kind} realserver of ${describeService(svc)} on ${d.name}`
  let iif = rip?.iface.name
  // --tun-type gre / gue: ip_gre's gre0 or a fou port unwraps them, not the ipip device (not followed here)
  const dest = svc.ipvs?.dests.find((x) => x.ip.value === b.ip.value && x.port === (b.port ?? x.port))
  if (tun && (dest?.tunnelType ?? 'ipip') === 'ipip') {
    const dev = ipipDevice(rs)
    if (!dev || !dev.flags.includes('UP')) {
      return finding(meta, rs.name, {
        message:
          `${what}, but ${dev ? `its ipip device ${dev.name} is down: the director's IPIP packets find no tunnel to unwrap them (ip_tunnel_lookup takes the fallback tunl0 only when it is up) and ${rs.name} answers them with ICMP port unreachable (tunnel4_rcv)` : `it has no ipip tunnel device (tunl0: the ipip module is not loaded, or net.core.fb_tunnels_only_for_init_net keeps it out of this namespace): ${rs.name} answers the director's IPIP packets with ICMP protocol unreachable`}. No connection to ${formatIp(vip)} is ever made.`,
        evidence: dev ? [...base, ev(dev.loc)] : base,
        fix: {
          summary: `load the ipip module and bring the fallback tunnel up on ${rs.name} (modprobe ipip; ip link set tunl0 up), put ${formatIp(vip)}/32 on tunl0 and set rp_filter to 2 on tunl0 (or 0 on both all and tunl0: the kernel uses the larger; the unwrapped packets arrive there from the clients' addresses)`,
          ops: [],
        },
      })
    }
    iif = dev.name
  }
  if (rs.isLocal(vip) !== false) return undefined
  // the realserver's own PREROUTING may take the packet (REDIRECT, a DNAT to one of its addresses)
  const syn = flowPacket({src: probe.src, sport: probe.sport ?? 40000, dst: vip, dport: probe.dport ?? svc.port ?? 0, proto: svc.proto}, 'SYN')
  const r = received(rs, syn, {state: 'NEW', iif})
  if (r.to === 'local' || r.blocked) return undefined
  const fwd = forwardingOf(rs, iif ?? 'all')
  const fate = !fwd.known
    ? `it forwards it on if forwarding is on (the snapshot has no sysctl.txt to tell) or drops it`
    : fwd.on
      ? `forwarding is on (net.ipv4.conf.${iif ?? 'all'}.forwarding = 1), so it routes the packet on${rs.oifFor(vip) ? ` out of ${rs.oifFor(vip)}` : ''}, away from any socket`
      : `forwarding is off, so it drops the packet without a word (ip_error: InAddrErrors)`
  const dev = tun ? iif! : 'lo'
  const ops: FixOp[] = [{kind: 'cmd', text: `ip addr add ${formatIp(vip)}/32 dev ${dev}`}, ...(tun ? [] : arpOps(rs))]
  return finding(meta, rs.name, {
    message:
      `${what}, but ${formatIp(vip)} is not an address of ${rs.name} (not on any interface, no local route) and no PREROUTING rule of its own redirects it. ` +
      `The ${tun ? 'unwrapped' : 'forwarded'} SYN arrives${iif ? ` on ${iif}` : ''} addressed to ${formatIp(vip)}: ${fate}. No connection the director sends to ${rs.name} is ever made.`,
    evidence: [...base, ...fwd.evidence],
    fix: {
      summary: tun
        ? `put the VIP on ${rs.name}'s tunnel device (persist it in the network configuration; rp_filter must be 2 on ${dev}, or 0 on both all and ${dev}: the kernel uses the larger)`
        : `put the VIP on ${rs.name}'s loopback, and keep ${rs.name} from answering ARP for it (arp_ignore=1, arp_announce=2); persist both in the network configuration and /etc/sysctl.d`,
      ops,
    },
  })
}

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  const seen = new Set<string>()
  for (const svc of w.services) {
    if (svc.kind !== 'ipvs') continue
    for (const b of svc.backends) {
      const rs = b.owner
      if (!rs || rs === svc.host || b.local || (b.method !== 'route' && b.method !== 'tunnel') || b.weight === 0) continue
      const key = `${rs.name}|${svc.probes[0]?.dst.value}|${b.method}`
      if (seen.has(key)) continue
      seen.add(key)
      const f = check(svc, b, rs)
      if (f) out.push(f)
    }
  }
  return out
})
