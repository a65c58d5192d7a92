// One trace over a 100,000-rule kube-proxy style snapshot: prints the time to load (parse) the snapshot and
// the time of one whole replayed connection (8 TCP packets), which must stay under 1 s.
//   npx tsx bench/trace.ts [RULES]
import {performance} from 'node:perf_hooks'
import {generateKubeProxyDump} from './gen-kube-proxy.js'
import {hostFromFiles} from '../src/snapshot/store.js'
import {parseEndpoint, parseIp} from '../src/model/ip.js'
import {traceConnection} from '../src/services/trace.js'

const rules = Number(process.argv[2] ?? 100_000)
const dump = generateKubeProxyDump(rules)
// the worst case for the chain walk: the last service of nat KUBE-SERVICES
const svcLine = dump.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES -d') && l.includes('-j KUBE-SVC-')).at(-1)!
const m = /-d (\S+)\/32 -p (tcp|udp) .*--dport (\d+)/.exec(svcLine)!
const vip = `${m[1]}:${m[3]}`
const files = new Map<string, string>([
  ['iptables-save.txt', dump],
  ['ip-addr.json', JSON.stringify([
    {ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], addr_info: [{family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host'}]},
    {ifindex: 2, ifname: 'eth0', flags: ['UP'], addr_info: [{family: 'inet', local: '10.0.0.5', prefixlen: 24, scope: 'global'}]},
    {ifindex: 3, ifname: 'cni0', flags: ['UP'], addr_info: [{family: 'inet', local: '10.244.0.1', prefixlen: 16, scope: 'global'}]},
  ])],
  ['ip-route.json', JSON.stringify([
    {dst: 'default', gateway: '10.0.0.1', dev: 'eth0', flags: []},
    {dst: '10.0.0.0/24', dev: 'eth0', scope: 'link', prefsrc: '10.0.0.5', flags: []},
    {dst: '10.244.0.0/16', dev: 'cni0', scope: 'link', prefsrc: '10.244.0.1', flags: []},
    {type: 'local', dst: '10.0.0.5', dev: 'eth0', table: 'local', scope: 'host', flags: []},
    {type: 'local', dst: '10.244.0.1', dev: 'cni0', table: 'local', scope: 'host', flags: []},
  ])],
  ['sysctl.txt', 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.forwarding = 1\nnet.ipv4.conf.all.rp_filter = 0\n'],
])

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const loads: number[] = []
const traces: number[] = []
let result
for (let i = 0; i < 3; i++) {
  const t0 = performance.now()
  const host = hostFromFiles('node', 'bench', files)
  const t1 = performance.now()
  result = traceConnection([host], {vip: parseEndpoint(vip)!, proto: m[2] as 'tcp' | 'udp', client: parseIp('10.0.0.99')!})
  const t2 = performance.now()
  loads.push(t1 - t0)
  traces.push(t2 - t1)
  if (i === 0) console.log(`snapshot: ${host.iptables?.ruleCount} iptables rules; service ${m[2]} ${vip} (the last of nat KUBE-SERVICES)`)
}
console.log(`load (parse) : ${median(loads).toFixed(0)} ms (median of 3)`)
console.log(`trace        : ${median(traces).toFixed(0)} ms (median of 3), ${result!.packets.length} packets, connection ${JSON.stringify(result!.connection)}`)
console.log(`first packet : ${result!.packets[0]!.steps.length} steps; ${result!.firstFailure ? `first failure: ${result!.firstFailure.reason}` : 'no failure'}`)
if (median(traces) >= 1000) {
  console.error('trace over the budget of 1 s')
  process.exitCode = 1
}
