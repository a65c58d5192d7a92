// trace over a snapshot that is only keepalived.conf (a runbook's "is my config right?"): the VRRP addresses
// stand for the host's own, a default route out of their device is assumed, and an LVS-DR realserver outside the
// snapshots answers the client itself. Every one of these is stated as an assumption.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {hostFromFiles} from '../../src/snapshot/store.js'

const conf = readFileSync(join(import.meta.dirname, '../../fixtures/parsers/keepalived/keepalived.conf'), 'utf8')
const trace = (text: string, vip: string) =>
  traceConnection([hostFromFiles('lb', 'lb', new Map([['keepalived.conf', text]]))], {vip: parseEndpoint(vip)!, proto: 'tcp', client: parseIp('203.0.113.10')!, clientPort: 40000})

describe('keepalived.conf alone', () => {
  test('LVS-DR virtual_server: the VIP is the VRRP master\'s, the realserver answers directly: connected, with the assumptions said', () => {
    const r = trace(conf, '192.168.1.110:80')
    expect(r.connection).toEqual({connected: true, reply: true, closed: true})
    expect(r.assumptions.join('\n')).toMatch(/assumed to be the VRRP master, holding the virtual_ipaddress/)
    expect(r.assumptions.join('\n')).toMatch(/assumed a default route out of eth0/)
    expect(r.assumptions.join('\n')).toMatch(/the realserver 192\.168\.1\.1[12]:80 \(not among the snapshots\) .* answer the client directly/)
  })

  test('without the vrrp_instance the host has no address: the client has nowhere to go (as before)', () => {
    const noVrrp = conf.replace(/vrrp_instance[\s\S]*?\n}\n/, '')
    expect(noVrrp).not.toMatch(/virtual_ipaddress/)
    const r = trace(noVrrp, '192.168.1.110:80')
    expect(r.connection.connected).toBe(false)
    expect(r.firstFailure?.reason).toMatch(/no host of the snapshots owns 192\.168\.1\.110/)
  })
})
