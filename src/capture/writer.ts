// Our own capture writers: `PcapWriter` streams a pcap file (what `capture -w` writes), `encodePcap` and
// `encodePcapng` build whole files in memory (fixtures, tests and the bench generator).
import {closeSync, openSync, writeSync} from 'node:fs'
import {put16, put32} from './wire.js'

export interface PcapHeaderOptions {
  readonly linkType: number
  readonly snaplen?: number
  readonly nanosecond?: boolean
  readonly bigEndian?: boolean
}

function w16(b: Buffer, o: number, v: number, be: boolean): void {
  if (be) put16(b, o, v)
  else b.writeUInt16LE(v & 0xffff, o)
}

function w32(b: Buffer, o: number, v: number, be: boolean): void {
  if (be) put32(b, o, v)
  else b.writeUInt32LE(v >>> 0, o)
}

export function pcapFileHeader(o: PcapHeaderOptions): Buffer {
  const b = Buffer.alloc(24)
  const be = o.bigEndian ?? false
  w32(b, 0, o.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, be)
  w16(b, 4, 2, be)
  w16(b, 6, 4, be)
  w32(b, 16, o.snaplen ?? 262144, be)
  w32(b, 20, o.linkType, be)
  return b
}

export interface EncodedPacket {
  /** seconds since the epoch */
  readonly time: number
  readonly data: Uint8Array
  /** length on the wire (default: data length) */
  readonly origLen?: number
}

function splitTime(time: number, perSecond: number): [number, number] {
  let sec = Math.floor(time)
  let frac = Math.round((time - sec) * perSecond)
  if (frac >= perSecond) {
    sec += 1
    frac -= perSecond
  }
  return [sec, frac]
}

/** A whole pcap file. */
export function encodePcap(o: PcapHeaderOptions, packets: readonly EncodedPacket[]): Buffer {
  const be = o.bigEndian ?? false
  const per = o.nanosecond ? 1e9 : 1e6
  const parts: Buffer[] = [pcapFileHeader(o)]
  for (const p of packets) {
    const h = Buffer.alloc(16)
    const [sec, frac] = splitTime(p.time, per)
    w32(h, 0, sec, be)
    w32(h, 4, frac, be)
    w32(h, 8, p.data.length, be)
    w32(h, 12, p.origLen ?? p.data.length, be)
    parts.push(h, Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length))
  }
  return Buffer.concat(parts)
}

/** Streams a little-endian pcap file; packets are buffered and written in 64 KiB writes. */
export class PcapWriter {
  private readonly fd: number
  private buf = Buffer.allocUnsafe(64 * 1024)
  private used = 0
  private closed = false
  packets = 0

  constructor(path: string, o: PcapHeaderOptions) {
    this.fd = openSync(path, 'w')
    const h = pcapFileHeader({...o, bigEndian: false})
    writeSync(this.fd, h)
    this.perSecond = o.nanosecond ? 1e9 : 1e6
  }

  private readonly perSecond: number

  /** `sec` whole seconds, `frac` micro- or nanoseconds as the header says. */
  write(sec: number, frac: number, data: Uint8Array, origLen = data.length): void {
    if (this.closed) return
    const need = 16 + data.length
    if (this.used + need > this.buf.length) this.flush()
    if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need)
    const b = this.buf
    const o = this.used
    b.writeUInt32LE(sec >>> 0, o)
    b.writeUInt32LE(frac >>> 0, o + 4)
    b.writeUInt32LE(data.length, o + 8)
    b.writeUInt32LE(origLen >>> 0, o + 12)
    b.set(data, o + 16)
    this.used += need
    this.packets++
  }

  writeTime(time: number, data: Uint8Array, origLen = data.length): void {
    const [sec, frac] = splitTime(time, this.perSecond)
    this.write(sec, frac, data, origLen)
  }

  flush(): void {
    if (this.used > 0) writeSync(this.fd, this.buf, 0, this.used)
    this.used = 0
  }

  close(): void {
    if (this.closed) return
    this.flush()
    closeSync(this.fd)
    this.closed = true
  }
}

// ---- pcapng ------------------------------------------------------------------------------------------------------

