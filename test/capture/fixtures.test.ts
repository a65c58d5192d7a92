// The captures taken between network namespaces (test/capture/make-fixtures.sh): each failure shows its
// symptom, the healthy ones show none, with and without the VIP.
import {describe, expect, it} from 'vitest'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {analyseCaptureFile} from '../../src/capture/analyse.js'
import {parseEndpoint} from '../../src/model/ip.js'

const DIR = join(import.meta.dirname, '../../fixtures/captures')
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as {vip: string; captures: Record<string, string[]>}
const vip = parseEndpoint(expected.vip)!

describe('captures taken here', () => {
  it('lists every capture file in expected.json', () => {
    const files = readdirSync(DIR).filter((f) => /\.pcap(ng)?$/.test(f)).sort()
    expect(files).toEqual(Object.keys(expected.captures).sort())
  })

  for (const [file, kinds] of Object.entries(expected.captures)) {
    it(`${file}: ${kinds.length ? kinds.join(', ') : 'healthy'}`, async () => {
      const r = await analyseCaptureFile(join(DIR, file), {vips: [vip]})
      expect(r.packets).toBeGreaterThan(0)
      expect(r.skipped).toBe(0)
      expect(r.truncated).toBeUndefined()
      expect(r.symptoms.map((s) => s.kind)).toEqual(kinds)
      for (const s of r.symptoms) {
        expect(s.rules.length).toBeGreaterThan(0)
        expect(s.packets.length).toBeGreaterThan(0)
        expect(s.flow.client).toMatch(/^(10\.66\.1\.2|\[fd66:1::2\]):\d+$/)
      }
      // without the VIP the same symptoms show (none of them needs it)
      const bare = await analyseCaptureFile(join(DIR, file))
      expect(bare.symptoms.map((s) => s.kind)).toEqual(kinds)
    })
  }

  it('names the flow, the packets and the rules', async () => {
    const r = await analyseCaptureFile(join(DIR, 'bypass-client-sll2.pcap'), {vips: [vip]})
    const s = r.symptoms[0]!
    expect(s).toMatchObject({kind: 'reply-bypasses-director', severity: 'error', vip: '10.66.1.100:80', from: '10.66.2.10:8080', rules: ['nat-reply-bypasses-director']})
    expect(s.flow.server).toBe('10.66.1.100:80')
    expect(s.packets[0]!.what).toMatch(/^SYN 10\.66\.1\.2:\d+ > 10\.66\.1\.100:80$/)
    expect(s.packets[1]!.what).toMatch(/^SYN\/ACK 10\.66\.2\.10:8080 > 10\.66\.1\.2:\d+$/)
    expect(s.packets.some((p) => p.what.startsWith('RST 10.66.1.2'))).toBe(true)
    const icmp = (await analyseCaptureFile(join(DIR, 'reject-established-client.pcap'))).symptoms[0]!
    expect(icmp).toMatchObject({icmp: 'host-prohibited', rules: expect.arrayContaining(['reject-on-one-way-flow'])})
    const fin = (await analyseCaptureFile(join(DIR, 'fin-drop-client.pcap'))).symptoms[0]!
    expect(fin.rules).toContain('dr-stateful-filter')
    expect(fin.message).toMatch(/client's FIN was sent \d+ times and never acknowledged/)
  })

  it('finds ICMPv6 admin-prohibited on an established IPv6 flow', async () => {
    const s = (await analyseCaptureFile(join(DIR, 'reject-established-v6-client.pcap'))).symptoms[0]!
    expect(s).toMatchObject({icmp: 'admin-prohibited', from: 'fd66:1::100', flow: {proto: 'tcp', server: '[fd66:1::100]:80'}})
  })

  it('reads the pcapng written by dumpcap (two interfaces) and by editcap like the pcap', async () => {
    const ng = await analyseCaptureFile(join(DIR, 'bypass-client-2if.pcapng'))
    expect(ng.format).toBe('pcapng')
    expect(ng.interfaces).toHaveLength(2)
    const a = await analyseCaptureFile(join(DIR, 'reject-established-client.pcap'))
    const b = await analyseCaptureFile(join(DIR, 'reject-established-client.pcapng'))
    expect(b.format).toBe('pcapng')
    expect(b.symptoms).toEqual(a.symptoms)
  })
})
