// The kernel scenarios of issue 7, written with nft rulesets (loaded with `nft -f`). The topology of scenarios.ts
// with the ldm- prefix: client 203.0.113.10 (c), director d (203.0.113.1 / 10.1.0.1), realserver r (10.1.0.10,
// and 10.2.0.10 towards the router), router g (10.2.0.1 / 192.0.2.1) with its own link to the client
// (192.0.2.10), VIP 198.51.100.100.
//
//   c ldm-c0 203.0.113.10 ── ldm-d0 203.0.113.1  d  ldm-d1 10.1.0.1 ── ldm-r0 10.1.0.10  r
//   c ldm-c1 192.0.2.10   ── ldm-g1 192.0.2.1    g  ldm-g0 10.2.0.1 ── ldm-r1 10.2.0.10  r
import {hashInput, jhash, reciprocalScale} from '../../src/dataplane/nft.js'
import {parseIp} from '../../src/model/ip.js'
import {CLIENT_PORT, nftLoad, type Scenario} from './nft-harness.js'

const VIP = '198.51.100.100'
const FWD = 'sysctl -qw net.ipv4.ip_forward=1'

type Links = Scenario['links']
const CD: Links[number] = ['c', 'ldm-c0', '203.0.113.10/24', 'd', 'ldm-d0', '203.0.113.1/24']
const DR: Links[number] = ['d', 'ldm-d1', '10.1.0.1/24', 'r', 'ldm-r0', '10.1.0.10/24']
const RG: Links[number] = ['r', 'ldm-r1', '10.2.0.10/24', 'g', 'ldm-g0', '10.2.0.1/24']
const GC: Links[number] = ['g', 'ldm-g1', '192.0.2.1/24', 'c', 'ldm-c1', '192.0.2.10/24']

const client = {role: 'client' as const, setup: ['ip route add default via 203.0.113.1']}
const router = {role: 'router' as const, setup: [FWD, 'ip route add 203.0.113.0/24 via 192.0.2.10']}
const clientSide = {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`}

const ALL = {connected: true, reply: true, closed: true}
const NOTHING = {connected: false, reply: false, closed: false}
const HANDSHAKE_ONLY = {connected: true, reply: false, closed: false}

/** A director d with an nft ruleset in front of r (port `port`); r answers through d or around it through g. */
function natFarm(name: string, why: string, o: {ruleset: string; returnVia: 'd' | 'g'; port?: number; dExtra?: string[]; expect: Scenario['expect']}): Scenario {
  const viaG = o.returnVia === 'g'
  return {
    name,
    why,
    ns: {
      c: client,
      d: {role: 'director', setup: [FWD, `ip addr add ${VIP}/32 dev ldm-d0`, ...(o.dExtra ?? []), nftLoad(o.ruleset)]},
      r: {role: 'realserver', setup: [viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1']},
      ...(viaG ? {g: router} : {}),
    },
    links: viaG ? [CD, DR, RG, GC] : [CD, DR],
    server: {ns: 'r', port: o.port ?? 8080},
    client: clientSide,
    expect: o.expect,
  }
}

/** d routes the VIP unchanged to r (which holds it on lo and answers through g): a DR-shaped path. */
function drShaped(name: string, why: string, o: {ruleset: string; expect: Scenario['expect']}): Scenario {
  return {
    name,
    why,
    ns: {
      c: client,
      d: {role: 'director', setup: [FWD, `ip route add ${VIP}/32 via 10.1.0.10`, nftLoad(o.ruleset)]},
      r: {role: 'realserver', setup: [`ip addr add ${VIP}/32 dev lo`, 'ip route add default via 10.2.0.1']},
      g: router,
    },
    links: [CD, DR, RG, GC],
    server: {ns: 'r', port: 80},
    client: clientSide,
    expect: o.expect,
  }
}

const DNAT = `
table ip ldm_nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr ${VIP} tcp dport 80 dnat to 10.1.0.10:8080
	}
}`

/**
 * "Convergent Gateways in Da Place, part 3" (FULL-NAT), node1, on this topology: nat postrouting SNAT per subnet
 * (the backends' own traffic to the outside, and connections to the backends from the director's address), DNAT
 * per port, and the netdev egress chain dropping ARP for the duplicated gateway address.
 */
const FULLNAT = `
table ip ldm_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.1.0.0/24 oif "ldm-d0" snat to 203.0.113.1
		ip daddr 10.1.0.0/24 oif "ldm-d1" snat to 10.1.0.1
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iif "ldm-d0" tcp dport 80 dnat to 10.1.0.10:8080
		iif "ldm-d0" tcp dport 2202 dnat to 10.1.0.11:22
	}
}
table netdev ldm_filter {
	chain egress {
		type filter hook egress device "ldm-d1" priority -500; policy accept;
		arp saddr ip 10.1.0.254 drop
		arp daddr ip 10.1.0.254 drop
	}
}`

/** The firewalld zone policy shape on a forwarding router: established first, `ct state invalid drop`, then the service. */
const FW_INVALID_DROP = `
table inet ldm_fw {
	chain forward {
		type filter hook forward priority filter + 10; policy drop;
		ct state { established, related } accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		jump forward_allow
		reject with icmpx admin-prohibited
	}
	chain forward_allow {
		ip daddr ${VIP} tcp dport 80 accept
	}
}`

const FW_STATELESS = `
table inet ldm_fw {
	chain forward {
		type filter hook forward priority filter + 10; policy drop;
		ip daddr ${VIP} tcp dport 80 accept
		ct state { established, related } accept
	}
}`

/** nftlb's layout: a services verdict map, one chain per farm, the backend by a map, ct mark for the masquerade. */
function nftlbFarm(pick: string, backends: readonly string[]): string {
  return `
