// `ipset save` (ipset-save.txt): the restore format of ipset(8), one command a line:
//   create NAME TYPE [family inet|inet6] [hashsize N] [maxelem N] [bucketsize N] [initval 0xN] [timeout N]
//          [netmask N] [markmask 0xN] [range FROM-TO|NET] [size N] [counters] [comment] [skbinfo] [forceadd]
//   add NAME ENTRY [timeout N] [packets N bytes N] [comment "TEXT"] [skbmark 0xV[/0xM]] [skbprio A:B]
//       [skbqueue N] [nomatch] [wildcard]
// ENTRY is the set type's dimensions joined by commas: an address (hash:ip also a range FROM-TO or a CIDR, which
// ipset expands), a network ADDR/LEN, a port `[PROTO:]PORT[-PORT]` (tcp when no protocol is given; icmp and
// ipv6-icmp by name or TYPE/CODE; other protocols `NAME:0`), a mark, an interface (`physdev:NAME` for bridge ports),
// a MAC address, or list:set's member set. `ipset save` prints single addresses and ports; ranges and CIDRs are
// accepted as `ipset restore` does. Blank lines and `#` comments are skipped (ipset restore skips them too).
//
// Pure: text in, model out. Valid syntax lvsdoctor does not know (a newer set type, an unknown option) is kept
// and listed under notModelled; malformed input throws ParseError with the file, the line and what was expected.
import {formatIp, makePrefix, parseIp, type Family, type IpAddr, type Prefix} from '../../model/ip.js'
import {IPSET_TYPES, type IpSet, type IpsetDim, type IpsetEntry, type IpsetPart, type IpsetSnapshot} from '../../model/ipset.js'
import {ParseError, type Loc, type NotModelled} from '../../model/source.js'

/** Protocol names as getprotobyname knows them (/etc/protocols, netbase): what ipset prints before `:PORT`. */
const PROTOCOLS: Readonly<Record<string, number>> = {
  ip: 0, hopopt: 0, icmp: 1, igmp: 2, ggp: 3, ipencap: 4, st: 5, tcp: 6, egp: 8, igp: 9, pup: 12, udp: 17, hmp: 20,
  'xns-idp': 22, rdp: 27, 'iso-tp4': 29, dccp: 33, xtp: 36, ddp: 37, 'idpr-cmtp': 38, ipv6: 41, 'ipv6-route': 43,
  'ipv6-frag': 44, idrp: 45, rsvp: 46, gre: 47, esp: 50, ah: 51, skip: 57, 'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59,
  'ipv6-opts': 60, rspf: 73, vmtp: 81, eigrp: 88, ospf: 89, 'ax.25': 93, ipip: 94, etherip: 97, encap: 98, pim: 103,
  ipcomp: 108, vrrp: 112, l2tp: 115, isis: 124, sctp: 132, fc: 133, 'mobility-header': 135, udplite: 136,
  'mpls-in-ip': 137, manet: 138, hip: 139, shim6: 140, wesp: 141, rohc: 142, ethernet: 143,
}

/** The protocols whose port dimension is a port (ip_set_getport.c get_port); icmp/icmpv6 use type and code. */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 132, 136])

/** ICMP type/code names ipset prints (checked against ipset 7.17 in a namespace: scripts/fixtures/ipset-fixtures.sh). */
const ICMP_NAMES: Readonly<Record<string, readonly [number, number]>> = {
  'echo-reply': [0, 0], 'network-unreachable': [3, 0], 'host-unreachable': [3, 1], 'protocol-unreachable': [3, 2],
  'port-unreachable': [3, 3], 'fragmentation-needed': [3, 4], 'source-route-failed': [3, 5], 'network-unknown': [3, 6],
  'host-unknown': [3, 7], 'network-prohibited': [3, 9], 'host-prohibited': [3, 10], 'TOS-network-unreachable': [3, 11],
  'TOS-host-unreachable': [3, 12], 'communication-prohibited': [3, 13], 'host-precedence-violation': [3, 14],
  'precedence-cutoff': [3, 15], 'source-quench': [4, 0], 'network-redirect': [5, 0], 'host-redirect': [5, 1],
  'TOS-network-redirect': [5, 2], 'TOS-host-redirect': [5, 3], 'echo-request': [8, 0], 'router-advertisement': [9, 0],
  'router-solicitation': [10, 0], 'ttl-zero-during-transit': [11, 0], 'ttl-zero-during-reassembly': [11, 1],
  'ip-header-bad': [12, 0], 'required-option-missing': [12, 1], 'timestamp-request': [13, 0], 'timestamp-reply': [14, 0],
  'address-mask-request': [17, 0], 'address-mask-reply': [18, 0],
  // aliases ipset accepts on input
  ping: [8, 0], pong: [0, 0],
}

