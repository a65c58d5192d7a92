// The capture command: the service (JSON shape, exit codes) and the built CLI (exit 2 without a stack trace).
import {describe, expect, it} from 'vitest'
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {CaptureFormatError} from '../../src/capture/errors.js'
import {symptomEvidence} from '../../src/capture/index.js'
import {runCapture, type CaptureReport} from '../../src/services/capture.js'
import {UsageError} from '../../src/model/source.js'

const ROOT = join(import.meta.dirname, '../..')
const FIX = join(ROOT, 'fixtures/captures')

async function run(o: Partial<Parameters<typeof runCapture>[0]>): Promise<{code: number; out: string; err: string}> {
  let out = ''
  let err = ''
  const code = await runCapture({vips: [], json: false, version: '0.0.0', out: (s) => (out += s), err: (s) => (err += s), ...o})
  return {code, out, err}
}

describe('capture --read', () => {
  it('prints the JSON report and exits 1 on symptoms', async () => {
    const r = await run({read: join(FIX, 'reject-established-client.pcap'), vips: ['10.66.1.100:80'], json: true})
    expect(r.code).toBe(1)
    const j = JSON.parse(r.out) as CaptureReport
    expect(Object.keys(j)).toEqual(['tool', 'version', 'capture', 'vips', 'packets', 'ip', 'notIp', 'flows', 'skipped', 'truncated', 'firstTime', 'lastTime', 'symptoms'])
    expect(j.capture).toEqual({source: 'file', file: join(FIX, 'reject-established-client.pcap'), format: 'pcap', byteOrder: 'little', interfaces: [{linkType: 1, link: 'Ethernet', tsPerSecond: 1e6}]})
    expect(j.vips).toEqual(['10.66.1.100:80'])
    expect(j.truncated).toBeNull()
    expect(j.symptoms[0]).toMatchObject({kind: 'icmp-unreachable-established', severity: 'error', vip: '10.66.1.100:80', icmp: 'host-prohibited'})
    expect(Object.keys(j.symptoms[0]!)).toEqual(['kind', 'severity', 'title', 'message', 'flow', 'packets', 'rules', 'vip', 'from', 'icmp'])
  })

  it('prints text and exits 0 on a healthy capture', async () => {
    const r = await run({read: join(FIX, 'healthy-dnat-client.pcap')})
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/22 packets \(20 IP, 2 other\), 2 flows/)
    expect(r.out).toMatch(/no symptoms/)
  })

  it('text names the packets and the rules', async () => {
    const r = await run({read: join(FIX, 'syn-drop-client.pcap'), vips: ['10.66.1.100:80']})
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/syn-unanswered: SYN from 10\.66\.1\.2:\d+ to the VIP 10\.66\.1\.100:80 never answered/)
    expect(r.out).toMatch(/#3 +\+\d\.\d{6}s  SYN 10\.66\.1\.2/)
    expect(r.out).toMatch(/likely rules: filter-blocks-vip/)
  })

  it('rejects bad input with typed errors', async () => {
    await expect(run({read: join(ROOT, 'package.json')})).rejects.toBeInstanceOf(CaptureFormatError)
    await expect(run({read: join(FIX, 'healthy-dnat-client.pcap'), vips: ['nope']})).rejects.toThrow(/--vip: expected IP:PORT/)
    await expect(run({})).rejects.toBeInstanceOf(UsageError)
    await expect(run({read: 'x', seconds: 3})).rejects.toBeInstanceOf(UsageError)
  })

  it('gives check the symptoms as evidence', async () => {
    const r = await run({read: join(FIX, 'fin-drop-client.pcap'), json: true})
    const s = (JSON.parse(r.out) as CaptureReport).symptoms[0]!
    expect(symptomEvidence(s, 'capture.pcap', 'client')[0]).toEqual({file: 'capture.pcap', line: s.packets[0]!.n, text: `[fin-unanswered] ${s.packets[0]!.what}`, host: 'client'})
  })
})

describe.skipIf(!existsSync(join(ROOT, 'dist/commands/capture.js')))('built CLI', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'capture', ...args], {encoding: 'utf8'})

  it('exits 2 with one line and no stack trace on a broken file', () => {
    const r = cli('--read', join(ROOT, 'package.json'))
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^lvsdoctor: .*package\.json: byte offset 0: expected pcap magic/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('exits 0/1 by symptoms', () => {
    expect(cli('--read', join(FIX, 'healthy-any-sll2.pcap')).status).toBe(0)
    const r = cli('--read', join(FIX, 'bypass-client-2if.pcapng'), '--json')
    expect(r.status).toBe(1)
    expect(JSON.parse(r.stdout).symptoms[0].kind).toBe('reply-bypasses-director')
  })
})