export interface NgInterface {
  readonly linkType: number
  readonly snaplen?: number
  /** the raw if_tsresol byte (6: microseconds, 9: nanoseconds, 0x80|n: 2^-n); absent: default microseconds */
  readonly tsresol?: number
  /** if_tsoffset in seconds */
  readonly tsoffset?: number
  readonly name?: string
}

export interface NgPacket extends EncodedPacket {
  readonly iface?: number
  /** write a Simple Packet Block (no timestamp, interface 0) */
  readonly simple?: boolean
}

export interface NgSection {
  readonly bigEndian?: boolean
  readonly interfaces: readonly NgInterface[]
  readonly packets: readonly NgPacket[]
  /** blocks of unknown types to put before the packets (type, body), to test that readers skip them */
  readonly extraBlocks?: readonly {type: number; body: Uint8Array}[]
}

function block(type: number, body: Buffer, be: boolean): Buffer {
  const len = 12 + body.length
  const b = Buffer.alloc(len)
  w32(b, 0, type, be)
  w32(b, 4, len, be)
  body.copy(b, 8)
  w32(b, len - 4, len, be)
  return b
}

function pad4(n: number): number {
  return (n + 3) & ~3
}

function option(code: number, value: Buffer, be: boolean): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length))
  w16(b, 0, code, be)
  w16(b, 2, value.length, be)
  value.copy(b, 4)
  return b
}

function unitsPerSecond(tsresol: number | undefined): number {
  if (tsresol === undefined) return 1e6
  return tsresol & 0x80 ? 2 ** (tsresol & 0x7f) : 10 ** (tsresol & 0x7f)
}

/** A whole pcapng file of one or more sections. */
export function encodePcapng(sections: readonly NgSection[]): Buffer {
  const out: Buffer[] = []
  for (const s of sections) {
    const be = s.bigEndian ?? false
    const shb = Buffer.alloc(16)
    w32(shb, 0, 0x1a2b3c4d, be)
    w16(shb, 4, 1, be)
    w16(shb, 6, 0, be)
    shb.writeInt32LE(-1, 8)
    shb.writeInt32LE(-1, 12)
    out.push(block(0x0a0d0d0a, shb, be))
    for (const i of s.interfaces) {
      const opts: Buffer[] = []
      if (i.name !== undefined) opts.push(option(2, Buffer.from(i.name), be))
      if (i.tsresol !== undefined) opts.push(option(9, Buffer.from([i.tsresol]), be))
      if (i.tsoffset !== undefined) {
        const v = Buffer.alloc(8)
        if (be) v.writeBigInt64BE(BigInt(i.tsoffset))
        else v.writeBigInt64LE(BigInt(i.tsoffset))
        opts.push(option(14, v, be))
      }
      if (opts.length) opts.push(Buffer.alloc(4))
      const head = Buffer.alloc(8)
      w16(head, 0, i.linkType, be)
      w32(head, 4, i.snaplen ?? 262144, be)
      out.push(block(1, Buffer.concat([head, ...opts]), be))
    }
    for (const x of s.extraBlocks ?? []) out.push(block(x.type, Buffer.from(pad(x.body)), be))
    for (const p of s.packets) {
      const data = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length)
      if (p.simple) {
        const head = Buffer.alloc(4)
        w32(head, 0, p.origLen ?? data.length, be)
        out.push(block(3, Buffer.concat([head, pad(data)]), be))
        continue
      }
      const iface = p.iface ?? 0
      const per = unitsPerSecond(s.interfaces[iface]?.tsresol) // units per second
      const units = BigInt(Math.floor(p.time - (s.interfaces[iface]?.tsoffset ?? 0))) * BigInt(Math.round(per)) +
        BigInt(Math.round(((p.time % 1) + 1) % 1 * per))
      const head = Buffer.alloc(20)
      w32(head, 0, iface, be)
      w32(head, 4, Number(units >> 32n), be)
      w32(head, 8, Number(units & 0xffffffffn), be)
      w32(head, 12, data.length, be)
      w32(head, 16, p.origLen ?? data.length, be)
      out.push(block(6, Buffer.concat([head, pad(data)]), be))
    }
  }
  return Buffer.concat(out)
}

function pad(b: Uint8Array): Buffer {
  const out = Buffer.alloc(pad4(b.length))
  out.set(b)
  return out
}