const ICMP6_NAMES: Readonly<Record<string, readonly [number, number]>> = {
  'no-route': [1, 0], 'communication-prohibited': [1, 1], 'address-unreachable': [1, 3], 'port-unreachable': [1, 4],
  'packet-too-big': [2, 0], 'ttl-zero-during-transit': [3, 0], 'ttl-zero-during-reassembly': [3, 1], 'bad-header': [4, 0],
  'unknown-header-type': [4, 1], 'unknown-option': [4, 2], 'echo-request': [128, 0], ping: [128, 0], 'echo-reply': [129, 0],
  pong: [129, 0], 'router-solicitation': [133, 0], 'router-advertisement': [134, 0], 'neighbour-solicitation': [135, 0],
  'neighbor-solicitation': [135, 0], 'neighbour-advertisement': [136, 0], 'neighbor-advertisement': [136, 0], redirect: [137, 0],
}

/** create options that take a value, and those that do not */
const CREATE_VALUE_OPTS = new Set(['family', 'hashsize', 'maxelem', 'bucketsize', 'initval', 'timeout', 'netmask', 'markmask', 'range', 'size', 'probes', 'resize', 'bitmask'])
const CREATE_FLAG_OPTS = new Set(['counters', 'comment', 'skbinfo', 'forceadd'])

const NAME = /^[^\s]{1,31}$/
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i

/** Splits a line into words; a double-quoted word (comment "...") is one word without its quotes. */
function words(line: string, file: string, lineNo: number): string[] | undefined {
  const out: string[] = []
  let i = 0
  const n = line.length
  while (i < n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++
    if (i >= n) break
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1)
      if (end < 0) throw new ParseError(file, lineNo, 'a closing double quote', line.slice(i))
      out.push(line.slice(i + 1, end))
      i = end + 1
      continue
    }
    let j = i
    while (j < n && line[j] !== ' ' && line[j] !== '\t') j++
    out.push(line.slice(i, j))
    i = j
  }
  return out
}

function uint(v: string | undefined, what: string, file: string, line: number, max = 0xffffffff): number {
  if (v === undefined || !/^(\d+|0x[0-9a-f]+)$/i.test(v) || Number(v) > max) throw new ParseError(file, line, what, v)
  return Number(v)
}

/** The prefixes covering the addresses from..to (what ipset adds for a range in a hash:net set). */
export function rangeToPrefixes(from: IpAddr, to: IpAddr): Prefix[] {
  const total = from.family === 4 ? 32 : 128
  const out: Prefix[] = []
  let cur = from.value
  while (cur <= to.value) {
    let len = total
    // the shortest prefix that starts at cur and ends at or before `to`
    while (len > 0) {
      const size = 1n << BigInt(total - len + 1)
      if (cur % size !== 0n || cur + size - 1n > to.value) break
      len--
    }
    out.push(makePrefix({family: from.family, value: cur}, len))
    cur += 1n << BigInt(total - len)
  }
  return out
}

interface Ctx {
  readonly file: string
  readonly line: number
  readonly raw: string
  readonly set: {readonly type: string; readonly family?: Family; readonly netmask?: number}
}

function addrOf(text: string, c: Ctx, family: Family | undefined): IpAddr {
  const a = parseIp(text)
  if (!a || (family !== undefined && a.family !== family)) throw new ParseError(c.file, c.line, `an IPv${family ?? 4} address in the entry of ${c.set.type}`, text)
  return a
}

