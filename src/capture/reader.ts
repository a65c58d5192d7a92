// A streaming reader for pcap and pcapng files: the file is read in chunks into one buffer that only grows
// for a record larger than itself (bounded by MAX_RECORD), so memory stays flat whatever the file's size.
// Every length read from the file is checked before it is used; each step consumes at least one record
// header, so a hostile file can neither crash nor hang the reader. Problems that end the file (wrong magic,
// broken block structure) throw CaptureFormatError; a file cut short ends the read with `truncated` set;
// a packet that cannot be delivered (unknown interface, length larger than its block) is delivered with
// `problem` set and no data, and the read goes on.
//
// Formats: pcap (tcpdump.org/manpages/pcap-savefile.5.html, draft-ietf-opsawg-pcap) in both byte orders,
// micro- and nanosecond, and the "modified" (Kuznetzov) variant; pcapng (draft-ietf-opsawg-pcapng):
// SHB, IDB (if_tsresol, if_tsoffset, if_name), EPB, SPB, the obsolete PB; other blocks are skipped.
import {open, type FileHandle} from 'node:fs/promises'
import {CaptureFormatError} from './errors.js'
import {u16, u16le, u32, u32le} from './wire.js'

export type CaptureFormat = 'pcap' | 'pcapng'

export interface CaptureInterface {
  readonly linkType: number
  readonly snaplen: number
  /** units per second of this interface's timestamps (1e6 for microseconds, 1e9 for nanoseconds...) */
  readonly tsPerSecond: number
  readonly name?: string
}

/** One packet as read; the object and its `data` buffer are reused: copy what you keep. */
export interface PacketRecord {
  /** 1-based, counted over every packet record of the file (Wireshark's frame number) */
  index: number
  /** byte offset of the record (pcap record header / pcapng block) in the file */
  offset: number
  /** interface index (pcapng IDB order; 0 for pcap) */
  iface: number
  linkType: number
  /** seconds since the epoch */
  time: number
  caplen: number
  origLen: number
  data: Buffer
  /** where the frame starts in `data` */
  start: number
  /** set when the record holds no usable frame; `caplen` is then 0 */
  problem: string | undefined
}

export interface Truncation {
  readonly offset: number
  readonly packet: number | undefined
  readonly expected: string
  readonly found: string
}

export interface ReadSummary {
  readonly format: CaptureFormat
  readonly byteOrder: 'little' | 'big'
  readonly interfaces: readonly CaptureInterface[]
  /** packet records met (delivered, including those with a problem) */
  readonly packets: number
  /** bytes of the file read */
  readonly bytes: number
  /** pcapng blocks skipped because this reader does not need them (name resolution, statistics, custom...) */
  readonly skippedBlocks: number
  /** the file ended inside a record: everything before it was delivered */
  readonly truncated?: Truncation
}

export interface ReadOptions {
  /** chunk size in bytes (default 1 MiB) */
  readonly chunkSize?: number
  /** the name errors give the file (default: the path) */
  readonly name?: string
}

/** No packet record or block is accepted beyond this size: a larger length is a corrupt header. */
export const MAX_RECORD = 16 * 1024 * 1024
/** libpcap's own bound for a packet's captured length when the snaplen does not say more (MAXIMUM_SNAPLEN) */
export const MAX_SNAPLEN = 262144

const PCAPNG_SHB = 0x0a0d0d0a
const PCAPNG_BOM = 0x1a2b3c4d

/** The chunk buffer over an open file: [start, end) is unread data, `base` is the file offset of buf[0]. */
class Chunks {
  buf: Buffer
  start = 0
  end = 0
  base = 0
  eof = false

  constructor(
    private readonly fh: FileHandle,
    size: number,
  ) {
    this.buf = Buffer.allocUnsafe(size)
  }

  get avail(): number {
    return this.end - this.start
  }

  get offset(): number {
    return this.base + this.start
  }

  /** Makes at least `need` bytes available unless the file ends first; returns whether it could. */
  async fill(need: number): Promise<boolean> {
    if (this.avail >= need) return true
    if (this.eof) return false
    if (this.start + need > this.buf.length) {
      const keep = this.avail
      if (need > this.buf.length) {
        const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2))
        this.buf.copy(bigger, 0, this.start, this.end)
        this.buf = bigger
      } else this.buf.copy(this.buf, 0, this.start, this.end)
      this.base += this.start
      this.start = 0
      this.end = keep
    }
    while (this.avail < need) {
      const {bytesRead} = await this.fh.read(this.buf, this.end, this.buf.length - this.end, this.base + this.end)
      if (bytesRead === 0) {
        this.eof = true
        return false
      }
      this.end += bytesRead
    }
    return true
  }
}

