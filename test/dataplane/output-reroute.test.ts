// Which LOCAL_OUT hooks route a packet again after changing it (ip_route_me_harder). Only three do: the iptables
// mangle table (ipt_mangle_out: saddr, daddr, mark or tos changed within it), an nft chain of type route
// (nf_route_table_hook, the same test) and the nat core (nf_nat_ipv4_local_fn: the connection's destination is
// translated). A mark set by the filter or raw table, or by an nft chain of type filter, routes nothing again: the
// packet leaves by the route its socket chose. Found with the random kernel scenarios' mark routing (prefix lk9):
// a realserver with `ip rule fwmark 0x1 lookup 101` (table 101: unreachable default) and `-t filter -A OUTPUT -j
// MARK --set-mark 0x1` connected and closed in the kernel; trace rerouted by the mark and said unreachable.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {addrJson, routeJson} from './host-json.js'

const ADDR = addrJson('10.1.0.10')
// table 101, where the mark 0x1 leads, has only an unreachable default
const ROUTE = routeJson('10.1.0.10', '10.1.0.1', [{type: 'unreachable', dst: 'default', table: '101', flags: []}])
const RULE = JSON.stringify([
  {priority: 0, src: 'all', table: 'local'},
  {priority: 101, src: 'all', fwmark: '0x1', table: '101'},
  {priority: 32766, src: 'all', table: 'main'},
  {priority: 32767, src: 'all', table: 'default'},
])

const iptables = (table: string) => `*${table}\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n`
const nft = (type: string) =>
  JSON.stringify({nftables: [
    {table: {family: 'ip', name: 'm', handle: 1}},
    {chain: {family: 'ip', table: 'm', name: 'output', handle: 1, type, hook: 'output', prio: -150, policy: 'accept'}},
    {rule: {family: 'ip', table: 'm', chain: 'output', handle: 2, expr: [{mangle: {key: {meta: {key: 'mark'}}, value: 1}}]}},
  ]})

/** The realserver answering an outside client at 10.1.0.10:8080, with the given ruleset file. */
function trace(file: string, text: string) {
  const files = new Map([['ip-addr.json', ADDR], ['ip-route.json', ROUTE], ['ip-rule.json', RULE], ['ss-ltnu.txt', 'tcp LISTEN 0 4 0.0.0.0:8080 0.0.0.0:*\n'], [file, text]])
  return traceConnection([hostFromFiles('r', 'r', files)], {vip: parseEndpoint('10.1.0.10:8080')!, proto: 'tcp', client: parseIp('203.0.113.10')!, clientPort: 40000})
}

describe('a mark set at LOCAL_OUT reroutes only from the tables that route again', () => {
  test.each(['filter', 'raw'])('iptables -t %s -A OUTPUT -j MARK: the reply keeps its route and the connection works', (table) => {
    const r = trace('iptables-save.txt', iptables(table))
    expect(r.connection, r.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
  })

  test('iptables -t mangle -A OUTPUT -j MARK: rerouted by the mark into the unreachable table', () => {
    const r = trace('iptables-save.txt', iptables('mangle'))
    expect(r.connection.connected).toBe(false)
    // the SYN/ACK, routed again with the mark 0x1, meets table 101
    expect(r.firstFailure).toMatchObject({packet: 2, host: 'r', hook: 'ROUTING', rule: {text: 'unreachable default table 101'}})
  })

  test('an nft chain of type filter setting the mark does not reroute; one of type route does', () => {
    expect(trace('nft-ruleset.json', nft('filter')).connection).toEqual({connected: true, reply: true, closed: true})
    const route = trace('nft-ruleset.json', nft('route'))
    expect(route.firstFailure).toMatchObject({packet: 2, host: 'r', hook: 'ROUTING', rule: {text: 'unreachable default table 101'}})
  })
})

describe('the reroute after a nat OUTPUT DNAT sees the marks of that moment', () => {
  // The kernel routes the DNATed packet again inside the nat hook (nf_nat_ipv4_local_fn, priority -100), with the
  // mark it has then; a mark the filter table (priority 0) sets afterwards routes nothing. Found by the random local
  // kernel suite (seed 13, loc13-13: filter OUTPUT marks 0x1, fwmark 0x1 leads to a blackhole, and the kernel
  // connected), where trace rerouted with the final mark.
  const B_ADDR = addrJson('10.1.0.20')
  const B_ROUTE = routeJson('10.1.0.20', '10.1.0.1')
  const dnat = (markTable: string) =>
    '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -d 198.51.100.5/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.20:8080\nCOMMIT\n' +
    `*${markTable}\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${markTable === 'mangle' ? ':PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' : ''}-A OUTPUT -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n`
  const local = (markTable: string) => {
    const r = hostFromFiles('r', 'r', new Map([['ip-addr.json', ADDR], ['ip-route.json', ROUTE], ['ip-rule.json', RULE], ['iptables-save.txt', dnat(markTable)]]))
    const b = hostFromFiles('b', 'b', new Map([['ip-addr.json', B_ADDR], ['ip-route.json', B_ROUTE], ['ss-ltnu.txt', 'tcp LISTEN 0 4 0.0.0.0:8080 0.0.0.0:*\n']]))
    return traceConnection([r, b], {vip: parseEndpoint('198.51.100.5:8080')!, proto: 'tcp', client: parseIp('10.1.0.10')!, clientPort: 40000})
  }

  test('a filter OUTPUT mark after the DNAT: routed by the main table, the connection works', () => {
    const r = local('filter')
    expect(r.connection, r.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
  })

  test('a mangle OUTPUT mark before it (priority -150): the reroute sees it and meets the unreachable table', () => {
    const r = local('mangle')
    expect(r.connection.connected).toBe(false)
    expect(r.firstFailure).toMatchObject({packet: 1, host: 'r', hook: 'ROUTING', rule: {text: 'unreachable default table 101'}})
  })
})
