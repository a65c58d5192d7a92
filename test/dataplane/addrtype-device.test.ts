// The type of an address as xt_addrtype and nft `fib ... type` see it (inet_dev_addr_type): the local table's route
// type, and UNICAST when the match is limited to a device that is not the local route's (a VIP on lo is not LOCAL
// "on eth0"). Kernel: fixtures/kernel-gaps/addrtype-limit-iface-lo/-d0.
import {expect, test} from 'vitest'
import {parseIp} from '../../src/model/ip.js'
import {hostModel} from '../../src/dataplane/host.js'
import {nftFib} from '../../src/dataplane/nft-hooks.js'
import type {Packet} from '../../src/dataplane/packet.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {addrJson, routeJson} from './host-json.js'

const ip = (s: string) => parseIp(s)!
// eth0 10.1.0.1/24, the VIP 198.51.100.100 on lo (its local route: dev lo)
const h = hostModel(hostFromFiles('d', 'd', new Map([
  ['ip-addr.json', addrJson('10.1.0.1')],
  ['ip-route.json', routeJson('10.1.0.1', '10.1.0.254', [{type: 'local', dst: '198.51.100.100', dev: 'lo', table: 'local', protocol: 'kernel', scope: 'host', prefsrc: '198.51.100.100', flags: []}, {type: 'broadcast', dst: '10.1.0.255', dev: 'eth0', table: 'local', protocol: 'kernel', scope: 'link', prefsrc: '10.1.0.1', flags: []}])],
])))

test('addrtype: LOCAL on any device, on the device that holds the address; UNICAST on another', () => {
  expect(h.addrType(ip('198.51.100.100'))).toBe('LOCAL')
  expect(h.addrType(ip('198.51.100.100'), 'lo')).toBe('LOCAL')
  expect(h.addrType(ip('198.51.100.100'), 'eth0')).toBe('UNICAST')
  expect(h.addrType(ip('10.1.0.1'), 'eth0')).toBe('LOCAL')
  expect(h.addrType(ip('10.1.0.255'))).toBe('BROADCAST')
  expect(h.addrType(ip('0.0.0.0'))).toBe('BROADCAST')
  expect(h.addrType(ip('192.0.2.7'))).toBe('UNICAST')
})

test('nft fib daddr . iif type: the type on the arrival device; fib daddr type: on any', () => {
  const p: Packet = {family: 4, src: ip('203.0.113.10'), dst: ip('198.51.100.100'), proto: 6, sport: 40000, dport: 80, mark: 0}
  expect(nftFib(h.routing, {flags: ['daddr', 'iif'], result: 'type', packet: p, iif: 'eth0'}, h.addrType)).toEqual({kind: 'type', type: 'unicast'})
  expect(nftFib(h.routing, {flags: ['daddr'], result: 'type', packet: p, iif: 'eth0'}, h.addrType)).toEqual({kind: 'type', type: 'local'})
})
