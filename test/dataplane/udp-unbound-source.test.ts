// A UDP server bound to 0.0.0.0 answers with sendto and no source address: the kernel routes the answer with saddr 0
// (udp_sendmsg -> ip_route_output_flow), so policy rules `from ADDR` do not match it (fib4_rule_match), and the source
// is then taken from the route found. A server bound to the address is routed with it, and the rule applies. Found
// by the random UDP kernel suite's third stream (udp14-1, udp15-15: a realserver with `ip rule add from 10.1.0.0/24
// lookup 100` and table 100 unreachable answered in the kernel; trace said unreachable).
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {addrJson, routeJson} from './host-json.js'

const ADDR = addrJson('10.1.0.10')
const ROUTE = routeJson('10.1.0.10', '10.1.0.1', [{type: 'unreachable', dst: 'default', table: '100', flags: []}])
const RULE = JSON.stringify([
  {priority: 0, src: 'all', table: 'local'},
  {priority: 100, src: '10.1.0.0', srclen: 24, table: '100'},
  {priority: 32766, src: 'all', table: 'main'},
  {priority: 32767, src: 'all', table: 'default'},
])

function trace(socket: string, proto: 'udp' | 'tcp' = 'udp') {
  const files = new Map([['ip-addr.json', ADDR], ['ip-route.json', ROUTE], ['ip-rule.json', RULE], ['ss-ltnu.txt', `${socket}\n`]])
  return traceConnection([hostFromFiles('r', 'r', files)], {vip: parseEndpoint('10.1.0.10:53')!, proto, client: parseIp('203.0.113.10')!, clientPort: 40000})
}

describe('policy rules `from ADDR` and the answers of a socket without a bound address', () => {
  test('UDP on 0.0.0.0: routed with saddr 0, the rule does not apply, the answer leaves by the main table', () => {
    const r = trace('udp UNCONN 0 0 0.0.0.0:53 0.0.0.0:*')
    expect(r.connection, r.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
  })

  test('UDP bound to 10.1.0.10: routed with that source, the rule sends it to the unreachable table', () => {
    const r = trace('udp UNCONN 0 0 10.1.0.10:53 0.0.0.0:*')
    expect(r.connection.reply).toBe(false)
    expect(r.firstFailure).toMatchObject({packet: 2, host: 'r', hook: 'ROUTING'})
  })

  test('TCP on 0.0.0.0: the accepted socket has the connection\'s address, so the rule applies', () => {
    const r = trace('tcp LISTEN 0 4 0.0.0.0:53 0.0.0.0:*', 'tcp')
    expect(r.connection.connected).toBe(false)
    expect(r.firstFailure).toMatchObject({packet: 2, host: 'r', hook: 'ROUTING'})
  })
})
