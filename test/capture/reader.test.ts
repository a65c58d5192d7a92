// The reader and decoder on files built by our own writers: every format variant and link type, records
// across chunk boundaries, and every kind of broken file (each gives a typed error or a recorded skip).
import {afterAll, describe, expect, it} from 'vitest'
import {execFileSync} from 'node:child_process'
import {frame, icmpError, LINK_TYPE_OF, tcpPacket, udpPacket, type LinkKind} from '../../src/capture/craft.js'
import {DECODE, DecodedPacket, decodeFrame} from '../../src/capture/decode.js'
import {CaptureFormatError} from '../../src/capture/errors.js'
import {readCapture} from '../../src/capture/reader.js'
import {encodePcap, encodePcapng, PcapWriter} from '../../src/capture/writer.js'
import {IPPROTO} from '../../src/capture/wire.js'
import {ACK, cleanupTmp, conversation, readAll, SYN, tmpFile} from './helpers.js'

afterAll(cleanupTmp)

const LINKS: LinkKind[] = ['ethernet', 'sll', 'sll2', 'raw', 'null', 'loop', 'ipv4']

describe('pcap', () => {
  for (const link of LINKS) {
    for (const variant of [{}, {bigEndian: true}, {nanosecond: true}, {bigEndian: true, nanosecond: true}]) {
      it(`reads ${link} ${JSON.stringify(variant)}`, async () => {
        const conv = conversation('10.0.0.1', '10.0.0.2', 40000, 80)
        const file = tmpFile(`${link}-${JSON.stringify(variant)}.pcap`, encodePcap({linkType: LINK_TYPE_OF[link], ...variant}, conv.map((c) => ({time: c.time, data: frame(link, c.packet)}))))
        const {summary, seen} = await readAll(file, {chunkSize: 64})
        expect(summary.packets).toBe(8)
        expect(summary.byteOrder).toBe(variant.bigEndian ? 'big' : 'little')
        expect(summary.truncated).toBeUndefined()
        expect(seen.map((s) => s.status)).toEqual(Array(8).fill(DECODE.OK))
        expect(seen[0]).toMatchObject({index: 1, family: 4, sport: 40000, dport: 80, flags: SYN})
        expect(seen[1]).toMatchObject({sport: 80, dport: 40000, flags: SYN | ACK})
        expect(seen[7]!.time).toBeCloseTo(conv[7]!.time, 5)
      })
    }
  }

  it('reads IPv6 over Ethernet, SLL2 and the ipv6 link type', async () => {
    for (const link of ['ethernet', 'sll2', 'ipv6', 'raw'] as LinkKind[]) {
      const conv = conversation('2001:db8::1', '2001:db8::2', 40000, 443)
      const file = tmpFile(`v6-${link}.pcap`, encodePcap({linkType: LINK_TYPE_OF[link]}, conv.map((c) => ({time: c.time, data: frame(link, c.packet)}))))
      const {seen} = await readAll(file)
      expect(seen.every((s) => s.status === DECODE.OK && s.family === 6 && (s.sport === 443 || s.dport === 443))).toBe(true)
    }
  })

  it('decodes 802.1Q and QinQ tags', () => {
    const d = new DecodedPacket()
    for (const vlans of [[10], [100, 200], [1, 2, 3]]) {
      const f = frame('ethernet', tcpPacket({src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: SYN}), {vlans})
      expect(decodeFrame(1, f, 0, f.length, d)).toBe(DECODE.OK)
      expect(d.vlan).toBe(vlans[0])
      expect(d.dport).toBe(2)
    }
  })

  it('walks IPv6 extension headers and stops at a non-first fragment', () => {
    const tcp = tcpPacket({src: '2001:db8::1', dst: '2001:db8::2', sport: 5, dport: 6, flags: SYN})
    // insert hop-by-hop (8 bytes) and a first fragment header (8 bytes) before TCP
    const withExt = (fragOffset: number): Uint8Array => {
      const l4 = tcp.subarray(40)
      const p = new Uint8Array(40 + 16 + l4.length)
      p.set(tcp.subarray(0, 40))
      p[6] = IPPROTO.HOPOPTS
      p[4] = ((16 + l4.length) >> 8) & 255
      p[5] = (16 + l4.length) & 255
      p[40] = IPPROTO.FRAGMENT
      p[41] = 0
      p[48] = IPPROTO.TCP
      p[50] = (fragOffset >> 5) & 255
      p[51] = (fragOffset << 3) & 255
      p.set(l4, 56)
      return p
    }
    const d = new DecodedPacket()
    const a = withExt(0)
    expect(decodeFrame(101, a, 0, a.length, d)).toBe(DECODE.OK)
    expect([d.l4, d.sport, d.dport]).toEqual([true, 5, 6])
    const b = withExt(100)
    expect(decodeFrame(101, b, 0, b.length, d)).toBe(DECODE.OK)
    expect(d.l4).toBe(false)
    expect(d.problem).toMatch(/fragment/)
  })

  it('decodes the datagram quoted in ICMP and ICMPv6 errors', () => {
    const d = new DecodedPacket()
    const q4 = tcpPacket({src: '10.0.0.1', dst: '10.0.0.100', sport: 40000, dport: 80, flags: ACK, seq: 77})
    const e4 = icmpError('10.0.0.254', '10.0.0.1', 3, 10, q4, 28)
    expect(decodeFrame(101, e4, 0, e4.length, d)).toBe(DECODE.OK)
    expect([d.icmpType, d.icmpCode, d.inner, d.iPorts, d.iSport, d.iDport, d.iHasSeq, d.iSeq]).toEqual([3, 10, true, true, 40000, 80, true, 77])
    const q6 = udpPacket('2001:db8::1', '2001:db8::100', 5353, 53)
    const e6 = icmpError('2001:db8::fe', '2001:db8::1', 1, 4, q6)
    expect(decodeFrame(101, e6, 0, e6.length, d)).toBe(DECODE.OK)
    expect([d.icmpType, d.icmpCode, d.iFamily, d.iProto, d.iSport, d.iDport]).toEqual([1, 4, 6, IPPROTO.UDP, 5353, 53])
    // a quote cut inside the IP header is not decoded, and does not throw
    const cut = icmpError('10.0.0.254', '10.0.0.1', 3, 10, q4, 12)
    expect(decodeFrame(101, cut, 0, cut.length, d)).toBe(DECODE.OK)
    expect(d.inner).toBe(false)
  })

  it('records what it cannot decode and goes on', async () => {
    const good = frame('ethernet', tcpPacket({src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: SYN}))
    const arp = Uint8Array.from([...good.subarray(0, 12), 0x08, 0x06, ...new Uint8Array(28)])
    const file = tmpFile('mixed.pcap', encodePcap({linkType: 1}, [
      {time: 1, data: new Uint8Array(0)},
      {time: 2, data: good.subarray(0, 10)},
      {time: 3, data: arp},
      {time: 4, data: good},
    ]))
    const {summary, seen} = await readAll(file)
    expect(summary.packets).toBe(4)
    expect(seen.map((s) => s.status)).toEqual([DECODE.MALFORMED, DECODE.MALFORMED, DECODE.NOT_IP, DECODE.OK])
    expect(seen[0]!.problem).toMatch(/empty/)
    expect(seen[1]!.problem).toMatch(/Ethernet header/)
    const unknown = tmpFile('unknown-link.pcap', encodePcap({linkType: 147}, [{time: 1, data: good}]))
    const r = await readAll(unknown)
    expect(r.seen[0]).toMatchObject({status: DECODE.UNSUPPORTED_LINK, problem: 'link type 147 is not supported'})
  })

  it('reads records larger than the chunk', async () => {
    const big = frame('raw', tcpPacket({src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: ACK, payload: 9000}))
    const file = tmpFile('big.pcap', encodePcap({linkType: 101}, [{time: 1, data: big}, {time: 2, data: big}]))
    const {summary, seen} = await readAll(file, {chunkSize: 100})
    expect(summary.packets).toBe(2)
    expect(seen.every((s) => s.status === DECODE.OK)).toBe(true)
  })

  it('writes files that tcpdump reads', async (ctx) => {
    try {
      execFileSync('tcpdump', ['--version'], {stdio: 'ignore'})
    } catch {
      ctx.skip('tcpdump is not installed')
    }
    const file = tmpFile('writer.pcap', new Uint8Array(0))
    const w = new PcapWriter(file, {linkType: 1})
    for (const c of conversation('10.0.0.1', '10.0.0.2', 40000, 80)) w.writeTime(c.time, frame('ethernet', c.packet))
    w.close()
    const out = execFileSync('tcpdump', ['-nr', file, '-tt'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']})
    expect(out.trim().split('\n')).toHaveLength(8)
    expect(out).toContain('10.0.0.1.40000 > 10.0.0.2.80: Flags [S]')
  })
})

describe('pcapng', () => {
  it('reads sections of both byte orders, interfaces with their own link types and resolutions, SPB and unknown blocks', async () => {
    const conv = conversation('10.0.0.1', '10.0.0.2', 40000, 80, 1_700_000_000.5)
    const bytes = encodePcapng([
      {
        interfaces: [{linkType: 1, name: 'eth0'}, {linkType: 276, tsresol: 9, name: 'any'}],
        extraBlocks: [{type: 0x40000bad, body: new Uint8Array(5)}, {type: 4, body: new Uint8Array(8)}],
        packets: conv.slice(0, 4).map((c, i) => ({time: c.time, iface: i % 2, data: frame(i % 2 ? 'sll2' : 'ethernet', c.packet)})),
      },
      {
        bigEndian: true,
        interfaces: [{linkType: 101, tsresol: 0x80 | 20, tsoffset: 100}],
        packets: [
          ...conv.slice(4, 7).map((c) => ({time: c.time, data: frame('raw', c.packet)})),
          {time: 0, data: frame('raw', conv[7]!.packet), simple: true},
        ],
      },
    ])
    const file = tmpFile('multi.pcapng', bytes)
    const {summary, seen} = await readAll(file, {chunkSize: 64})
    expect(summary).toMatchObject({format: 'pcapng', byteOrder: 'big', packets: 8, skippedBlocks: 2})
    expect(summary.interfaces.map((i) => [i.linkType, i.tsPerSecond, i.name])).toEqual([[1, 1e6, 'eth0'], [276, 1e9, 'any'], [101, 2 ** 20, undefined]])
    expect(seen.map((s) => s.linkType)).toEqual([1, 276, 1, 276, 101, 101, 101, 101])
    expect(seen.every((s) => s.status === DECODE.OK)).toBe(true)
    for (let i = 0; i < 7; i++) expect(seen[i]!.time).toBeCloseTo(conv[i]!.time, 5)
  })

  it('delivers packets of undescribed interfaces as problems and goes on', async () => {
    const c = conversation('10.0.0.1', '10.0.0.2', 1, 2)
    const file = tmpFile('badif.pcapng', encodePcapng([{interfaces: [{linkType: 101}], packets: [{time: 1, iface: 3, data: c[0]!.packet}, {time: 2, data: c[1]!.packet}]}]))
    const {seen} = await readAll(file)
    expect(seen[0]).toMatchObject({status: -1, problem: expect.stringMatching(/interface 3 is not described/)})
    expect(seen[1]!.status).toBe(DECODE.OK)
  })
})

describe('broken files', () => {
  const good = encodePcap({linkType: 1}, conversation('10.0.0.1', '10.0.0.2', 1, 2).map((c) => ({time: c.time, data: frame('ethernet', c.packet)})))
  const goodNg = encodePcapng([{interfaces: [{linkType: 1}], packets: conversation('10.0.0.1', '10.0.0.2', 1, 2).map((c) => ({time: c.time, data: frame('ethernet', c.packet)}))}])

  async function error(bytes: Uint8Array, name: string): Promise<CaptureFormatError> {
    const file = tmpFile(name, bytes)
    const e = await readCapture(file, () => {}).then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(CaptureFormatError)
    return e as CaptureFormatError
  }

  it('says where and what for each', async () => {
    expect((await error(new Uint8Array(0), 'empty.pcap')).message).toMatch(/empty.pcap: byte offset 0: expected a pcap or pcapng file header, found 0 bytes/)
    expect((await error(Buffer.from('hello world, not a capture at all'), 'text.pcap')).message).toMatch(/expected pcap magic .* found 68 65 6c 6c/)
    expect((await error(Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0]), 'gz.pcap')).message).toMatch(/gzip/)
    expect((await error(good.subarray(0, 20), 'short-header.pcap')).message).toMatch(/byte offset 20: expected a pcap file header \(24 bytes\), found 20 bytes/)
    const v = Buffer.from(good)
    v.writeUInt16LE(9, 4)
    expect((await error(v, 'version.pcap')).message).toMatch(/expected pcap version 2.x, found version 9/)
    const huge = Buffer.from(good)
    huge.writeUInt32LE(0x7fffffff, 24 + 8)
    const e = await error(huge, 'huge.pcap')
    expect(e.message).toMatch(/huge.pcap: byte offset 32 \(packet 1\): expected a captured length of at most 262144 bytes, found 2147483647/)
    expect([e.offset, e.packet]).toEqual([32, 1])
    const ngLen = Buffer.from(goodNg)
    ngLen.writeUInt32LE(13, 4)
    expect((await error(ngLen, 'nglen.pcapng')).message).toMatch(/byte offset 4: expected a block length that is a multiple of 4/)
    const ngTrail = Buffer.from(goodNg)
    ngTrail.writeUInt32LE(999, ngTrail.readUInt32LE(4) - 4)
    expect((await error(ngTrail, 'ngtrail.pcapng')).message).toMatch(/expected the trailing block length 28, found 999/)
    const ngBom = Buffer.from(goodNg)
    ngBom.writeUInt32LE(0x12345678, 8)
    expect((await error(ngBom, 'ngbom.pcapng')).message).toMatch(/byte-order magic/)
    const missing = await readCapture('/nonexistent/ldc.pcap', () => {}).catch((x: unknown) => x)
    expect((missing as Error).message).toMatch(/expected a readable capture file, found no such file/)
  })

  it('reads a file cut inside a record up to the cut and says so', async () => {
    const file = tmpFile('cut.pcap', good.subarray(0, good.length - 7))
    const {summary, seen} = await readAll(file)
    expect(summary.packets).toBe(7)
    expect(seen).toHaveLength(7)
    expect(summary.truncated).toMatchObject({packet: 8, expected: expect.stringMatching(/captured bytes/)})
    const ng = tmpFile('cut.pcapng', goodNg.subarray(0, goodNg.length - 3))
    const r = await readAll(ng)
    expect(r.summary.packets).toBe(7)
    expect(r.summary.truncated).toMatchObject({packet: 8})
  })

  it('never reads past the frame it is given', () => {
    // decode a frame inside a larger buffer of 0xff: nothing after `end` may matter
    const p = tcpPacket({src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: SYN})
    const d = new DecodedPacket()
    for (let cut = 0; cut < p.length; cut++) {
      const buf = new Uint8Array(p.length + 64).fill(0xff)
      buf.set(p.subarray(0, cut))
      expect(decodeFrame(101, buf, 0, cut, d)).not.toBe(DECODE.UNSUPPORTED_LINK)
      if (cut < 40) expect(d.l4).toBe(false)
    }
  })
})