function hex(b: Buffer, o: number, n: number): string {
  return [...b.subarray(o, o + n)].map((x) => x.toString(16).padStart(2, '0')).join(' ')
}

/**
 * Reads the capture at `path`, calling `onPacket` once per packet record in file order.
 * Throws CaptureFormatError when the file is not a capture or its structure is broken.
 */
export async function readCapture(path: string, onPacket: (r: PacketRecord) => void, opts: ReadOptions = {}): Promise<ReadSummary> {
  const name = opts.name ?? path
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new CaptureFormatError(name, 0, undefined, 'a readable capture file', err.code === 'ENOENT' ? 'no such file' : (err.code ?? err.message))
  }
  try {
    const c = new Chunks(fh, Math.max(64, opts.chunkSize ?? 1024 * 1024))
    if (!(await c.fill(4))) {
      throw new CaptureFormatError(name, 0, undefined, 'a pcap or pcapng file header', `${c.avail} bytes`)
    }
    const m = u32(c.buf, 0)
    if (m === PCAPNG_SHB) return await readPcapng(c, name, onPacket)
    if (c.buf[0] === 0x1f && c.buf[1] === 0x8b) {
      throw new CaptureFormatError(name, 0, undefined, 'pcap or pcapng magic', 'gzip data (decompress the file first)')
    }
    return await readPcap(c, name, onPacket)
  } finally {
    await fh.close()
  }
}

function newRecord(buf: Buffer): PacketRecord {
  return {index: 0, offset: 0, iface: 0, linkType: 0, time: 0, caplen: 0, origLen: 0, data: buf, start: 0, problem: undefined}
}

async function readPcap(c: Chunks, name: string, onPacket: (r: PacketRecord) => void): Promise<ReadSummary> {
  const b0 = c.buf
  const be = u32(b0, 0)
  const le = u32le(b0, 0)
  let little: boolean
  let perSecond = 1e6
  let hdrLen = 16
  if (le === 0xa1b2c3d4) little = true
  else if (be === 0xa1b2c3d4) little = false
  else if (le === 0xa1b23c4d) (little = true), (perSecond = 1e9)
  else if (be === 0xa1b23c4d) (little = false), (perSecond = 1e9)
  else if (le === 0xa1b2cd34) (little = true), (hdrLen = 24)
  else if (be === 0xa1b2cd34) (little = false), (hdrLen = 24)
  else throw new CaptureFormatError(name, 0, undefined, 'pcap magic (a1b2c3d4 / a1b23c4d) or pcapng section header (0a0d0d0a)', hex(b0, 0, 4))
  if (!(await c.fill(24))) throw new CaptureFormatError(name, c.avail, undefined, 'a pcap file header (24 bytes)', `${c.avail} bytes`)
  const r16 = little ? u16le : u16
  const r32 = little ? u32le : u32
  const major = r16(c.buf, 4)
  if (major !== 2) throw new CaptureFormatError(name, 4, undefined, 'pcap version 2.x', `version ${major}.${r16(c.buf, 6)}`)
  const snaplen = r32(c.buf, 16)
  const linkType = r32(c.buf, 20) & 0xffff
  const iface: CaptureInterface = {linkType, snaplen, tsPerSecond: perSecond}
  const limit = Math.max(MAX_SNAPLEN, Math.min(snaplen, MAX_RECORD))
  c.start = 24
  const rec = newRecord(c.buf)
  rec.linkType = linkType
  const inv = 1 / perSecond
  let index = 0
  let truncated: Truncation | undefined
  for (;;) {
    // the synchronous inner loop handles every complete record of the chunk
    let b = c.buf
    rec.data = b
    let s = c.start
    const e = c.end
    while (e - s >= hdrLen) {
      const caplen = little ? u32le(b, s + 8) : u32(b, s + 8)
      if (caplen > limit) {
        throw new CaptureFormatError(name, c.base + s + 8, index + 1, `a captured length of at most ${limit} bytes`, `${caplen}`)
      }
      if (e - s < hdrLen + caplen) break
      index++
      rec.index = index
      rec.offset = c.base + s
      rec.time = little ? u32le(b, s) + u32le(b, s + 4) * inv : u32(b, s) + u32(b, s + 4) * inv
      rec.caplen = caplen
      rec.origLen = little ? u32le(b, s + 12) : u32(b, s + 12)
      rec.start = s + hdrLen
      onPacket(rec)
      s += hdrLen + caplen
    }
    c.start = s
    if (c.avail === 0 && c.eof) break
    // an incomplete record: how much does it need?
    let need = hdrLen
    if (c.avail >= hdrLen) need = hdrLen + r32(c.buf, c.start + 8)
    if (!(await c.fill(need))) {
      if (c.avail > 0) {
        truncated = {
          offset: c.offset,
          packet: index + 1,
          expected: c.avail < hdrLen ? `a packet record header (${hdrLen} bytes)` : `${need - hdrLen} captured bytes`,
          found: c.avail < hdrLen ? `${c.avail} bytes` : `${c.avail - hdrLen} bytes`,
        }
      }
      break
    }
    b = c.buf
  }
  return {
    format: 'pcap',
    byteOrder: little ? 'little' : 'big',
    interfaces: [iface],
    packets: index,
    bytes: c.base + c.end,
    skippedBlocks: 0,
    ...(truncated ? {truncated} : {}),
  }
}

