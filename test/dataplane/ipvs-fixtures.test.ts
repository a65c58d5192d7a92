// IPVS paths (no IP_VS in the test kernel): fixtures whose expected results follow the kernel sources and
// LVS-HOWTO, cited in each expected.json.
import {readFileSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {expect, test} from 'vitest'
import {parseEndpoint} from '../../src/model/ip.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {traceConnection} from '../../src/services/trace.js'
import {renderTraceText} from '../../src/render/trace-text.js'

const ROOT = join(import.meta.dirname, '../../fixtures/trace')
const scenarios = readdirSync(ROOT).filter((d) => statSync(join(ROOT, d)).isDirectory())

test.each(scenarios)('%s', (name) => {
  const dir = join(ROOT, name)
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'))
  expect(expected.source).toBeTruthy()
  const hosts = loadSnapshots(readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory()).map((d) => join(dir, d)))
  for (const h of hosts) expect(h.errors.map((e) => e.message)).toEqual([])
  const r = traceConnection(hosts, {vip: parseEndpoint(expected.vip)!, proto: 'tcp'})
  const text = renderTraceText(r)
  expect(r.connection, text).toEqual(expected.connection)
  const f = r.firstFailure
  expect(f ? {packet: f.packet, host: f.host, hook: f.hook} : null, text).toEqual(expected.firstFailure)
  const synHosts = ['client', ...r.packets[0]!.hops.map((h) => h.to)]
  expect(synHosts.filter((h, i) => synHosts.indexOf(h) === i), text).toEqual(expected.synPath)
})
