// A minimal reader for (gzipped) tar archives: ustar, GNU long names and pax `path` records.
// Snapshots are small text files, so the whole archive is read into memory.
import {createRequire} from 'node:module'
import {ParseError} from '../model/source.js'

export interface TarEntry {
  readonly path: string
  readonly data: Buffer
}

function field(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off)
  return buf.toString('utf8', off, end >= 0 && end < off + len ? end : off + len)
}

function octal(buf: Buffer, off: number, len: number): number {
  const s = field(buf, off, len).trim()
  return s === '' ? 0 : parseInt(s, 8)
}

export function readTarGz(file: string, gz: Buffer): TarEntry[] {
  // node:zlib is loaded only for an archive: `check` on a directory or a bare file never needs it (loading it
  // costs every check ~1-3 ms of start-up)
  const {gunzipSync} = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib')
  let buf: Buffer
  try {
    buf = gunzipSync(gz)
  } catch (e) {
    throw new ParseError(file, undefined, 'a gzip-compressed tar archive', `gzip error: ${(e as Error).message}`)
  }
  return readTar(file, buf)
}

export function readTar(file: string, buf: Buffer): TarEntry[] {
  const out: TarEntry[] = []
  let off = 0
  let longName: string | undefined
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512)
    if (header.every((b) => b === 0)) break
    const magic = field(header, 257, 6)
    if (magic !== 'ustar' && magic !== 'ustar ') {
      throw new ParseError(file, undefined, 'a tar header (ustar magic)', `block at byte ${off}`)
    }
    const size = octal(header, 124, 12)
    if (!Number.isFinite(size) || size < 0 || off + 512 + size > buf.length) {
      throw new ParseError(file, undefined, 'a complete tar archive', `entry at byte ${off} runs past the end (truncated)`)
    }
    const type = String.fromCharCode(header[156] || 48)
    const prefix = field(header, 345, 155)
    let name = field(header, 0, 100)
    if (prefix) name = `${prefix}/${name}`
    const data = buf.subarray(off + 512, off + 512 + size)
    off += 512 + Math.ceil(size / 512) * 512
    if (type === 'L') {
      longName = field(data, 0, data.length)
      continue
    }
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))
      if (m) longName = m[1]
      continue
    }
    if (type === 'g') continue
    if (longName !== undefined) {
      name = longName
      longName = undefined
    }
    if (type === '0' || type === '\0' || type === '7') out.push({path: name.replace(/^\.\//, ''), data: Buffer.from(data)})
  }
  return out
}
