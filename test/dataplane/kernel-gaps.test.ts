// Snapshots of namespaces where trace disagreed with the kernel (fixtures/kernel-gaps/, README there): each is
// replayed and must give what the kernel did. Pairs show both ways (the same setup with one setting changed).
import {readdirSync} from 'node:fs'
import {expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {loadSnapshots} from '../../src/snapshot/store.js'

const OK = {connected: true, reply: true, closed: true}
const DEAD = {connected: false, reply: false, closed: false}
const CASES: readonly (readonly [string, string, typeof OK, string])[] = [
  // name, client, the kernel's result, where trace must stop (first failure's host and hook) when it fails
  ['rpf-ipproto-sport', '203.0.113.10', OK, ''],
  ['rpf-iif-rule-strict', '203.0.113.10', DEAD, 'd ROUTING'],
  ['rpf-iif-rule-loose', '203.0.113.10', OK, ''],
  ['rpf-accept-local-strict', '10.2.0.10', DEAD, 'r ROUTING'],
  ['rule-selectors-tos-uid-mark', '203.0.113.10', OK, ''],
  ['addrtype-limit-iface-lo', '203.0.113.10', DEAD, 'd SOCKET'],
  ['addrtype-limit-iface-d0', '203.0.113.10', OK, ''],
  ['rule-goto-unresolved', '203.0.113.10', DEAD, 'r ROUTING'],
  ['rule-goto-resolved', '203.0.113.10', OK, ''],
]

test.each(CASES)('%s: trace gives what the kernel did', (name, client, kernel, stop) => {
  const dir = `fixtures/kernel-gaps/${name}`
  const hosts = loadSnapshots(readdirSync(dir).filter((n) => /^[a-z]$/.test(n)).map((n) => `${dir}/${n}`))
  const r = traceConnection(hosts, {vip: parseEndpoint('198.51.100.100:80')!, proto: 'tcp', client: parseIp(client)!, clientPort: 40000})
  expect(r.connection, r.firstFailure?.reason).toEqual(kernel)
  if (stop) expect(`${r.firstFailure?.host} ${r.firstFailure?.hook}`).toBe(stop)
})