/** An address dimension: ADDR, FROM-TO or ADDR/LEN (the last two expand to every address, as ipset does). */
function ipPart(text: string, c: Ctx): IpsetPart {
  const fam = c.set.family
  const dash = text.indexOf('-')
  if (dash > 0) {
    const from = addrOf(text.slice(0, dash), c, fam)
    const to = addrOf(text.slice(dash + 1), c, fam)
    if (to.value < from.value) throw new ParseError(c.file, c.line, 'a range FROM-TO with FROM <= TO', text)
    return maskIp({kind: 'ip', from, to}, c.set.netmask)
  }
  const slash = text.indexOf('/')
  if (slash > 0) {
    const p = netOf(text, c)
    const total = p.family === 4 ? 32 : 128
    return maskIp({kind: 'ip', from: {family: p.family, value: p.value}, to: {family: p.family, value: p.value + (1n << BigInt(total - p.len)) - 1n}}, c.set.netmask)
  }
  const a = addrOf(text, c, fam)
  return maskIp({kind: 'ip', from: a, to: a}, c.set.netmask)
}

function maskIp(p: Extract<IpsetPart, {kind: 'ip'}>, netmask: number | undefined): Extract<IpsetPart, {kind: 'ip'}> {
  if (netmask === undefined) return p
  const total = p.from.family === 4 ? 32 : 128
  if (netmask >= total) return p
  const from = makePrefix(p.from, netmask)
  const to = makePrefix(p.to, netmask)
  return {kind: 'ip', from: {family: from.family, value: from.value}, to: {family: to.family, value: to.value}}
}

function netOf(text: string, c: Ctx): Prefix {
  const slash = text.indexOf('/')
  const a = addrOf(slash < 0 ? text : text.slice(0, slash), c, c.set.family)
  const total = a.family === 4 ? 32 : 128
  let len = total
  if (slash >= 0) {
    const l = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(l) || Number(l) > total || Number(l) === 0) throw new ParseError(c.file, c.line, `a prefix length 1..${total} in the entry of ${c.set.type}`, text)
    len = Number(l)
  }
  return makePrefix(a, len)
}

/** `[PROTO:]PORT[-PORT]`, `icmp:NAME|TYPE/CODE`, `ipv6-icmp:...`, `PROTO:0`. */
function portPart(text: string, c: Ctx, notModelled: NotModelled[]): IpsetPart {
  const colon = text.indexOf(':')
  const protoName = colon < 0 ? 'tcp' : text.slice(0, colon)
  const rest = colon < 0 ? text : text.slice(colon + 1)
  let proto: number | undefined = /^\d+$/.test(protoName) ? Number(protoName) : PROTOCOLS[protoName.toLowerCase()]
  if (proto !== undefined && proto > 255) throw new ParseError(c.file, c.line, 'a protocol number 0..255', text)
  if (proto === 1 || proto === 58) {
    const names = proto === 1 ? ICMP_NAMES : ICMP6_NAMES
    const named = names[rest]
    const m = /^(\d{1,3})\/(\d{1,3})$/.exec(rest)
    const tc = named ?? (m && Number(m[1]) <= 255 && Number(m[2]) <= 255 ? [Number(m[1]), Number(m[2])] as const : undefined)
    if (!tc) throw new ParseError(c.file, c.line, `an ICMP type name or TYPE/CODE after ${protoName}:`, text)
    const v = (tc[0] << 8) | tc[1]
    return {kind: 'port', proto, protoName, from: v, to: v}
  }
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(rest)
  if (!m || Number(m[1]) > 65535 || (m[2] !== undefined && Number(m[2]) > 65535)) {
    throw new ParseError(c.file, c.line, `a port [PROTO:]PORT[-PORT] in the entry of ${c.set.type}`, text)
  }
  let from = Number(m[1])
  let to = m[2] === undefined ? from : Number(m[2])
  if (to < from) [from, to] = [to, from]
  if (c.set.type === 'bitmap:port') {
    // bitmap:port keeps no protocol: ipset save prints the port alone, and the kernel tests TCP and UDP packets
  } else if (proto === undefined) {
    notModelled.push({file: c.file, line: c.line, what: `ipset entry part ${text}: protocol ${protoName} is not known (matches on this entry stay undecided)`})
  } else if (!PORT_PROTOCOLS.has(proto) && (from !== 0 || to !== 0)) {
    // ipset stores port 0 for a protocol without ports (hash_ipport4_uadt): the entry matches every packet of it
    from = 0
    to = 0
  }
  return {kind: 'port', proto, protoName, from, to}
}

