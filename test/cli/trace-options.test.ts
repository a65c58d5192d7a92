// trace's --vip/--client: mistakes and what is not modelled are usage errors (exit 2), never a mixed-family replay.
import {spawnSync} from 'node:child_process'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'
import {traceOptions} from '../../src/services/trace-command.js'

const ROOT = resolve(import.meta.dirname, '../..')

describe('trace --vip / --client', () => {
  test('an IPv4 VIP with or without a client', () => {
    expect(traceOptions('198.51.100.100:80', 'tcp')).toMatchObject({vip: {port: 80}, proto: 'tcp'})
    expect(traceOptions('198.51.100.100:80', 'udp', '192.0.2.7:5000')).toMatchObject({clientPort: 5000, client: {family: 4}})
  })
  test('malformed values name the flag and what was expected', () => {
    expect(() => traceOptions('198.51.100.100', 'tcp')).toThrow(/--vip "198.51.100.100": expected IP:PORT/)
    expect(() => traceOptions('198.51.100.100:80', 'tcp', 'nope')).toThrow(/--client "nope": expected an IP address/)
  })
  test('an IPv6 VIP is refused: the dataplane replays IPv4 only', () => {
    expect(() => traceOptions('[2001:db8::100]:80', 'tcp')).toThrow(/trace replays IPv4 connections only; IPv6 is not modelled/)
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'trace', '--vip', '[2001:db8::100]:80', join(ROOT, 'fixtures/trace/lvs-dr/director')], {encoding: 'utf8'})
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^lvsdoctor: --vip "\[2001:db8::100\]:80": trace replays IPv4 connections only/)
    expect(r.stdout).toBe('')
  })
})
