// Property-based tests: valid captures mutated (byte flips, truncation, splices, huge lengths) never make
// the reader or the detectors throw anything but our typed error, and every read ends.
import {afterAll, describe, expect, it} from 'vitest'
import fc from 'fast-check'
import {analyseCaptureFile} from '../../src/capture/analyse.js'
import {frame, grePacket, guePacket, icmpError, ipipPacket, LINK_TYPE_OF, tcpPacket, udpPacket, type LinkKind} from '../../src/capture/craft.js'
import {DecodedPacket, decodeFrame} from '../../src/capture/decode.js'
import {CaptureFormatError} from '../../src/capture/errors.js'
import {SymptomDetector} from '../../src/capture/symptoms.js'
import {encodePcap, encodePcapng} from '../../src/capture/writer.js'
import {ACK, cleanupTmp, conversation, PSH, SYN, tmpFile} from './helpers.js'

afterAll(cleanupTmp)

function packets(): Uint8Array[] {
  const conv = conversation('10.0.0.1', '10.0.0.100', 40000, 80).map((c) => c.packet)
  const v6 = conversation('2001:db8::1', '2001:db8::100', 40001, 443).map((c) => c.packet)
  const data = tcpPacket({src: '10.0.0.1', dst: '10.0.0.100', sport: 40000, dport: 80, flags: PSH | ACK, seq: 1001, ack: 5001, payload: 30})
  return [
    ...conv, ...v6.slice(0, 4), data,
    icmpError('10.0.0.254', '10.0.0.1', 3, 10, data),
    icmpError('2001:db8::fe', '2001:db8::1', 1, 1, v6[3]!),
    udpPacket('10.0.0.1', '10.0.0.53', 5353, 53, 12),
    tcpPacket({src: '10.0.0.1', dst: '10.0.0.100', sport: 40002, dport: 80, flags: SYN, seq: 9}),
    // LVS-TUN: the same requests inside IPIP, GRE (key, sequence) and GUE, and an ICMP error quoting one
    ipipPacket('10.0.1.1', '10.0.1.5', conv[0]!),
    ipipPacket('10.0.1.1', '10.0.1.5', v6[0]!),
    grePacket('10.0.1.1', '10.0.1.5', data, {csum: true, key: 7, seq: 1}),
    guePacket('10.0.1.1', '10.0.1.5', conv[2]!),
    icmpError('10.0.1.5', '10.0.1.1', 3, 2, ipipPacket('10.0.1.1', '10.0.1.5', data)),
  ]
}

const LINKS: LinkKind[] = ['ethernet', 'sll', 'sll2', 'raw', 'null']

function seeds(): Uint8Array[] {
  const ps = packets()
  const out: Uint8Array[] = []
  LINKS.forEach((link, i) => {
    const frames = ps.map((p, j) => ({time: 1_700_000_000 + j * 0.01, data: frame(link, p, link === 'ethernet' && j % 3 === 0 ? {vlans: [5, 6]} : {})}))
    out.push(encodePcap({linkType: LINK_TYPE_OF[link], bigEndian: i % 2 === 1, nanosecond: i % 3 === 0}, frames))
  })
  out.push(encodePcapng([
    {interfaces: [{linkType: 1}, {linkType: 276, tsresol: 9}], extraBlocks: [{type: 5, body: new Uint8Array(12)}],
      packets: ps.map((p, j) => ({time: 1_700_000_000 + j * 0.01, iface: j % 2, data: frame(j % 2 ? 'sll2' : 'ethernet', p)}))},
    {bigEndian: true, interfaces: [{linkType: 101}], packets: ps.slice(0, 5).map((p, j) => ({time: 1_700_000_001 + j, data: p, simple: j === 2}))},
  ]))
  return out
}

const SEEDS = seeds()

