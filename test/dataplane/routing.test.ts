import {expect, test} from 'vitest'
import {hostPrefix, makePrefix, parseIp, type IpAddr} from '../../src/model/ip.js'
import type {Interface, IpRule, Route} from '../../src/model/net.js'
import {checkOutputSource, routeInput, routeLookup, type InetConf, type RoutingTables} from '../../src/dataplane/routing.js'

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

// ---- policy rules in the source check (fib_validate_source) and rule selectors; kernel-confirmed in namespaces
const rule = (priority: number, o: Partial<IpRule>): IpRule => ({priority, family: 4, not: false, action: 'lookup', loc: {file: 'ip-rule.json', line: priority, text: ''}, ...o})
const withRules = (rules: IpRule[], routes: Route[]): RoutingTables => ({
  ...t,
  routes: [...t.routes, ...routes],
  rules: [rule(0, {table: 'local'}), ...rules, rule(32766, {table: 'main'}), rule(32767, {table: 'default'})],
})
const tcp = (src: string, dst: string, iif: string, sport: number, dport: number) => ({...pkt(src, dst, iif), proto: 6, sport, dport})

test('the source check looks up the route back with the packet protocol and its ports swapped (ip rule ipproto/sport)', () => {
  // r answers its service (sport 8080) through eth0 by table 100, everything else through eth1 (main)
  const rt = withRules([rule(100, {ipproto: 6, sport: [8080, 8080], table: '100'})], [route('0.0.0.0/0', {table: '100', dev: 'eth0', gateway: ip('10.1.0.1')})])
  // a request to the service: the route back is its answer's (sport 8080): eth0, where it arrived
  expect(routeInput(rt, conf({'all.rp_filter': 1}), tcp('203.0.113.10', '10.1.0.10', 'eth0', 40000, 8080)).ok).toBe(true)
  // another port: the route back is main's eth1: strict rp_filter drops it
  expect(routeInput(rt, conf({'all.rp_filter': 1}), tcp('203.0.113.10', '10.1.0.10', 'eth0', 40000, 22))).toMatchObject({ok: false})
  // no ports given (what trace did before): the rule never applied to the source check
  expect(routeInput(rt, conf({'all.rp_filter': 1}), pkt('203.0.113.10', '10.1.0.10', 'eth0'))).toMatchObject({ok: false})
})

test('the source check of a packet to forward looks up the route back from the forward route\'s output device (ip rule iif)', () => {
  // a director: eth0 10.1.0.10/24 towards the backends, eth1 towards the clients (default); iif eth0 -> table 100
  const rt = withRules([rule(100, {iif: 'eth0', table: '100'})], [route('0.0.0.0/0', {table: '100', dev: 'eth0', gateway: ip('10.1.0.20')})])
  const toBackend = pkt('203.0.113.10', '10.1.0.30', 'eth1') // forwarded out eth0
  // the route back is looked up with iif eth0 -> table 100 -> eth0, not eth1 where it arrived
  expect(routeInput(rt, conf({'all.rp_filter': 1}), toBackend)).toMatchObject({ok: false})
  expect(routeInput(rt, conf({'all.rp_filter': 2}), toBackend).ok).toBe(true)
  // a packet for the host itself is checked from lo: the rule does not apply, main's eth1 is where it arrived
  expect(routeInput(rt, conf({'all.rp_filter': 1}), pkt('203.0.113.10', '10.2.0.10', 'eth1')).ok).toBe(true)
  // without the rule, the forwarded packet passes strict rp_filter too
  expect(routeInput(t, conf({'all.rp_filter': 1}), toBackend).ok).toBe(true)
})

test('accept_local with strict rp_filter: a source of our own passes only on the device that holds it', () => {
  // 10.2.0.10 is eth1's: arriving on eth0 it fails the device match, on eth1 it passes
  expect(routeInput(t, conf({'all.accept_local': 1, 'all.rp_filter': 1}), pkt('10.2.0.10', '10.1.0.10', 'eth0'))).toMatchObject({ok: false})
  expect(routeInput(t, conf({'all.accept_local': 1, 'all.rp_filter': 1}), pkt('10.2.0.10', '10.1.0.10', 'eth1')).ok).toBe(true)
  expect(routeInput(t, conf({'all.accept_local': 1, 'all.rp_filter': 2}), pkt('10.2.0.10', '10.1.0.10', 'eth0')).ok).toBe(true)
})

test('rule selectors: tos matches that TOS only, uidrange the uid (0 here), fwmark compares the bits of its mask', () => {
  const dead = [route('0.0.0.0/0', {table: '100', type: 'unreachable'})]
  const k = {dst: ip('192.0.2.7'), src: ip('10.1.0.10')}
  expect(routeLookup(withRules([rule(100, {tos: 0x10, table: '100'})], dead), k).kind).toBe('unicast')
  expect(routeLookup(withRules([rule(100, {tos: 0x10, table: '100'})], dead), {...k, tos: 0x10}).kind).toBe('unreachable')
  expect(routeLookup(withRules([rule(100, {uidrange: [1000, 2000], table: '100'})], dead), k).kind).toBe('unicast')
  expect(routeLookup(withRules([rule(100, {uidrange: [0, 0], table: '100'})], dead), k).kind).toBe('unreachable')
  // fwmark 0/0x1: an even mark (and none) matches, an odd one does not
  expect(routeLookup(withRules([rule(100, {fwmark: 0, fwmask: 1, table: '100'})], dead), {...k, mark: 2}).kind).toBe('unreachable')
  expect(routeLookup(withRules([rule(100, {fwmark: 0, fwmask: 1, table: '100'})], dead), {...k, mark: 3}).kind).toBe('unicast')
  expect(routeLookup(withRules([rule(100, {fwmark: 0x7, table: '100'})], dead), {...k, mark: 0x7}).kind).toBe('unreachable')
  expect(routeLookup(withRules([rule(100, {fwmark: 0x7, table: '100'})], dead), {...k, mark: 0x17}).kind).toBe('unicast')
})

test('goto jumps to the rule of exactly that preference; an [unresolved] goto is passed over (fib_rules_lookup)', () => {
  const dead = [route('0.0.0.0/0', {table: '100', type: 'unreachable'})]
  const k = {dst: ip('192.0.2.7'), src: ip('10.1.0.10')}
  // 90 goto 95 with no rule 95: the kernel goes on with 92 (dead); jumping to the next rule after 95 would skip it
  expect(routeLookup(withRules([rule(90, {action: 'goto', goto: 95}), rule(92, {table: '100'})], dead), k).kind).toBe('unreachable')
  // with a rule 95, the goto skips 92
  expect(routeLookup(withRules([rule(90, {action: 'goto', goto: 95}), rule(92, {table: '100'}), rule(95, {table: 'main'})], dead), k).kind).toBe('unicast')
})
