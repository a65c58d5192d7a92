// The kernel scenarios, declarative and small. Addresses: client 203.0.113.10 (c), director d
// (203.0.113.1 / 10.1.0.1), realserver r (10.1.0.10, and 10.2.0.10 towards the router), router g
// (10.2.0.1 / 192.0.2.1) with its own link to the client (192.0.2.10), VIP 198.51.100.100.
//
//   c ldt-c0 203.0.113.10 ── ldt-d0 203.0.113.1  d  ldt-d1 10.1.0.1 ── ldt-r0 10.1.0.10  r
//   c ldt-c1 192.0.2.10   ── ldt-g1 192.0.2.1    g  ldt-g0 10.2.0.1 ── ldt-r1 10.2.0.10  r
import type {Scenario} from './harness.js'

const VIP = '198.51.100.100'
const FWD = 'sysctl -qw net.ipv4.ip_forward=1'

type Links = Scenario['links']
const CD: Links[number] = ['c', 'ldt-c0', '203.0.113.10/24', 'd', 'ldt-d0', '203.0.113.1/24']
const DR: Links[number] = ['d', 'ldt-d1', '10.1.0.1/24', 'r', 'ldt-r0', '10.1.0.10/24']
const RG: Links[number] = ['r', 'ldt-r1', '10.2.0.10/24', 'g', 'ldt-g0', '10.2.0.1/24']
const GC: Links[number] = ['g', 'ldt-g1', '192.0.2.1/24', 'c', 'ldt-c1', '192.0.2.10/24']