/** a mutation of a seed: flips, a cut, a splice of bytes from anywhere in any seed, a 32-bit length poked in */
const mutated = fc
  .record({
    seed: fc.nat(SEEDS.length - 1),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {maxLength: 8}),
    cut: fc.option(fc.nat(), {nil: undefined}),
    splice: fc.option(fc.record({from: fc.nat(SEEDS.length - 1), start: fc.nat(), len: fc.integer({min: 1, max: 200}), at: fc.nat(), replace: fc.boolean()}), {nil: undefined}),
    poke: fc.option(fc.record({at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 12, 0xffffffff, 0x7fffffff, 0x80000000, 262145, 16 * 1024 * 1024), fc.nat())}), {nil: undefined}),
  })
  .map(({seed, flips, cut, splice, poke}) => {
    let b = Buffer.from(SEEDS[seed]!)
    for (const [at, v] of flips) b[at % b.length] = v
    if (splice) {
      const src = SEEDS[splice.from]!
      const start = splice.start % src.length
      const piece = src.subarray(start, start + splice.len)
      const at = splice.at % (b.length + 1)
      b = Buffer.concat([b.subarray(0, at), piece, b.subarray(splice.replace ? Math.min(b.length, at + piece.length) : at)])
    }
    if (poke && b.length >= 4) b.writeUInt32LE(poke.value >>> 0, (poke.at % (b.length - 3)) & ~3)
    if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1))
    return b
  })

let n = 0

describe('mutated captures', () => {
  it('analyse resolves, or rejects with CaptureFormatError only, and ends quickly', async () => {
    const outcomes = {read: 0, rejected: 0, truncated: 0, skipped: 0}
    await fc.assert(
      fc.asyncProperty(mutated, async (bytes) => {
        const file = tmpFile(`m${n++ % 8}.cap`, bytes)
        const t0 = Date.now()
        try {
          const r = await analyseCaptureFile(file, {chunkSize: 64 + (n % 300)})
          outcomes.read++
          if (r.truncated) outcomes.truncated++
          if (r.skipped) outcomes.skipped++
          expect(r.packets).toBeGreaterThanOrEqual(0)
          expect(r.ip + r.notIp + r.skipped).toBe(r.packets)
          for (const s of r.symptoms) expect(s.packets.length).toBeGreaterThan(0)
        } catch (e) {
          if (!(e instanceof CaptureFormatError)) throw e
          outcomes.rejected++
          expect(e.message).toMatch(/byte offset \d+/)
        }
        expect(Date.now() - t0).toBeLessThan(2000)
      }),
      {numRuns: 400},
    )
    // the mutations reach every outcome: clean reads, typed errors, cut files, skipped packets
    expect(Object.values(outcomes).every((v) => v > 0)).toBe(true)
  })

  it('flips inside packet bytes never lose a packet', async () => {
    const ps = packets()
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...LINKS), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({min: 0, max: 255})), {minLength: 1, maxLength: 20}), async (link, flips) => {
        const frames = ps.map((p) => frame(link, p))
        for (const [which, at, v] of flips) {
          const f = frames[which % frames.length]!
          f[at % f.length] = v
        }
        const file = tmpFile(`f${n++ % 8}.pcap`, encodePcap({linkType: LINK_TYPE_OF[link]}, frames.map((data, i) => ({time: 1000 + i, data}))))
        const r = await analyseCaptureFile(file)
        expect(r.packets).toBe(ps.length)
        expect(r.truncated).toBeUndefined()
      }),
      {numRuns: 200},
    )
  })
})

describe('random frames', () => {
  it('decodeFrame and the detector never throw, for any link type', () => {
    const d = new DecodedPacket()
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147), fc.uint8Array({maxLength: 120})), {maxLength: 60}), (frames) => {
        const det = new SymptomDetector()
        frames.forEach(([lt, bytes], i) => {
          decodeFrame(lt, bytes, 0, bytes.length, d)
          d.index = i + 1
          d.time = i * 0.5
          det.packet(d)
        })
        det.finish()
      }),
      {numRuns: 500},
    )
  })

  it('truncated and flipped real packets decode without throwing and feed the detector', () => {
    const ps = packets()
    const d = new DecodedPacket()
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(ps.length - 1), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {maxLength: 4})), {maxLength: 40}), (items) => {
        const det = new SymptomDetector()
        items.forEach(([which, cut, flips], i) => {
          const p = Uint8Array.from(ps[which]!)
          for (const [at, v] of flips) p[at % p.length] = v
          const end = cut % (p.length + 1)
          decodeFrame(101, p, 0, end, d)
          d.index = i + 1
          d.time = i * 0.3
          det.packet(d)
        })
        det.finish()
      }),
      {numRuns: 500},
    )
  })
})