interface NgIface extends CaptureInterface {
  /** seconds added to every timestamp (if_tsoffset) */
  readonly tsOffset: number
}

async function readPcapng(c: Chunks, name: string, onPacket: (r: PacketRecord) => void): Promise<ReadSummary> {
  let little = true
  let sawSection = false
  let ifaces: NgIface[] = []
  const all: NgIface[] = []
  const rec = newRecord(c.buf)
  let index = 0
  let skipped = 0
  let truncated: Truncation | undefined
  for (;;) {
    if (!(await c.fill(12))) {
      if (c.avail > 0) truncated = {offset: c.offset, packet: undefined, expected: 'a block header (12 bytes)', found: `${c.avail} bytes`}
      break
    }
    let b = c.buf
    let s = c.start
    const at = c.offset
    const type0 = u32(b, s)
    if (type0 === PCAPNG_SHB) {
      const bom = u32(b, s + 8)
      if (bom === PCAPNG_BOM) little = false
      else if (u32le(b, s + 8) === PCAPNG_BOM) little = true
      else throw new CaptureFormatError(name, at + 8, undefined, 'the section byte-order magic 1a2b3c4d', hex(b, s + 8, 4))
      sawSection = true
    } else if (!sawSection) {
      throw new CaptureFormatError(name, at, undefined, 'a section header block (0a0d0d0a) first', hex(b, s, 4))
    }
    const r16 = little ? u16le : u16
    const r32 = little ? u32le : u32
    const type = r32(b, s)
    const len = r32(b, s + 4)
    if (len < 12 || len % 4 !== 0 || len > MAX_RECORD) {
      throw new CaptureFormatError(name, at + 4, undefined, `a block length that is a multiple of 4 between 12 and ${MAX_RECORD}`, `${len} (block type 0x${type.toString(16)})`)
    }
    if (!(await c.fill(len))) {
      truncated = {offset: at, packet: isPacketBlock(type) ? index + 1 : undefined, expected: `a block of ${len} bytes`, found: `${c.avail} bytes`}
      break
    }
    b = c.buf
    s = c.start
    const trailer = r32(b, s + len - 4)
    if (trailer !== len) {
      throw new CaptureFormatError(name, at + len - 4, isPacketBlock(type) ? index + 1 : undefined, `the trailing block length ${len}`, `${trailer}`)
    }
    rec.data = b
    switch (type) {
      case PCAPNG_SHB: {
        if (len < 28) throw new CaptureFormatError(name, at, undefined, 'a section header block of at least 28 bytes', `${len}`)
        const major = r16(b, s + 12)
        if (major !== 1) throw new CaptureFormatError(name, at + 12, undefined, 'pcapng version 1.x', `version ${major}.${r16(b, s + 14)}`)
        ifaces = []
        break
      }
      case 1: {
        // Interface Description Block
        if (len < 20) throw new CaptureFormatError(name, at, undefined, 'an interface description block of at least 20 bytes', `${len}`)
        const iface = parseIdb(b, s, len, little)
        ifaces.push(iface)
        all.push(iface)
        break
      }
      case 6:
      case 2: {
        // Enhanced Packet Block, and the obsolete Packet Block
        index++
        rec.index = index
        rec.offset = at
        rec.problem = undefined
        if (len < 32) {
          deliverProblem(rec, onPacket, `a packet block of at least 32 bytes, found ${len}`)
          break
        }
        const ifid = type === 6 ? r32(b, s + 8) : r16(b, s + 8)
        const iface = ifaces[ifid]
        const caplen = r32(b, s + 20)
        if (!iface) {
          deliverProblem(rec, onPacket, `interface ${ifid} is not described in this section (${ifaces.length} interfaces)`)
          break
        }
        if (caplen > len - 32) {
          deliverProblem(rec, onPacket, `captured length ${caplen} larger than its block allows (${len - 32})`)
          break
        }
        rec.iface = ifid
        rec.linkType = iface.linkType
        rec.time = timeOf(r32(b, s + 12), r32(b, s + 16), iface)
        rec.caplen = caplen
        rec.origLen = r32(b, s + 24)
        rec.start = s + 28
        onPacket(rec)
        break
      }
      case 3: {
        // Simple Packet Block: interface 0, no timestamp
        index++
        rec.index = index
        rec.offset = at
        rec.problem = undefined
        const iface = ifaces[0]
        if (!iface || len < 16) {
          deliverProblem(rec, onPacket, iface ? `a simple packet block of at least 16 bytes, found ${len}` : 'a simple packet block after an interface description')
          break
        }
        const orig = r32(b, s + 8)
        let caplen = Math.min(orig, len - 16)
        if (iface.snaplen > 0) caplen = Math.min(caplen, iface.snaplen)
        rec.iface = 0
        rec.linkType = iface.linkType
        rec.time = 0
        rec.caplen = caplen
        rec.origLen = orig
        rec.start = s + 12
        onPacket(rec)
        break
      }
      default:
        skipped++
    }
    c.start = s + len
  }
  return {
    format: 'pcapng',
    byteOrder: little ? 'little' : 'big',
    interfaces: all,
    packets: index,
    bytes: c.base + c.end,
    skippedBlocks: skipped,
    ...(truncated ? {truncated} : {}),
  }
}

