// A multipath route (nexthop ... nexthop ...) picks its next hop by a hash of the flow under a per-boot random seed
// (fib_select_multipath): trace follows the first next hop and says so; a single-path route says nothing.
import {expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {addrJson, routeJson} from './host-json.js'

function trace(route: object) {
  const files = new Map([['ip-addr.json', addrJson('10.1.0.10')], ['ip-route.json', routeJson('10.1.0.10', '10.1.0.1', [route])]])
  return traceConnection([hostFromFiles('r', 'r', files)], {vip: parseEndpoint('198.51.100.5:80')!, proto: 'tcp', client: parseIp('10.1.0.10')!, clientPort: 40000})
}

test('a multipath route: trace follows the first next hop and names the others as the kernel\'s possible choice', () => {
  const r = trace({dst: '198.51.100.0/24', flags: [], nexthops: [{gateway: '10.1.0.2', dev: 'eth0', weight: 1, flags: []}, {gateway: '10.1.0.3', dev: 'eth0', weight: 1, flags: []}]})
  expect(r.assumptions.join('\n')).toMatch(/multipath route ip-route\.json:1 .*first \(via 10\.1\.0\.2 dev eth0\).*via 10\.1\.0\.3 dev eth0/)
})

test('a single-path route: no such assumption', () => {
  const r = trace({dst: '198.51.100.0/24', gateway: '10.1.0.2', dev: 'eth0', flags: []})
  expect(r.assumptions.join('\n')).not.toMatch(/multipath/)
})
