// `check` with a capture.pcap in the snapshots (fixtures/check-capture/, made by
// scripts/fixtures/check-capture-fixtures.sh in ldk- namespaces): the capture's symptoms attach as evidence to
// the findings they explain, symptoms that explain nothing are listed, a healthy capture adds nothing, an
// unreadable capture is an input error (exit 2) and the rest still loads.
import {afterAll, describe, expect, it} from 'vitest'
import {copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {execFileSync} from 'node:child_process'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {runCheck} from '../../src/services/check-command.js'
import {checkPaths} from '../../src/services/check.js'
import type {CheckCaptureReport} from '../../src/services/check-capture.js'

const FIX = join(import.meta.dirname, '../../fixtures/check-capture')
const hostsOf = (scenario: string, names = ['client', 'director', 'rs1']) => names.map((h) => join(FIX, scenario, h))
const work = mkdtempSync(join(tmpdir(), 'ldk-check-capture-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

async function check(paths: string[], format: 'json' | 'text' | 'markdown' = 'json'): Promise<{code: number; out: string; err: string; json?: CheckCaptureReport}> {
  let out = ''
  let err = ''
  const code = await runCheck(paths, {format, failOn: 'error', ignore: [], version: 't', out: (s) => void (out += s), err: (s) => void (err += s)})
  return {code, out, err, ...(format === 'json' ? {json: JSON.parse(out) as CheckCaptureReport} : {})}
}

/** a copy of a scenario to edit */
function copy(scenario: string): string {
  const d = mkdtempSync(join(work, `${scenario}-`))
  cpSync(join(FIX, scenario), d, {recursive: true})
  return d
}

describe('check with captures', () => {
  it('attaches the symptoms of the client and director captures to the finding they explain', async () => {
    const {code, json: r} = await check(hostsOf('dnat-bypass'))
    expect(code).toBe(1)
    expect(r!.errors).toEqual([])
    expect(r!.findings.map((f) => `${f.host} ${f.rule}`)).toEqual(['director nat-reply-bypasses-director'])
    const ev = r!.findings[0]!.evidence
    // the client's capture: the SYN to the VIP and the SYN/ACK from the realserver's own address, on host client
    expect(ev).toContainEqual({file: 'capture.pcap', line: 3, host: 'client', text: '[reply-bypasses-director] SYN 10.71.1.2:56330 > 10.71.1.100:80'})
    expect(ev).toContainEqual({file: 'capture.pcap', line: 6, host: 'client', text: '[reply-bypasses-director] SYN/ACK 10.71.2.10:8080 > 10.71.1.2:56330'})
    // the director's own capture: no host (the finding's own)
    expect(ev).toContainEqual({file: 'capture.pcap', line: 3, text: '[syn-unanswered] SYN 10.71.1.2:56330 > 10.71.1.100:80'})
    expect(r!.captures).toEqual([
      {host: 'client', file: 'capture.pcap', format: 'pcap', packets: 15, flows: 2, vips: ['10.71.1.100:80'], symptoms: 1, skipped: 0},
      {host: 'director', file: 'capture.pcap', format: 'pcap', packets: 18, flows: 2, vips: ['10.71.1.100:80'], symptoms: 1, skipped: 0},
    ])
    expect(r!.symptoms!.map((s) => [s.host, s.kind, s.findings])).toEqual([
      ['client', 'reply-bypasses-director', [{rule: 'nat-reply-bypasses-director', host: 'director'}]],
      ['director', 'syn-unanswered', [{rule: 'nat-reply-bypasses-director', host: 'director'}]],
    ])
    expect(r!.symptoms![0]).toMatchObject({flow: {proto: 'tcp', client: '10.71.1.2:56330', server: '10.71.1.100:80'}, from: '10.71.2.10:8080', vip: '10.71.1.100:80'})
  })

  it('changes nothing else in the report: the same as check without the captures, less the evidence they added', async () => {
    const {json: r} = await check(hostsOf('dnat-bypass'))
    const plain = JSON.parse(JSON.stringify(checkPaths(hostsOf('dnat-bypass'), {version: 't'})))
    const {captures: _c, symptoms: _s, ...rest} = r!
    const stripped = {...rest, findings: rest.findings.map((f) => ({...f, evidence: f.evidence.filter((e) => !e.file.startsWith('capture.'))}))}
    expect(stripped).toEqual(plain)
    expect(Object.keys(r!)).toEqual(['tool', 'version', 'hosts', 'findings', 'errors', 'captures', 'symptoms'])
  })

  it('a healthy scenario with healthy captures: no findings, no symptoms, exit 0', async () => {
    const {code, json: r} = await check(hostsOf('dnat-bypass-fixed'))
    expect(code).toBe(0)
    expect(r!.findings).toEqual([])
    expect(r!.symptoms).toEqual([])
    expect(r!.captures!.map((c) => [c.host, c.symptoms])).toEqual([['client', 0], ['director', 0]])
  })

  it('a healthy capture adds nothing to the findings', async () => {
    const d = copy('dnat-bypass')
    for (const h of ['client', 'director']) copyFileSync(join(FIX, 'dnat-bypass-fixed', h, 'capture.pcap'), join(d, h, 'capture.pcap'))
    const {code, json: r} = await check(['client', 'director', 'rs1'].map((h) => join(d, h)))
    expect(code).toBe(1)
    expect(r!.symptoms).toEqual([])
    expect(r!.findings).toEqual(JSON.parse(JSON.stringify(checkPaths(hostsOf('dnat-bypass'), {version: 't'}).findings)))
  })

  it('lists a symptom no finding explains (the client capture alone), in JSON and in the text output', async () => {
    const {code, json: r} = await check(hostsOf('dnat-bypass', ['client']))
    expect(code).toBe(0)
    expect(r!.findings).toEqual([])
    expect(r!.symptoms).toHaveLength(1)
    expect(r!.symptoms![0]).toMatchObject({host: 'client', file: 'capture.pcap', kind: 'reply-bypasses-director', severity: 'error', rules: ['nat-reply-bypasses-director'], findings: []})
    // without the director's snapshot its VIP is unknown: the symptom still names the flow
    expect(r!.captures![0]!.vips).toEqual([])
    const t = await check(hostsOf('dnat-bypass', ['client']), 'text')
    expect(t.out).toMatch(/Captures:\n {2}client:capture\.pcap {2}pcap, 15 packets, 2 flows, 1 symptom\n/)
    expect(t.out).toMatch(/no finding explains it; likely rules: nat-reply-bypasses-director/)
    expect(t.out).toMatch(/capture\.pcap:6 {2}SYN\/ACK 10\.71\.2\.10:8080 > 10\.71\.1\.2:56330/)
    expect(t.out).toMatch(/1 symptom in the captures that no finding explains/)
  })

  it('text and markdown name the finding a symptom is evidence of', async () => {
    const t = await check(hostsOf('dnat-bypass'), 'text')
    expect(t.out).toMatch(/client:capture\.pcap:6 {2}\[reply-bypasses-director\] SYN\/ACK 10\.71\.2\.10:8080 > 10\.71\.1\.2:56330/)
    expect(t.out).toMatch(/evidence of nat-reply-bypasses-director on director/)
    const m = await check(hostsOf('dnat-bypass'), 'markdown')
    expect(m.out).toMatch(/## Captures\n\n### `client:capture\.pcap`/)
    expect(m.out).toMatch(/- error: `reply-bypasses-director` .* \(evidence of nat-reply-bypasses-director on director\)/)
  })

  it('a .tar.gz of the snapshots gives the same findings and symptoms as the directories', async () => {
    const tgz = join(work, 'dnat-bypass.tar.gz')
    execFileSync('tar', ['-czf', tgz, '-C', join(FIX, 'dnat-bypass'), 'client', 'director', 'rs1'])
    const a = (await check(hostsOf('dnat-bypass'))).json!
    const b = (await check([tgz])).json!
    expect(b.findings).toEqual(a.findings)
    expect(b.symptoms).toEqual(a.symptoms)
    expect(b.captures).toEqual(a.captures)
  })

  it('a bare capture file is a host of its own, its symptom evidence of the director finding', async () => {
    const bare = join(work, 'laptop.pcap')
    copyFileSync(join(FIX, 'dnat-bypass/client/capture.pcap'), bare)
    const {json: r} = await check([...hostsOf('dnat-bypass', ['director', 'rs1']), bare])
    expect(r!.symptoms!.map((s) => [s.host, s.kind, s.findings.length])).toEqual([['director', 'syn-unanswered', 1], ['laptop', 'reply-bypasses-director', 1]])
    expect(r!.findings[0]!.evidence).toContainEqual({file: 'capture.pcap', line: 6, host: 'laptop', text: '[reply-bypasses-director] SYN/ACK 10.71.2.10:8080 > 10.71.1.2:56330'})
  })

  it('an unreadable capture is an input error with its byte offset (exit 2); the other files still load', async () => {
    const d = copy('dnat-bypass')
    writeFileSync(join(d, 'director/capture.pcap'), 'this is not a capture\n')
    // packet 2 of the client capture claims 4 GB
    const c = readFileSync(join(d, 'client/capture.pcap'))
    const second = 24 + 16 + c.readUInt32LE(24 + 8)
    c.writeUInt32LE(0xffffffff, second + 8)
    writeFileSync(join(d, 'client/capture.pcap'), c)
    const {code, json: r, err} = await check(['client', 'director', 'rs1'].map((h) => join(d, h)))
    expect(code).toBe(2)
    expect(r!.errors).toEqual([
      {host: 'client', file: 'capture.pcap', offset: second + 8, packet: 2, message: `capture.pcap: byte offset ${second + 8} (packet 2): expected a captured length of at most 262144 bytes, found 4294967295`},
      {host: 'director', file: 'capture.pcap', offset: 0, message: 'capture.pcap: byte offset 0: expected pcap magic (a1b2c3d4 / a1b23c4d) or pcapng section header (0a0d0d0a), found 74 68 69 73'},
    ])
    expect(err).toMatch(/^lvsdoctor: capture\.pcap: byte offset 0: expected pcap magic/m)
    // everything else was read and checked
    expect(r!.findings.map((f) => f.rule)).toEqual(['nat-reply-bypasses-director'])
    expect(r!.findings[0]!.evidence.some((e) => e.file === 'capture.pcap')).toBe(false)
    expect(r!.captures).toEqual([])
    expect(r!.hosts.find((h) => h.name === 'director')!.counts.iptablesRules).toBe(1)
    const t = await check(['client', 'director', 'rs1'].map((h) => join(d, h)), 'text')
    expect(t.out).toMatch(/unreadable: capture\.pcap: byte offset 0/)
  })

  it('a capture cut short is analysed up to the cut and says so', async () => {
    const d = copy('dnat-bypass')
    const c = readFileSync(join(d, 'client/capture.pcap'))
    writeFileSync(join(d, 'client/capture.pcap'), c.subarray(0, c.length - 10))
    const {json: r} = await check(['client', 'director', 'rs1'].map((h) => join(d, h)))
    expect(r!.errors).toEqual([])
    expect(r!.captures![0]).toMatchObject({host: 'client', packets: 14, truncated: {packet: 15}})
    expect(r!.symptoms![0]!.kind).toBe('reply-bypasses-director')
  })
})
