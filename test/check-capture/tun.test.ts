// check with an LVS-TUN capture (fixtures/check-capture/tun-rpfilter*, fixtures/check-capture/TUN-README.md):
// the director's capture shows the SYN tunnelled to the realserver and never answered, which is evidence of the
// realserver's strict rp_filter on its tunnel device; with the fix the capture is healthy and nothing is found.
import {describe, expect, it} from 'vitest'
import {join} from 'node:path'
import {runCheck} from '../../src/services/check-command.js'
import type {CheckCaptureReport} from '../../src/services/check-capture.js'

const FIX = join(import.meta.dirname, '../../fixtures/check-capture')

async function check(scenario: string, format: 'json' | 'text' = 'json'): Promise<{code: number; out: string; json?: CheckCaptureReport}> {
  let out = ''
  const code = await runCheck(['director', 'rs1'].map((h) => join(FIX, scenario, h)), {
    format, failOn: 'error', ignore: [], version: 't', out: (s) => void (out += s), err: () => undefined,
  })
  return {code, out, ...(format === 'json' ? {json: JSON.parse(out) as CheckCaptureReport} : {})}
}

describe('check with an LVS-TUN capture', () => {
  it('the tunnelled SYN never answered is evidence of rp-filter-asymmetric on the realserver', async () => {
    const {code, json: r} = await check('tun-rpfilter')
    expect(code).toBe(1)
    expect(r!.errors).toEqual([])
    expect(r!.findings.map((f) => `${f.host} ${f.rule}`)).toEqual(['rs1 rp-filter-asymmetric'])
    const ev = r!.findings[0]!.evidence.filter((e) => e.file === 'capture.pcap')
    expect(ev.map((e) => e.host)).toEqual(['director', 'director'])
    expect(ev[1]!.text).toMatch(/^\[tunnel-syn-unanswered\] SYN 10\.73\.1\.2:\d+ > 10\.73\.9\.100:80 inside IPIP 10\.73\.2\.1 > 10\.73\.2\.10$/)
    expect(r!.captures).toEqual([expect.objectContaining({host: 'director', vips: ['10.73.9.100:80'], symptoms: 1, skipped: 0, tunnelled: 3})])
    expect(r!.symptoms).toEqual([expect.objectContaining({
      kind: 'tunnel-syn-unanswered', tunnel: {type: 'ipip', from: '10.73.2.1', to: '10.73.2.10'}, vip: '10.73.9.100:80',
      findings: [{rule: 'rp-filter-asymmetric', host: 'rs1'}],
    })])
    const t = await check('tun-rpfilter', 'text')
    expect(t.out).toMatch(/tunnel-syn-unanswered: SYN from 10\.73\.1\.2:\d+ to the VIP 10\.73\.9\.100:80, tunnelled to 10\.73\.2\.10 \(IPIP\), never answered\n\s+evidence of rp-filter-asymmetric on rs1/)
  })

  it('a realserver that cannot unwrap IPIP: its protocol unreachable errors are evidence of dr-realserver-no-vip', async () => {
    const {code, json: r} = await check('tun-no-decap')
    expect(code).toBe(1)
    expect(r!.findings.map((f) => `${f.host} ${f.rule}`)).toEqual(['rs1 dr-realserver-no-vip'])
    expect(r!.findings[0]!.message).toMatch(/answers the director's IPIP packets with ICMP protocol unreachable/)
    expect(r!.symptoms).toEqual([expect.objectContaining({
      kind: 'tunnel-unreachable', icmp: 'protocol-unreachable', from: '10.73.2.10', findings: [{rule: 'dr-realserver-no-vip', host: 'rs1'}],
    })])
    const ev = r!.findings[0]!.evidence.filter((e) => e.file === 'capture.pcap')
    expect(ev.filter((e) => /^\[tunnel-unreachable\] ICMP protocol-unreachable from 10\.73\.2\.10 quoting IPIP 10\.73\.2\.1 > 10\.73\.2\.10 carrying tcp/.test(e.text)).length).toBeGreaterThanOrEqual(2)
  })

  it('with loose rp_filter on tunl0 the connection works: no finding, no symptom', async () => {
    const {code, json: r} = await check('tun-rpfilter-fixed')
    expect(code).toBe(0)
    expect(r!.findings).toEqual([])
    expect(r!.symptoms).toEqual([])
    expect(r!.captures![0]!.tunnelled).toBeGreaterThanOrEqual(5)
  })
})