function entryParts(entry: string, dims: readonly string[], c: Ctx, notModelled: NotModelled[]): IpsetPart[] {
  // a MAC address has colons, never commas: split on commas
  const fields = entry.split(',')
  // bitmap:ip,mac: an entry may leave the MAC out (the kernel fills it in from the first packet)
  if (c.set.type === 'bitmap:ip,mac' && fields.length === 1) dims = dims.slice(0, 1)
  if (fields.length !== dims.length || fields.some((f) => f === '')) {
    throw new ParseError(c.file, c.line, `an entry of ${dims.length} comma-separated part${dims.length === 1 ? '' : 's'} (${dims.join(',')}) for ${c.set.type}`, entry)
  }
  const parts: IpsetPart[] = []
  for (let k = 0; k < dims.length; k++) {
    const f = fields[k]!
    switch (dims[k]) {
      case 'ip':
        parts.push(ipPart(f, c))
        break
      case 'net': {
        // hash:net accepts FROM-TO too (ipset turns it into prefixes): the caller splits such an entry
        parts.push({kind: 'net', prefix: netOf(f, c)})
        break
      }
      case 'port':
        parts.push(portPart(f, c, notModelled))
        break
      case 'mark':
        parts.push({kind: 'mark', value: uint(f, 'a mark (number or 0xHEX)', c.file, c.line)})
        break
      case 'iface': {
        const phys = f.startsWith('physdev:')
        const name = phys ? f.slice(8) : f
        if (!/^[^\s/]{1,15}$/.test(name)) throw new ParseError(c.file, c.line, 'an interface name (at most 15 characters)', f)
        parts.push({kind: 'iface', name, physdev: phys})
        break
      }
      case 'mac':
        if (!MAC.test(f)) throw new ParseError(c.file, c.line, 'a MAC address xx:xx:xx:xx:xx:xx', f)
        parts.push({kind: 'mac', mac: f.toLowerCase()})
        break
      case 'set':
        if (!NAME.test(f)) throw new ParseError(c.file, c.line, 'a set name', f)
        parts.push({kind: 'set', name: f})
        break
    }
  }
  return parts
}

interface SetBuild {
  name: string
  type: string
  dims?: readonly IpsetDim[]
  family?: Family
  loc: Loc
  options: Map<string, string>
  netmask?: number
  markmask?: number
  range?: {from: IpAddr; to: IpAddr}
  portRange?: [number, number]
  timeout?: number
  entries: IpsetEntry[]
}

