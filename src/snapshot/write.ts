// Writes a collection as an `lvsdoctor-snapshot/1` directory, or as a .tar.gz holding one directory named
// after the host (what src/snapshot/store.ts reads). The archive is written by a small ustar writer over
// node's zlib; entries are sorted and dated collectedAt, so one collection always gives the same bytes.
import {existsSync, mkdirSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {gzipSync} from 'node:zlib'
import {SNAPSHOT_FORMAT, SNAPSHOT_FILES, type Manifest} from '../model/snapshot.js'
import {UsageError} from '../model/source.js'
import type {Collection} from './collect.js'

export type OutputKind = 'dir' | 'tar.gz'

export interface Written {
  readonly path: string
  readonly kind: OutputKind
  /** files written, manifest.json included, in the order of the format */
  readonly files: string[]
  readonly bytes: number
}

export function outputKind(path: string): OutputKind {
  return /\.(tar\.gz|tgz)$/i.test(path) ? 'tar.gz' : 'dir'
}

/** `lvsdoctor-snapshot-<host>-20260121T091203Z` */
export function defaultOutputName(host: string, at: Date): string {
  return `lvsdoctor-snapshot-${host}-${at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`
}

/** A host name must be usable as a directory name (it names the directory inside a .tar.gz). */
export function checkHostName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new UsageError(`host name ${JSON.stringify(name)}: expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (give one with --name)`)
  }
  return name
}

export function buildManifest(c: Collection, version: string): Manifest {
  return {
    format: SNAPSHOT_FORMAT,
    host: c.host,
    role: c.role,
    collectedAt: c.collectedAt,
    tool: {name: 'lvsdoctor', version},
    durationMs: c.durationMs,
    commands: c.commands,
    ...(c.iptablesBackend ? {iptablesBackend: c.iptablesBackend} : {}),
    ...(Object.keys(c.copies).length > 0 ? {copies: c.copies} : {}),
    ...(c.notes.length > 0 ? {notes: c.notes} : {}),
  }
}

function orderedFiles(c: Collection, manifest: Buffer): [string, Buffer][] {
  const order = (f: string) => {
    const i = SNAPSHOT_FILES.indexOf(f as never)
    return i < 0 ? SNAPSHOT_FILES.length : i
  }
  return [['manifest.json', manifest] as [string, Buffer], ...[...c.files].sort(([a], [b]) => order(a) - order(b))]
}

/** Checks that a snapshot can go to `path` (before collecting, so a bad -o fails at once). */
export function checkOutput(path: string): OutputKind {
  const kind = outputKind(path)
  const full = resolve(path)
  if (kind === 'tar.gz') {
    if (existsSync(full)) throw new UsageError(`${path} already exists (a snapshot archive is never overwritten): give a new file name`)
    if (!existsSync(dirname(full))) throw new UsageError(`${dirname(path)}: no such directory`)
  } else if (existsSync(full)) {
    if (!statSync(full).isDirectory()) throw new UsageError(`${path} exists and is not a directory`)
    if (readdirSync(full).length > 0) throw new UsageError(`${path} is not empty (a snapshot goes into a new or empty directory)`)
  }
  return kind
}

/** Writes the collection to `path` (a directory, or a .tar.gz). Refuses to mix with what is already there. */
export function writeSnapshot(c: Collection, path: string, version: string): Written {
  checkHostName(c.host)
  const manifest = Buffer.from(JSON.stringify(buildManifest(c, version), null, 2) + '\n')
  const files = orderedFiles(c, manifest)
  const kind = checkOutput(path)
  const full = resolve(path)
  if (kind === 'tar.gz') {
    const mtime = Math.floor(Date.parse(c.collectedAt) / 1000)
    const tar = tarball([
      {path: `${c.host}/`, data: Buffer.alloc(0), mode: 0o700, dir: true, mtime},
      ...files.map(([f, data]) => ({path: `${c.host}/${f}`, data, mode: 0o600, mtime})),
    ])
    const gz = gzipSync(tar, {level: 6})
    writeFileSync(full, gz, {mode: 0o600, flag: 'wx'})
    return {path, kind, files: files.map(([f]) => f), bytes: gz.length}
  }
  if (!existsSync(full)) mkdirSync(full, {recursive: true, mode: 0o700})
  let bytes = 0
  // manifest.json last, so a directory with a manifest is a complete one
  for (const [f, data] of [...files.slice(1), files[0]!]) {
    writeFileSync(resolve(full, f), data, {mode: 0o600, flag: 'wx'})
    bytes += data.length
  }
  return {path, kind, files: files.map(([f]) => f), bytes}
}

export interface TarInput {
  readonly path: string
  readonly data: Buffer
  readonly mode: number
  readonly mtime: number
  readonly dir?: boolean
}

/** A POSIX ustar archive (uncompressed) of the given entries. */
export function tarball(entries: readonly TarInput[]): Buffer {
  const blocks: Buffer[] = []
  for (const e of entries) {
    const h = Buffer.alloc(512)
    let name = e.path
    let prefix = ''
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', name.length - 2)
      prefix = name.slice(0, cut)
      name = name.slice(cut + 1)
      if (cut < 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar: path too long: ${e.path}`)
    }
    h.write(name, 0, 100, 'utf8')
    h.write(octal(e.mode, 8), 100, 'ascii')
    h.write(octal(0, 8), 108, 'ascii')
    h.write(octal(0, 8), 116, 'ascii')
    h.write(octal(e.dir ? 0 : e.data.length, 12), 124, 'ascii')
    h.write(octal(e.mtime, 12), 136, 'ascii')
    h.write('        ', 148, 'ascii')
    h.write(e.dir ? '5' : '0', 156, 'ascii')
    h.write('ustar\0', 257, 'ascii')
    h.write('00', 263, 'ascii')
    h.write('root', 265, 'ascii')
    h.write('root', 297, 'ascii')
    h.write(octal(0, 8), 329, 'ascii')
    h.write(octal(0, 8), 337, 'ascii')
    if (prefix) h.write(prefix, 345, 155, 'utf8')
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii')
    blocks.push(h)
    if (!e.dir && e.data.length > 0) {
      blocks.push(e.data)
      const pad = (512 - (e.data.length % 512)) % 512
      if (pad) blocks.push(Buffer.alloc(pad))
    }
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

/** `len - 1` octal digits and a NUL. */
function octal(n: number, len: number): string {
  const s = Math.max(0, Math.floor(n)).toString(8)
  if (s.length > len - 1) throw new Error(`tar: ${n} does not fit in ${len} bytes`)
  return s.padStart(len - 1, '0') + '\0'
}