const client = {role: 'client' as const, setup: ['ip route add default via 203.0.113.1']}
const router = {role: 'router' as const, setup: [FWD, 'ip route add 203.0.113.0/24 via 192.0.2.10']}
const clientSide = {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`}

/** DNAT on d to r:8080; r answers through d (its default route) or around it through g. */
function dnat(name: string, why: string, o: {returnVia: 'd' | 'g'; extra?: string[]; rExtra?: string[]; expect: Scenario['expect']; fixed?: Scenario['fixed']}): Scenario {
  const viaG = o.returnVia === 'g'
  return {
    name,
    why,
    ns: {
      c: client,
      d: {role: 'director', setup: [FWD, `ip addr add ${VIP}/32 dev ldt-d0`, `iptables -t nat -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`, ...(o.extra ?? [])]},
      r: {role: 'realserver', setup: [viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1', ...(o.rExtra ?? [])]},
      ...(viaG ? {g: router} : {}),
    },
    links: viaG ? [CD, DR, RG, GC] : [CD, DR],
    server: {ns: 'r', port: 8080},
    client: clientSide,
    expect: o.expect,
    ...(o.fixed ? {fixed: o.fixed} : {}),
  }
}

/** d forwards the VIP to r without NAT (a route, or a fwmark policy route); r holds the VIP on lo and answers through g. */
function drShaped(name: string, why: string, o: {dSetup: string[]; rExtra?: string[]; returnVia?: 'd' | 'g'; expect: Scenario['expect']; fixed?: Scenario['fixed']}): Scenario {
  const viaG = (o.returnVia ?? 'g') === 'g'
  return {
    name,
    why,
    ns: {
      c: client,
      d: {role: 'director', setup: [FWD, ...o.dSetup]},
      r: {role: 'realserver', setup: [`ip addr add ${VIP}/32 dev lo`, viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1', ...(o.rExtra ?? [])]},
      ...(viaG ? {g: router} : {}),
    },
    links: viaG ? [CD, DR, RG, GC] : [CD, DR],
    server: {ns: 'r', port: 80},
    client: clientSide,
    expect: o.expect,
    ...(o.fixed ? {fixed: o.fixed} : {}),
  }
}

const ALL = {connected: true, reply: true, closed: true}
const NOTHING = {connected: false, reply: false, closed: false}
const HANDSHAKE_ONLY = {connected: true, reply: false, closed: false}

export const SCENARIOS: readonly Scenario[] = [
  dnat('dnat-return', 'DNAT on the director, the realserver answers through it: replies are un-DNATed (source 000)', {returnVia: 'd', expect: ALL}),
  dnat('dnat-noreturn', 'DNAT, but the realserver answers around the director: the client gets a SYN/ACK from 10.1.0.10:8080 it never asked for (source 000)', {returnVia: 'g', expect: NOTHING, fixed: ALL}),
  dnat('raw-state-invalid', 'a raw-table `-m state --state INVALID -j DROP`: raw runs before conntrack, so every packet there has no entry and xt_state calls it INVALID (the trace called it UNTRACKED and let it pass)', {
    returnVia: 'd',
    extra: ['iptables -t raw -A PREROUTING -m state --state INVALID -j DROP'],
    expect: NOTHING,
  }),
  dnat('fullnat', 'DNAT plus SNAT to the director: the reply must come back through it whatever the realserver routes (source 001, 003)', {
    returnVia: 'g',
    extra: ['iptables -t nat -A POSTROUTING -d 10.1.0.10/32 -p tcp --dport 8080 -j SNAT --to-source 10.1.0.1'],
    expect: ALL,
  }),
  {
    name: 'localhost-dnat',
    why: 'nat OUTPUT DNAT of 127.0.0.1:3306 to a remote 10.1.0.10:3197: the loopback source may not leave the host (source 004)',
    ns: {
      d: {role: 'director', setup: ['iptables -t nat -A OUTPUT -d 127.0.0.1/32 -p tcp --dport 3306 -j DNAT --to-destination 10.1.0.10:3197', 'iptables -t nat -A POSTROUTING -o ldt-d1 -j MASQUERADE']},
      r: {role: 'realserver', setup: ['ip route add default via 10.1.0.1']},
    },
    links: [DR],
    server: {ns: 'r', port: 3197},
    client: {ns: 'd', src: '127.0.0.1', connect: '127.0.0.1:3306'},
    expect: NOTHING,
    fixed: ALL,
  },
  {
    name: 'localhost-dnat-lnet',
    why: 'the same with net.ipv4.conf.all.route_localnet=1 and MASQUERADE: the connection works (source 004, kube-proxy does this)',
    ns: {
      d: {role: 'director', setup: ['sysctl -qw net.ipv4.conf.all.route_localnet=1', 'iptables -t nat -A OUTPUT -d 127.0.0.1/32 -p tcp --dport 3306 -j DNAT --to-destination 10.1.0.10:3197', 'iptables -t nat -A POSTROUTING -o ldt-d1 -j MASQUERADE']},
      r: {role: 'realserver', setup: ['ip route add default via 10.1.0.1']},
    },
    links: [DR],
    server: {ns: 'r', port: 3197},
    client: {ns: 'd', src: '127.0.0.1', connect: '127.0.0.1:3306'},
    expect: ALL,
  },
  drShaped('dr-state-new', 'DR-shaped: the director forwards without NAT and sees only the client side; FORWARD accepts --state NEW only: the client ACK is INVALID (SYN_SENT + ACK) and dropped (LVS-HOWTO 29.1, 29.16)', {
    dSetup: [`ip route add ${VIP}/32 via 10.1.0.10`, 'iptables -P FORWARD DROP', 'iptables -A FORWARD -p tcp --dport 80 -m state --state NEW -j ACCEPT'],
    expect: HANDSHAKE_ONLY,
    fixed: ALL,
  }),
  drShaped('dr-estab-reject', 'DR-shaped with RELATED,ESTABLISHED + NEW --dport 80 + REJECT icmp-host-prohibited: the INVALID ACK is rejected (LVS-HOWTO 29.14)', {
    dSetup: [
      `ip route add ${VIP}/32 via 10.1.0.10`,
      'iptables -N ldt-FW',
      'iptables -A FORWARD -j ldt-FW',
      'iptables -A ldt-FW -m state --state RELATED,ESTABLISHED -j ACCEPT',
      'iptables -A ldt-FW -p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT',
      'iptables -A ldt-FW -j REJECT --reject-with icmp-host-prohibited',
    ],
    expect: HANDSHAKE_ONLY,
    fixed: ALL,
  }),
  drShaped('dr-stateless', 'DR-shaped with a stateless --dport 80 ACCEPT: every packet passes (LVS-HOWTO 29.16 fix)', {
    dSetup: [`ip route add ${VIP}/32 via 10.1.0.10`, 'iptables -P FORWARD DROP', 'iptables -A FORWARD -p tcp --dport 80 -j ACCEPT'],
    expect: ALL,
  }),
  drShaped('rp-strict-asym', 'strict rp_filter on the realserver: the request arrives on ldt-r0 but the route back to the client leaves by ldt-r1', {
    dSetup: [`ip route add ${VIP}/32 via 10.1.0.10`],
    rExtra: ['sysctl -qw net.ipv4.conf.all.rp_filter=1'],
    expect: NOTHING,
    fixed: ALL,
  }),
  drShaped('rp-loose-asym', 'the same path with loose rp_filter (2): a route back exists, so the packets pass', {
    dSetup: [`ip route add ${VIP}/32 via 10.1.0.10`],
    rExtra: ['sysctl -qw net.ipv4.conf.all.rp_filter=2'],
    expect: ALL,
  }),
  drShaped('fwmark-route', 'policy routing by fwmark: mangle PREROUTING marks port 80, `ip rule fwmark 1 table 100` routes the VIP to the realserver (LVS-HOWTO 29.3)', {
    dSetup: ['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -p tcp --dport 80 -j MARK --set-mark 1', 'ip rule add fwmark 1 table 100', 'ip route add default via 10.1.0.10 table 100'],
    returnVia: 'd',
    expect: ALL,
  }),
  drShaped('fwmark-miss', 'the same policy route, but the mark is set for port 8080 only: the VIP has no route on the director', {
    dSetup: ['iptables -t mangle -A PREROUTING -d 198.51.100.100/32 -p tcp --dport 8080 -j MARK --set-mark 1', 'ip rule add fwmark 1 table 100', 'ip route add default via 10.1.0.10 table 100'],
    returnVia: 'd',
    expect: NOTHING,
    fixed: ALL,
  }),
  dnat('fwd-drop-noreturn', 'FORWARD policy DROP with an ACCEPT for the DNATed request only: the reply is dropped in FORWARD', {
    returnVia: 'd',
    extra: ['iptables -P FORWARD DROP', 'iptables -A FORWARD -d 10.1.0.10/32 -p tcp --dport 8080 -j ACCEPT'],
    expect: NOTHING,
    fixed: ALL,
  }),
  dnat('fwd-drop-all', 'FORWARD policy DROP and nothing accepted: the DNATed request and its replies are both dropped; check reports both (filter-blocks-vip, forward-drops-nat-replies) and their fixes together repair the connection (found by the random scenarios, seed 2)', {
    returnVia: 'd',
    extra: ['iptables -P FORWARD DROP'],
    expect: NOTHING,
    fixed: ALL,
  }),
  dnat('fwd-drop-return', 'FORWARD policy DROP with the request rule and a ctstate ESTABLISHED,RELATED return rule: the connection works', {
    returnVia: 'd',
    extra: ['iptables -P FORWARD DROP', 'iptables -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', 'iptables -A FORWARD -d 10.1.0.10/32 -p tcp --dport 8080 -j ACCEPT'],
    expect: ALL,
  }),
  dnat('fwd-ack-reset', "FORWARD accepts the DNATed SYN (--state NEW) and the replies, and rejects the rest of TCP with tcp-reset: the client's handshake ACK is answered with a reset, and its connect() fails with ECONNRESET (found by the random scenarios, seed 4: rnd4-5); forward-drops-nat-requests' accept repairs it", {
    returnVia: 'd',
    extra: ['iptables -A FORWARD -p tcp -m state --state NEW -m tcp --dport 8080 -j ACCEPT', 'iptables -A FORWARD -s 10.1.0.10/32 -p tcp --sport 8080 -j ACCEPT', 'iptables -A FORWARD -p tcp -j REJECT --reject-with tcp-reset'],
    expect: NOTHING,
    fixed: ALL,
  }),
  dnat('filter-mark-noroute', "the realserver marks its output in the filter table (-t filter -A OUTPUT -j MARK --set-mark 0x1) and `ip rule fwmark 0x1` leads to an unreachable table: filter does not route again (only mangle, an nft route chain and nat OUTPUT call ip_route_me_harder), so the replies keep their route and the connection works (trace rerouted by the mark and said unreachable; found with the random scenarios' mark routing, prefix lk9)", {
    returnVia: 'd',
    rExtra: ['ip rule add fwmark 0x1 lookup 101 pref 101', 'ip route add unreachable default table 101', 'iptables -t filter -A OUTPUT -j MARK --set-mark 0x1'],
    expect: ALL,
  }),
  dnat('mangle-mark-reroute', 'the same mark set in the mangle table: ipt_mangle_out sees the mark change and routes the SYN/ACK again, into the unreachable table', {
    returnVia: 'd',
    rExtra: ['ip rule add fwmark 0x1 lookup 101 pref 101', 'ip route add unreachable default table 101', 'iptables -t mangle -A OUTPUT -j MARK --set-mark 0x1'],
    expect: NOTHING,
  }),
]

// ---- realservers' own firewalls and DR-shaped routes through a FORWARD chain (prefix ldq: realserver-filter-blocks-service,
// forward-blocks-routed-vip). The namespaces and interfaces carry the ldq prefix so that these run beside the others.
const ldq = (s: Scenario): Scenario => {
  const dev = (x: string) => x.replace(/\bldt-/g, 'ldq-')
  return {
    ...s,
    prefix: 'ldq',
    ns: Object.fromEntries(Object.entries(s.ns).map(([n, spec]) => [n, {...spec, setup: spec.setup.map(dev)}])),
    links: s.links.map((l) => l.map(dev) as unknown as Links[number]),
  }
}

export const REALSERVER_SCENARIOS: readonly Scenario[] = [
  dnat('rs-input-director-only', "DNAT without SNAT: the realserver's INPUT (policy DROP) accepts the director's address only, but the SYN comes from the client's (realserver-filter-blocks-service)", {
    returnVia: 'd',
    rExtra: ['iptables -P INPUT DROP', 'iptables -A INPUT -s 10.1.0.1/32 -j ACCEPT'],
    expect: NOTHING,
    fixed: ALL,
  }),
  dnat('rs-input-new-only', "the realserver's INPUT (policy DROP) accepts port 8080 for --state NEW only: the handshake completes, the request is dropped (realserver-filter-blocks-service)", {
    returnVia: 'd',
    rExtra: ['iptables -P INPUT DROP', 'iptables -A INPUT -p tcp -m state --state NEW -m tcp --dport 8080 -j ACCEPT'],
    expect: HANDSHAKE_ONLY,
    fixed: ALL,
  }),
  dnat('rs-output-drop', "the realserver's OUTPUT policy is DROP: its SYN/ACK never leaves (realserver-filter-blocks-service)", {
    returnVia: 'd',
    rExtra: ['iptables -P OUTPUT DROP'],
    expect: NOTHING,
    fixed: ALL,
  }),
  drShaped('dr-fwd-accepts-rip', "DR-shaped route, FORWARD policy DROP with an accept for the realserver's address: the routed packets carry the VIP (forward-blocks-routed-vip)", {
    dSetup: [`ip route add ${VIP}/32 via 10.1.0.10`, 'iptables -P FORWARD DROP', 'iptables -A FORWARD -d 10.1.0.10/32 -p tcp --dport 80 -j ACCEPT'],
    expect: NOTHING,
    fixed: ALL,
  }),
  drShaped('dr-fwd-drop-return', 'DR-shaped route whose replies come back through the director: FORWARD accepts the VIP but not the replies from it (forward-blocks-routed-vip)', {
    dSetup: [`ip route add ${VIP}/32 via 10.1.0.10`, 'iptables -P FORWARD DROP', `iptables -A FORWARD -d ${VIP}/32 -p tcp --dport 80 -j ACCEPT`],
    returnVia: 'd',
    expect: NOTHING,
    fixed: ALL,
  }),
  dnat('dnat-fwd-syn-only', "FORWARD policy DROP accepts the DNATed request for --ctstate NEW only and the replies by source: the client's ACK and request are ESTABLISHED and dropped (forward-drops-nat-requests)", {
    returnVia: 'd',
    extra: ['iptables -P FORWARD DROP', 'iptables -A FORWARD -d 10.1.0.10/32 -p tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT', 'iptables -A FORWARD -s 10.1.0.10/32 -p tcp --sport 8080 -j ACCEPT'],
    expect: HANDSHAKE_ONLY,
    fixed: ALL,
  }),
].map(ldq)