export function parseIpsetSave(text: string, file: string): IpsetSnapshot {
  const sets = new Map<string, SetBuild>()
  const notModelled: NotModelled[] = []
  let entryCount = 0
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '')
    const lineNo = i + 1
    const t = raw.trim()
    if (t === '' || t.startsWith('#')) continue
    const w = words(t, file, lineNo)!
    const cmd = w[0]
    if (cmd === 'create' || cmd === '-N' || cmd === 'n') {
      const name = w[1]
      const type = w[2]
      if (name === undefined || !NAME.test(name)) throw new ParseError(file, lineNo, 'create NAME TYPE with a set name of at most 31 characters', raw)
      if (type === undefined) throw new ParseError(file, lineNo, `a set type after create ${name} (hash:ip, hash:net, bitmap:port, list:set...)`, raw)
      if (sets.has(name)) throw new ParseError(file, lineNo, `one create line per set (${name} was created on line ${sets.get(name)!.loc.line})`, raw)
      const dims = IPSET_TYPES[type]
      if (!dims) {
        if (!/^(hash|bitmap|list):[a-z,]+$/.test(type)) throw new ParseError(file, lineNo, 'a set type such as hash:ip, hash:net,port, bitmap:port or list:set', type)
        notModelled.push({file, line: lineNo, what: `ipset type ${type} (set ${name}): its matches stay undecided`})
      }
      const s: SetBuild = {name, type, ...(dims ? {dims} : {}), loc: {file, line: lineNo, text: raw}, options: new Map(), entries: []}
      if (type.startsWith('hash:') && type !== 'hash:mac') s.family = 4
      for (let k = 3; k < w.length; k++) {
        const o = w[k]!
        if (CREATE_FLAG_OPTS.has(o)) {
          s.options.set(o, '')
          continue
        }
        if (!CREATE_VALUE_OPTS.has(o)) {
          notModelled.push({file, line: lineNo, what: `ipset create option ${w.slice(k).join(' ')} (set ${name})`})
          break
        }
        const v = w[++k]
        if (v === undefined) throw new ParseError(file, lineNo, `a value after ${o}`, raw)
        s.options.set(o, v)
        switch (o) {
          case 'family':
            if (v !== 'inet' && v !== 'inet6') throw new ParseError(file, lineNo, 'family inet or inet6', v)
            s.family = v === 'inet' ? 4 : 6
            break
          case 'timeout':
            s.timeout = uint(v, 'a timeout in seconds', file, lineNo)
            break
          case 'netmask':
            s.netmask = uint(v, 'a netmask prefix length', file, lineNo, 128)
            break
          case 'markmask':
            s.markmask = uint(v, 'a markmask (number or 0xHEX)', file, lineNo)
            break
          case 'bitmask':
            notModelled.push({file, line: lineNo, what: `ipset create option bitmask ${v} (set ${name}): entries are matched as if unmasked`})
            break
          case 'range': {
            if (type === 'bitmap:port') {
              const m = /^(\d{1,5})-(\d{1,5})$/.exec(v)
              if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535) throw new ParseError(file, lineNo, 'range FROMPORT-TOPORT', v)
              s.portRange = [Math.min(Number(m[1]), Number(m[2])), Math.max(Number(m[1]), Number(m[2]))]
            } else {
              const c: Ctx = {file, line: lineNo, raw, set: {type, family: 4}}
              const p = ipPart(v, c) as Extract<IpsetPart, {kind: 'ip'}>
              s.range = {from: p.from, to: p.to}
              s.family = 4
            }
            break
          }
          default:
            uint(v, `a number after ${o}`, file, lineNo)
        }
      }
      if (type.startsWith('bitmap:ip')) s.family = 4
      sets.set(name, s)
      continue
    }
    if (cmd === 'add' || cmd === '-A' || cmd === 'a') {
      const name = w[1]
      const entry = w[2]
      if (name === undefined || entry === undefined) throw new ParseError(file, lineNo, 'add NAME ENTRY', raw)
      const s = sets.get(name)
      if (!s) throw new ParseError(file, lineNo, `a set created by an earlier create line (no set ${name})`, raw)
      entryCount++
      const loc: Loc = {file, line: lineNo, text: raw}
      const c: Ctx = {file, line: lineNo, raw, set: s}
      const e: {-readonly [K in keyof IpsetEntry]: IpsetEntry[K]} = {loc, text: entry, parts: [], nomatch: false, wildcard: false}
      const unknown: string[] = []
      for (let k = 3; k < w.length; k++) {
        const o = w[k]!
        switch (o) {
          case 'nomatch':
            e.nomatch = true
            break
          case 'wildcard':
            e.wildcard = true
            break
          case 'timeout':
            e.timeout = uint(w[++k], 'a timeout in seconds after timeout', file, lineNo)
            break
          case 'packets':
            e.packets = uint(w[++k], 'a number after packets', file, lineNo, Number.MAX_SAFE_INTEGER)
            break
          case 'bytes':
            e.bytes = uint(w[++k], 'a number after bytes', file, lineNo, Number.MAX_SAFE_INTEGER)
            break
          case 'comment': {
            const v = w[++k]
            if (v === undefined) throw new ParseError(file, lineNo, 'a quoted text after comment', raw)
            e.comment = v
            break
          }
          case 'skbmark': {
            const v = w[++k]
            if (v === undefined || !/^(0x[0-9a-f]+|\d+)(\/(0x[0-9a-f]+|\d+))?$/i.test(v)) throw new ParseError(file, lineNo, 'skbmark VALUE[/MASK]', v)
            e.skbmark = v
            break
          }
          case 'skbprio': {
            const v = w[++k]
            if (v === undefined || !/^[0-9a-f]+:[0-9a-f]+$/i.test(v)) throw new ParseError(file, lineNo, 'skbprio MAJOR:MINOR', v)
            e.skbprio = v
            break
          }
          case 'skbqueue':
            e.skbqueue = uint(w[++k], 'a queue number after skbqueue', file, lineNo, 0xffff)
            break
          case 'before':
          case 'after': {
            // list:set add ... before|after MEMBER: the order is already the order of the add lines here
            const v = w[++k]
            if (v === undefined) throw new ParseError(file, lineNo, `a set name after ${o}`, raw)
            notModelled.push({file, line: lineNo, what: `ipset add ... ${o} ${v}: the member is taken in line order`})
            break
          }
          default:
            unknown.push(w.slice(k).join(' '))
            notModelled.push({file, line: lineNo, what: `ipset entry option ${w.slice(k).join(' ')} (set ${name})`})
            k = w.length
        }
      }
      if (unknown.length) e.unknownOptions = unknown
      if (!s.dims) {
        s.entries.push(e)
        continue
      }
      // hash:*net* accepts FROM-TO for a net dimension: ipset adds the prefixes covering it, one entry each
      const fields = entry.split(',')
      const rangeAt = s.dims.findIndex((d, k) => d === 'net' && fields[k]?.includes('-'))
      if (rangeAt >= 0) {
        const f = fields[rangeAt]!
        const dash = f.indexOf('-')
        const from = addrOf(f.slice(0, dash), c, s.family)
        const to = addrOf(f.slice(dash + 1), c, s.family)
        if (to.value < from.value) throw new ParseError(file, lineNo, 'a range FROM-TO with FROM <= TO', f)
        for (const p of rangeToPrefixes(from, to)) {
          const parts = entryParts([...fields.slice(0, rangeAt), `${formatIp({family: p.family, value: p.value})}/${p.len}`, ...fields.slice(rangeAt + 1)].join(','), s.dims, c, notModelled)
          s.entries.push({...e, parts})
        }
        continue
      }
      e.parts = entryParts(entry, s.dims, c, notModelled)
      checkEntry(s, e.parts, c, entry)
      s.entries.push(e)
      continue
    }
    throw new ParseError(file, lineNo, 'an ipset save line: create NAME TYPE ... or add NAME ENTRY ...', raw)
  }
  const out = new Map<string, IpSet>()
  for (const [k, s] of sets) out.set(k, s as IpSet)
  return {file, sets: out, notModelled, entryCount}
}

/** What ipset itself refuses: an address outside a bitmap's range, a port outside bitmap:port's range. */
function checkEntry(s: SetBuild, parts: readonly IpsetPart[], c: Ctx, entry: string): void {
  for (const p of parts) {
    if (p.kind === 'ip' && s.range && (p.from.value < s.range.from.value || p.to.value > s.range.to.value)) {
      throw new ParseError(c.file, c.line, `an address inside the range of ${s.name} (${formatIp(s.range.from)}-${formatIp(s.range.to)})`, entry)
    }
    if (p.kind === 'port' && s.portRange && (p.from < s.portRange[0] || p.to > s.portRange[1])) {
      throw new ParseError(c.file, c.line, `a port inside the range of ${s.name} (${s.portRange[0]}-${s.portRange[1]})`, entry)
    }
  }
}

/** Whether a text looks like `ipset save` output (bare-file detection): its first command is create/add. */
export function looksLikeIpsetSave(text: string): boolean {
  for (const line of text.split('\n', 50)) {
    const t = line.trim()
    if (t === '' || t.startsWith('#')) continue
    return /^create\s+\S+\s+(hash|bitmap|list):[a-z,]+(\s|$)/.test(t)
  }
  return false
}
