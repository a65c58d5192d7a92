import {expect, test} from 'vitest'
import {hostPrefix, makePrefix, parseIp, type IpAddr} from '../../src/model/ip.js'
import type {Interface, Route} from '../../src/model/net.js'
import {checkOutputSource, routeInput, type InetConf, type RoutingTables} from '../../src/dataplane/routing.js'

const ip = (s: string) => parseIp(s)!
const loc = {file: 'ip-route.json', line: 1, text: ''}
const iface = (name: string, cidr: string): Interface => {
  const [a, l] = cidr.split('/')
  return {ifindex: 1, name, flags: ['UP'], addresses: [{family: 4, ip: ip(a!), prefixlen: Number(l), scope: 'global', loc}], loc}
}
const route = (dst: string, o: Partial<Route> = {}): Route => {
  const [a, l] = dst.split('/')
  return {table: 'main', type: 'unicast', family: 4, dst: l ? makePrefix(ip(a!), Number(l)) : hostPrefix(ip(a!)), scope: 'link', metric: 0, flags: [], loc, ...o}
}
// r: eth0 10.1.0.10/24 towards the director, eth1 10.2.0.10/24 towards the router (its default route)
const t: RoutingTables = {
  interfaces: [iface('eth0', '10.1.0.10/24'), iface('eth1', '10.2.0.10/24')],
  routes: [
    route('10.1.0.0/24', {dev: 'eth0'}),
    route('10.2.0.0/24', {dev: 'eth1'}),
    route('0.0.0.0/0', {dev: 'eth1', gateway: ip('10.2.0.1')}),
    route('10.1.0.10', {table: 'local', type: 'local', dev: 'eth0', scope: 'host'}),
    route('10.2.0.10', {table: 'local', type: 'local', dev: 'eth1', scope: 'host'}),
    route('198.51.100.100', {table: 'local', type: 'local', dev: 'lo', scope: 'host'}),
  ],
}
function conf(v: Record<string, number>): InetConf {
  const g = (k: string) => v[k]
  return {
    or: (n, i) => (g(`all.${n}`) ?? 0) !== 0 || (g(`${i}.${n}`) ?? 0) !== 0,
    max: (n, i) => Math.max(g(`all.${n}`) ?? 0, g(`${i}.${n}`) ?? 0),
    dev: (n, i) => g(`${i}.${n}`) ?? g(`all.${n}`),
  }
}
const pkt = (src: string, dst: string, iif: string) => ({src: ip(src), dst: ip(dst), iif})

test('strict rp_filter drops a packet that arrives where the route back does not leave; loose keeps it', () => {
  const p = pkt('203.0.113.10', '198.51.100.100', 'eth0')
  const strict = routeInput(t, conf({'all.rp_filter': 1}), p)
  expect(strict.ok).toBe(false)
  expect(!strict.ok && strict.reason).toMatch(/strict rp_filter.*eth1/)
  expect(routeInput(t, conf({'all.rp_filter': 2}), p).ok).toBe(true)
  expect(routeInput(t, conf({}), p).ok).toBe(true)
  // the effective value is max(all, iface): the interface alone can make it strict
  expect(routeInput(t, conf({'all.rp_filter': 0, 'eth0.rp_filter': 1}), p).ok).toBe(false)
  // ... and `all` = 2 makes an interface's 1 loose? no: max(2, 1) = 2, loose
  expect(routeInput(t, conf({'all.rp_filter': 2, 'eth0.rp_filter': 1}), p).ok).toBe(true)
})

test('martians: a 127/8 source or destination from the wire unless route_localnet', () => {
  expect(routeInput(t, conf({}), pkt('127.0.0.1', '10.1.0.10', 'eth0'))).toMatchObject({ok: false})
  const withLo: RoutingTables = {...t, routes: [...t.routes, route('127.0.0.0/8', {table: 'local', type: 'local', dev: 'lo', scope: 'host'})]}
  expect(routeInput(withLo, conf({'all.route_localnet': 1}), pkt('10.1.0.1', '127.0.0.1', 'eth0')).ok).toBe(true)
  expect(routeInput(withLo, conf({}), pkt('10.1.0.1', '127.0.0.1', 'eth0'))).toMatchObject({ok: false})
  expect(routeInput(t, conf({}), pkt('10.1.0.1', '0.1.2.3', 'eth0'))).toMatchObject({ok: false})
})

test('a source that is one of our own addresses is a martian unless accept_local', () => {
  expect(routeInput(t, conf({}), pkt('10.2.0.10', '10.1.0.10', 'eth0'))).toMatchObject({ok: false})
  expect(routeInput(t, conf({'all.accept_local': 1}), pkt('10.2.0.10', '10.1.0.10', 'eth0')).ok).toBe(true)
})

test('forwarding is decided by the input device', () => {
  const fwd = pkt('10.1.0.1', '192.0.2.7', 'eth0')
  expect(routeInput(t, conf({'eth0.forwarding': 0}), fwd)).toMatchObject({ok: false})
  expect(routeInput(t, conf({'eth0.forwarding': 1}), fwd).ok).toBe(true)
})

test('__mkroute_output: a loopback source may leave only with route_localnet', () => {
  const lo: IpAddr = ip('127.0.0.1')
  expect(checkOutputSource(conf({}), lo, 'eth0')).toMatch(/route_localnet/)
  expect(checkOutputSource(conf({'eth0.route_localnet': 1}), lo, 'eth0')).toBeUndefined()
  expect(checkOutputSource(conf({}), lo, 'lo')).toBeUndefined()
  expect(checkOutputSource(conf({}), ip('10.1.0.10'), 'eth0')).toBeUndefined()
})
