// `conntrack -L` lines (libnetfilter_conntrack's default format, src/conntrack/snprintf_default.c), also with
// the leading `ipv4     2` columns of `conntrack -L -o extended` and /proc/net/nf_conntrack:
//   [l3 l3num] l4 l4num timeout [STATE] src= dst= sport= dport= [UNREPLIED] src= dst= sport= dport= [ASSURED] mark= [zone=] use=
// The summary line conntrack prints on stderr ("... flow entries have been shown.") is accepted and skipped; the
// `[start=DATE] [stop=DATE]` of `-o ktimestamp` are skipped.
import {parseIp, type IpAddr} from '../../model/ip.js'
import type {ConntrackEntry, CtTuple} from '../../model/misc.js'
import {ParseError} from '../../model/source.js'

const HEAD = /^(?:(ipv4|ipv6)\s+(\d+)\s+)?([a-z][a-z0-9-]*)\s+(\d+)\s+(\d+)\s+(.*)$/
const SUMMARY = /^conntrack v[\d.]+ \(conntrack-tools\): \d+ flow entries have been shown\.$/

interface TupleBuild {
  src?: IpAddr
  dst?: IpAddr
  sport?: number
  dport?: number
  type?: number
  code?: number
  id?: number
}

export function parseConntrack(text: string, file: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = []
  const lines = text.split('\n')
  // an empty table prints nothing on stdout (the summary goes to stderr): empty is known-empty
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '')
    const lineNo = i + 1
    if (raw.trim() === '' || SUMMARY.test(raw.trim())) continue
    const m = HEAD.exec(raw.trim())
    if (!m) throw new ParseError(file, lineNo, 'a conntrack entry `PROTO NUM TIMEOUT [STATE] src=... dst=...`', raw)
    const l3 = (m[1] as 'ipv4' | 'ipv6' | undefined) ?? undefined
    const proto = m[3]!
    const protoNum = Number(m[4])
    const timeout = Number(m[5])
    // `-o ktimestamp` prints `[start=Sat Nov 21 17:23:30 2026]` (and `[stop=...]`): a date with spaces, not modelled
    const words = m[6]!.replace(/\s*\[(?:start|stop)=[^\]]*\]/g, '').split(/\s+/)
    let state: string | undefined
    const flags: string[] = []
    const tuples: TupleBuild[] = []
    let mark: number | undefined
    let zone: number | undefined
    let use: number | undefined
    for (const [k, w] of words.entries()) {
      if (/^\[[A-Z_]+\]$/.test(w)) {
        flags.push(w.slice(1, -1))
        continue
      }
      const eq = w.indexOf('=')
      if (eq < 0) {
        if (k === 0 && /^[A-Z_0-9]+$/.test(w)) {
          state = w
          continue
        }
        throw new ParseError(file, lineNo, 'key=value fields or [FLAGS] after the protocol and timeout', w)
      }
      const key = w.slice(0, eq)
      const val = w.slice(eq + 1)
      const int = (): number => {
        if (!/^\d+$/.test(val)) throw new ParseError(file, lineNo, `${key}= a number`, w)
        return Number(val)
      }
      switch (key) {
        case 'src': {
          const a = parseIp(val)
          if (!a) throw new ParseError(file, lineNo, 'src= an IP address', w)
          tuples.push({src: a})
          break
        }
        case 'dst': {
          const a = parseIp(val)
          const t = tuples.at(-1)
          if (!a || !t) throw new ParseError(file, lineNo, 'dst= an IP address after src=', w)
          t.dst = a
          break
        }
        case 'sport':
        case 'dport':
        case 'type':
        case 'code':
        case 'id': {
          // `id=` after mark=/use= is the entry id of `conntrack -L -o id`, not the ICMP id
          if (key === 'id' && (mark !== undefined || use !== undefined)) break
          const t = tuples.at(-1)
          if (!t) throw new ParseError(file, lineNo, `src= before ${key}=`, w)
          t[key] = int()
          break
        }
        case 'mark':
          mark = int()
          break
        case 'zone':
          zone = int()
          break
        case 'use':
          use = int()
          break
        default:
          // packets=, bytes=, helper=, secctx=, labels=, id=, delta-time=, zone-orig=, timestamps...: not modelled
          break
      }
    }
    if (tuples.length !== 2 || !tuples[0]!.dst || !tuples[1]!.dst) {
      throw new ParseError(file, lineNo, 'an original and a reply tuple (src=... dst=... twice)', raw)
    }
    const family = tuples[0]!.src!.family
    const tuple = (t: TupleBuild): CtTuple => ({
      src: t.src!,
      dst: t.dst!,
      ...(t.sport !== undefined ? {sport: t.sport} : {}),
      ...(t.dport !== undefined ? {dport: t.dport} : {}),
      ...(t.type !== undefined ? {type: t.type} : {}),
      ...(t.code !== undefined ? {code: t.code} : {}),
      ...(t.id !== undefined ? {id: t.id} : {}),
    })
    out.push({
      l3: l3 ?? (family === 4 ? 'ipv4' : 'ipv6'),
      proto,
      protoNum,
      timeout,
      ...(state !== undefined ? {state} : {}),
      orig: tuple(tuples[0]!),
      reply: tuple(tuples[1]!),
      flags,
      ...(mark !== undefined ? {mark} : {}),
      ...(zone !== undefined ? {zone} : {}),
      ...(use !== undefined ? {use} : {}),
      loc: {file, line: lineNo, text: raw},
    })
  }
  return out
}
