// The rpfilter kernel scenarios (rpfilter.kernel.test.ts).
//
//   c lrp-c0 203.0.113.10 ── lrp-d0 203.0.113.1  d  lrp-d1 10.1.0.1 ── lrp-r0 10.1.0.10  r
//   c lrp-c2 198.18.0.10  ── lrp-d2 198.18.0.1   d      (a second link: d's route back to the client)
import type {Scenario} from './harness.js'

const VIP = '198.51.100.100'
const ALL = {connected: true, reply: true, closed: true}
const NOTHING = {connected: false, reply: false, closed: false}
const CD: Scenario['links'][number] = ['c', 'lrp-c0', '203.0.113.10/24', 'd', 'lrp-d0', '203.0.113.1/24']
const CD2: Scenario['links'][number] = ['c', 'lrp-c2', '198.18.0.10/24', 'd', 'lrp-d2', '198.18.0.1/24']
const DR: Scenario['links'][number] = ['d', 'lrp-d1', '10.1.0.1/24', 'r', 'lrp-r0', '10.1.0.10/24']

/** DNAT of the VIP on d to r:8080; `asym` routes d's way back to the client over the second link. */
function scenario(name: string, why: string, o: {asym?: boolean; d: string[]; expect: Scenario['expect']; fixed?: Scenario['fixed']}): Scenario {
  return {
    name,
    why,
    prefix: 'lrp',
    ns: {
      c: {role: 'client', setup: ['ip route add default via 203.0.113.1']},
      d: {
        role: 'director',
        setup: [
          'sysctl -qw net.ipv4.ip_forward=1',
          `ip addr add ${VIP}/32 dev lrp-d0`,
          `iptables -t nat -A PREROUTING -d ${VIP}/32 -p tcp --dport 80 -j DNAT --to-destination 10.1.0.10:8080`,
          ...(o.asym ? ['ip route add 203.0.113.10/32 via 198.18.0.10 dev lrp-d2'] : []),
          ...o.d,
        ],
      },
      r: {role: 'realserver', setup: ['ip route add default via 10.1.0.1']},
    },
    links: o.asym ? [CD, CD2, DR] : [CD, DR],
    server: {ns: 'r', port: 8080},
    client: {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`},
    expect: o.expect,
    ...(o.fixed ? {fixed: o.fixed} : {}),
  }
}

const RPF_DROP = 'iptables -t raw -A PREROUTING -m rpfilter --invert -j DROP'
// mark 1 on the client's packets; table 100 routes the backends but nothing else (unreachable default)
const MARKED = ['iptables -t mangle -A PREROUTING -i lrp-d0 -j MARK --set-mark 1', 'ip rule add fwmark 1 lookup 100 pref 100', 'ip route add 10.1.0.0/24 dev lrp-d1 table 100', 'ip route add unreachable default table 100']

export const RPFILTER_SCENARIOS: readonly Scenario[] = [
  scenario('rpf-sym', 'a raw `-m rpfilter --invert -j DROP` (the medium-company corpus dump has one; firewalld writes it for IPv6) with symmetric routes: the client\'s packets pass the reverse path check', {d: [RPF_DROP], expect: ALL}),
  scenario('rpf-asym', 'the same where d routes back to the client over another link: strict rpfilter drops every packet of the client (ipt_rpfilter.c: the reverse route must leave by the input device)', {asym: true, d: [RPF_DROP], expect: NOTHING, fixed: ALL}),
  scenario('rpf-asym-loose', 'the asymmetric routes with `--loose`: any device will do, the connection works', {asym: true, d: ['iptables -t raw -A PREROUTING -m rpfilter --loose --invert -j DROP'], expect: ALL}),
  scenario('rpf-asym-none', 'the asymmetric routes without rpfilter: the replies take the other link and the client takes them (rp_filter 0 in the namespace)', {asym: true, d: [], expect: ALL}),
  scenario('rpf-validmark', '`--validmark` looks the route back up with the packet\'s mark: table 100 (fwmark 1) has no route to the client, so the check fails', {d: [...MARKED, 'iptables -t mangle -A PREROUTING -m rpfilter --validmark --invert -j DROP'], expect: NOTHING, fixed: ALL}),
  scenario('rpf-nomark', 'the same marks without `--validmark`: the lookup ignores the mark and finds the main table\'s route', {d: [...MARKED, 'iptables -t mangle -A PREROUTING -m rpfilter --invert -j DROP'], expect: ALL}),
]
