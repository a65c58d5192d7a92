// The next hop answers an ARP request only if the request passes its source validation: arp_process routes the
// request (ip_route_input with the sender as source), so rp_filter applies to it. A realserver whose policy routing
// sends its own address's traffic to an unreachable table (`ip rule add from 10.1.0.10 lookup 100`) fails that check
// for the director's request under rp_filter 1 or 2 and never answers: nothing reaches it. The random kernel suite
// found it (rnd17-0: with check's rp_filter=2 fix the kernel still never connected; the kernel logged "martian
// source 10.1.0.10 from 10.1.0.1" for the ARP request), and trace said the connection works.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {addrJson, routeJson} from './host-json.js'

const VIP = '198.51.100.100'
const withVipOnLo = (json: string) => {
  const links = JSON.parse(json) as {ifname: string; addr_info: object[]}[]
  links[0]!.addr_info.push({family: 'inet', local: VIP, prefixlen: 32, scope: 'global', label: 'lo'})
  return JSON.stringify(links)
}
const rules = (policy: boolean) =>
  JSON.stringify([
    {priority: 0, src: 'all', table: 'local'},
    ...(policy ? [{priority: 100, src: '10.1.0.10', table: '100'}] : []),
    {priority: 32766, src: 'all', table: 'main'},
    {priority: 32767, src: 'all', table: 'default'},
  ])

function trace(o: {policy: boolean; rpFilter: number}) {
  // the director: eth0 toward the realserver, eth1 on the clients' network
  const dAddr = JSON.parse(addrJson('10.1.0.1')) as object[]
  dAddr.push({ifindex: 3, ifname: 'eth1', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, operstate: 'UP', link_type: 'ether', addr_info: [{family: 'inet', local: '203.0.113.1', prefixlen: 24, scope: 'global', label: 'eth1'}]})
  const d = hostFromFiles('d', 'd', new Map([
    ['ip-addr.json', JSON.stringify(dAddr)],
    ['ip-route.json', routeJson('10.1.0.1', '10.1.0.254', [{dst: VIP, gateway: '10.1.0.10', dev: 'eth0', flags: []}, {dst: '203.0.113.0/24', dev: 'eth1', protocol: 'kernel', scope: 'link', prefsrc: '203.0.113.1', flags: []}])],
    ['sysctl.txt', 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.forwarding = 1\nnet.ipv4.conf.eth0.forwarding = 1\nnet.ipv4.conf.eth1.forwarding = 1\n'],
  ]))
  const r = hostFromFiles('r', 'r', new Map([
    ['ip-addr.json', withVipOnLo(addrJson('10.1.0.10'))],
    ['ip-route.json', routeJson('10.1.0.10', '10.1.0.1', [{type: 'unreachable', dst: 'default', table: '100', flags: []}, {type: 'local', dst: VIP, dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: VIP, flags: []}])],
    ['ip-rule.json', rules(o.policy)],
    ['sysctl.txt', `net.ipv4.conf.all.rp_filter = ${o.rpFilter}\nnet.ipv4.conf.eth0.rp_filter = 0\n`],
    ['ss-ltnu.txt', 'tcp LISTEN 0 4 0.0.0.0:80 0.0.0.0:*\n'],
  ]))
  return traceConnection([d, r], {vip: parseEndpoint(`${VIP}:80`)!, proto: 'tcp', client: parseIp('203.0.113.10')!, clientPort: 40000})
}

describe('ARP requests meet the next hop\'s source validation', () => {
  test.each([1, 2])('rp_filter %i and a policy rule that makes the realserver\'s own address unreachable: no ARP answer, nothing arrives', (rpFilter) => {
    const t = trace({policy: true, rpFilter})
    expect(t.connection.connected).toBe(false)
    expect(t.firstFailure).toMatchObject({packet: 1, host: 'r', hook: 'LINK'})
    expect(t.firstFailure?.reason).toMatch(/r does not answer d's ARP request for 10\.1\.0\.10 \(from 10\.1\.0\.1 on eth0\)/)
  })

  test('rp_filter 0, or no such rule: the request is answered and the connection works', () => {
    const t0 = trace({policy: true, rpFilter: 0})
    expect(t0.connection, t0.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
    const t2 = trace({policy: false, rpFilter: 2})
    expect(t2.connection, t2.firstFailure?.reason).toEqual({connected: true, reply: true, closed: true})
  })
})