table ip ldm_lb {
	map tcp-services {
		type ipv4_addr . inet_service : verdict
		elements = { ${VIP} . 80 : goto lb01 }
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr . tcp dport vmap @tcp-services
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ct mark 0x80000000/1 masquerade
	}
	chain lb01 {
		ct mark set 0x80000001
		meta l4proto tcp dnat to ${pick} map { ${backends.map((b, i) => `${i} : ${b}`).join(', ')} }:8080
	}
}`
}

/**
 * The jhash bucket of the client's connection as lvsdoctor computes it (nft_jhash_eval on a little-endian CPU):
 * the scenario maps only that bucket to the live realserver, so the kernel agrees only if the hash is right.
 */
const SEED = 0x2a
const MOD = 8
function jhashBucket(): number {
  const data = hashInput([
    {expr: {kind: 'payload', protocol: 'ip', field: 'saddr'}, value: {t: 'addr', v: parseIp('203.0.113.10')!}},
    {expr: {kind: 'payload', protocol: 'tcp', field: 'sport'}, value: {t: 'int', v: CLIENT_PORT}},
  ])!
  return reciprocalScale(jhash(data, SEED), MOD)
}
const bucket = jhashBucket()
// the other buckets lead to addresses the director has no route to: the SYN is dropped there, by the kernel and by trace
const jhashBackends = Array.from({length: MOD}, (_, i) => (i === bucket ? '10.1.0.10' : `10.9.9.${20 + i}`))

export const NFT_SCENARIOS: readonly Scenario[] = [
  natFarm('nft-dnat-return', 'nft DNAT on the director, the realserver answers through it: replies are un-DNATed (source 000)', {ruleset: DNAT, returnVia: 'd', expect: ALL}),
  natFarm('nft-dnat-noreturn', 'nft DNAT, but the realserver answers around the director: the client gets a SYN/ACK from 10.1.0.10:8080 it never asked for (source 000)', {ruleset: DNAT, returnVia: 'g', expect: NOTHING}),
  natFarm('nft-fullnat', 'Convergent Gateways part 3: SNAT per subnet + DNAT per port (+ netdev egress ARP drop); the SNAT brings the reply back through the director whatever the realserver routes (source 003)', {
    ruleset: FULLNAT,
    returnVia: 'g',
    expect: ALL,
  }),
  natFarm('nft-fullnat-nosnat', 'the same full-NAT host without its postrouting SNAT rules: the realserver answers around the director (source 003)', {
    ruleset: FULLNAT.replace(/\t\tip saddr 10\.1\.0\.0\/24.*\n/, '').replace(/\t\tip daddr 10\.1\.0\.0\/24.*\n/, ''),
    returnVia: 'g',
    expect: NOTHING,
  }),
  drShaped('nft-dr-invalid-drop', 'DR-shaped path through a firewalld-style forward chain with `ct state invalid drop`: the router never sees the SYN/ACK, so the client ACK is INVALID (SYN_SENT + ACK) and dropped (LVS-HOWTO 29.16)', {
    ruleset: FW_INVALID_DROP,
    expect: HANDSHAKE_ONLY,
  }),
  drShaped('nft-dr-stateless', 'the same DR-shaped path with a stateless accept of the service before any ct state rule: every packet passes (LVS-HOWTO 29.16 fix)', {
    ruleset: FW_STATELESS,
    expect: ALL,
  }),
  natFarm('nft-numgen-farm', 'nftlb farm: vmap on daddr . dport, `numgen inc mod 2` map; the first connection takes element 0 (nft_ng_inc_init starts the counter at modulus-1), ct mark 0x80000001 masquerades it; element 1 has no route', {
    ruleset: nftlbFarm('numgen inc mod 2', ['10.1.0.10', '10.9.9.9']),
    returnVia: 'g',
    expect: ALL,
  }),
  natFarm('nft-numgen-dead', 'the same farm by `numgen inc mod 3` whose elements 0 and 1 lead to an address the director has no route to: the SYN (element 0) and its retransmission (element 1: an unconfirmed entry is made again) fail', {
    ruleset: nftlbFarm('numgen inc mod 3', ['10.9.9.9', '10.9.9.9', '10.1.0.10']),
    returnVia: 'g',
    expect: NOTHING,
  }),
  natFarm('nft-jhash-farm', `nftlb farm by \`jhash ip saddr . tcp sport mod ${MOD} seed 0x${SEED.toString(16)}\`: only the bucket lvsdoctor computes for 203.0.113.10:${CLIENT_PORT} (${bucket}) leads to the live realserver`, {
    ruleset: nftlbFarm(`jhash ip saddr . tcp sport mod ${MOD} seed 0x${SEED.toString(16)}`, jhashBackends),
    returnVia: 'g',
    expect: ALL,
  }),
  // found by the random nft scenarios (random-nft.kernel.test.ts): each passes in the kernel, and trace dropped it
  natFarm('nft-rpf-oif0', 'a reverse path filter written `fib saddr . iif oif 0 drop` (nft -j prints the 0 as "0"): ifindex 0 is what nft_fib4_eval stores when the route back does not leave by the input device; every packet here has its route back through its input device, so nothing is dropped', {
    ruleset: `${DNAT}
table inet ldm_rpf {
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		fib saddr . iif oif 0 drop
	}
}`,
    returnVia: 'd',
    expect: ALL,
  }),
  {
    ...natFarm('nft-rs-out-iifname', 'the realserver\'s output chain (policy drop) accepts `iifname != "lo" tcp sport 8080`: a local packet has no input device, which nft_meta_get_eval_ifname loads as the empty name (kernels >= 5.6), so the rule matches its replies', {ruleset: DNAT, returnVia: 'd', expect: ALL}),
    ns: {
      ...natFarm('x', '', {ruleset: DNAT, returnVia: 'd', expect: ALL}).ns,
      r: {role: 'realserver', setup: ['ip route add default via 10.1.0.1', nftLoad(`
table inet ldm_rs {
	chain output {
		type filter hook output priority filter; policy drop;
		iifname != "lo" tcp sport 8080 accept
	}
}`)]},
    },
  },
  {
    ...natFarm('nft-raw-ct-invalid', 'a `ct state invalid drop` in a prerouting chain at priority -250, before conntrack (-200): nft_ct_get_eval finds no conntrack entry there and no notrack mark, so every packet is invalid and dropped', {
      ruleset: `${DNAT}
table ip ldm_early {
	chain prerouting {
		type filter hook prerouting priority -250; policy accept;
		ct state invalid drop
	}
}`,
      returnVia: 'd',
      expect: NOTHING,
    }),
  },
]