function isPacketBlock(type: number): boolean {
  return type === 6 || type === 3 || type === 2
}

function deliverProblem(rec: PacketRecord, onPacket: (r: PacketRecord) => void, problem: string): void {
  rec.problem = problem
  rec.caplen = 0
  rec.origLen = 0
  rec.time = 0
  rec.linkType = -1
  onPacket(rec)
  rec.problem = undefined
}

function timeOf(hi: number, lo: number, iface: NgIface): number {
  const per = iface.tsPerSecond
  return hi * (4294967296 / per) + lo / per + iface.tsOffset
}

/** The link type, snaplen and the options that matter (if_name 2, if_tsresol 9, if_tsoffset 14) of an IDB. */
function parseIdb(b: Buffer, s: number, len: number, little: boolean): NgIface {
  const r16 = little ? u16le : u16
  const r32 = little ? u32le : u32
  const linkType = r16(b, s + 8)
  const snaplen = r32(b, s + 12)
  let tsPerSecond = 1e6
  let tsOffset = 0
  let ifName: string | undefined
  // options: code (2), length (2), value padded to 4; a malformed option list ends the options, not the file
  let p = s + 16
  const end = s + len - 4
  while (end - p >= 4) {
    const code = r16(b, p)
    const olen = r16(b, p + 2)
    if (code === 0) break
    if (p + 4 + olen > end) break
    const v = p + 4
    if (code === 9 && olen >= 1) {
      const r = b[v]!
      const exp = r & 0x7f
      const per = r & 0x80 ? 2 ** exp : 10 ** exp
      if (Number.isFinite(per) && per >= 1) tsPerSecond = per
    } else if (code === 14 && olen >= 8) {
      const hi = little ? r32(b, v + 4) : r32(b, v)
      const lo = little ? r32(b, v) : r32(b, v + 4)
      tsOffset = (hi | 0) * 4294967296 + lo
    } else if (code === 2 && olen > 0) {
      ifName = b.toString('utf8', v, v + olen).replace(/\0+$/, '')
    }
    p = v + ((olen + 3) & ~3)
  }
  return {linkType, snaplen, tsPerSecond, tsOffset, ...(ifName !== undefined ? {name: ifName} : {})}
}
