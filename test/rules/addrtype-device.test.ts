// check's address type limited to a device (addrtype --limit-iface-in/out, nft fib ... iif type), as trace answers
// it (inet_dev_addr_type): the kernel-gaps scenario addrtype-limit-iface-lo, whose director holds the VIP on lo.
import {describe, expect, it} from 'vitest'
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {parseIp} from '../../src/model/ip.js'
import {HostView} from '../../src/rules/engine/host.js'
import {loadSnapshots} from '../../src/snapshot/store.js'

const DIR = join(import.meta.dirname, '../../fixtures/kernel-gaps/addrtype-limit-iface-lo')
const d = new HostView(loadSnapshots(readdirSync(DIR).map((n) => join(DIR, n))).find((h) => h.name === 'd')!)
const VIP = parseIp('198.51.100.100')!

describe("check's addrType on a device", () => {
  it('the VIP on lo is LOCAL on lo and for the host, UNICAST on another device (even where it is assumed local)', () => {
    expect(d.addrType(VIP)).toBe('LOCAL')
    expect(d.addrType(VIP, [], 'lo')).toBe('LOCAL')
    expect(d.addrType(VIP, [], 'lq4-d0')).toBe('UNICAST')
    expect(d.addrType(VIP, [VIP], 'lq4-d0')).toBe('UNICAST')
  })
  it('an address the local table does not hold keeps the assumption', () => {
    const other = parseIp('192.0.2.99')!
    expect(d.addrType(other, [other], 'lq4-d0')).toBe('LOCAL')
    expect(d.addrType(other, [], 'lq4-d0')).toBe('UNICAST')
  })
  it('the address of the device itself is LOCAL on it', () => {
    const own = d.snap.interfaces!.find((i) => i.name === 'lq4-d0')!.addresses[0]!.ip
    expect(d.addrType(own, [], 'lq4-d0')).toBe('LOCAL')
    expect(d.addrType(own, [], 'lq4-d1')).toBe('UNICAST')
  })
})
