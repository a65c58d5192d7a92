// Typed IP addresses and prefixes. Values are bigint so that IPv4 and IPv6 share one code path;
// a Prefix is always normalised (host bits cleared), so equality is field equality.

export type Family = 4 | 6

export interface IpAddr {
  readonly family: Family
  readonly value: bigint
}

export interface Prefix {
  readonly family: Family
  readonly value: bigint
  readonly len: number
}

const BITS: Record<Family, number> = {4: 32, 6: 128}

export function bits(family: Family): number {
  return BITS[family]
}

/** The netmask of every prefix length, per family, computed once (a bigint per call was a hot allocation). */
function maskTable(total: number): readonly bigint[] {
  const out: bigint[] = [0n]
  for (let len = 1; len <= total; len++) out.push(((1n << BigInt(len)) - 1n) << BigInt(total - len))
  return out
}
const MASK4 = maskTable(32)
const MASK6 = maskTable(128)

function mask(family: Family, len: number): bigint {
  if (len <= 0) return 0n
  const m = (family === 4 ? MASK4 : MASK6)[len]
  if (m !== undefined) return m
  const total = BITS[family]
  return ((1n << BigInt(len)) - 1n) << BigInt(total - len)
}

/** Parses a dotted quad; returns undefined unless it is exactly four decimal octets. */
export function parseIpv4(text: string): IpAddr | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let v = 0n
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    v = (v << 8n) | BigInt(n)
  }
  return {family: 4, value: v}
}

/** Parses an IPv6 address (with :: compression and an optional trailing dotted quad). */
export function parseIpv6(text: string): IpAddr | undefined {
  let s = text
  const pct = s.indexOf('%')
  if (pct >= 0) s = s.slice(0, pct)
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined
  const lastColon = s.lastIndexOf(':')
  if (s.slice(lastColon + 1).includes('.')) {
    // a trailing dotted quad stands for the last two groups
    const v4 = parseIpv4(s.slice(lastColon + 1))
    if (!v4) return undefined
    s = s.slice(0, lastColon + 1) + (v4.value >> 16n).toString(16) + ':' + (v4.value & 0xffffn).toString(16)
  }
  const dbl = s.indexOf('::')
  if (dbl !== s.lastIndexOf('::')) return undefined
  const parseGroups = (part: string): bigint[] | undefined => {
    if (part === '') return []
    const out: bigint[] = []
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(BigInt('0x' + g))
    }
    return out
  }
  let groups: bigint[]
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl))
    const rest = parseGroups(s.slice(dbl + 2))
    if (!head || !rest) return undefined
    const fill = 8 - head.length - rest.length
    if (fill < 1) return undefined
    groups = [...head, ...Array<bigint>(fill).fill(0n), ...rest]
  } else {
    const all = parseGroups(s)
    if (!all) return undefined
    groups = all
    if (groups.length !== 8) return undefined
  }
  let v = 0n
  for (const g of groups) v = (v << 16n) | g
  return {family: 6, value: v}
}

export function parseIp(text: string): IpAddr | undefined {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text)
}

/**
 * Parses `A`, `A/len` or `A/dotted-mask` (iptables-save prints non-contiguous masks as dotted quads).
 * Non-contiguous masks are rejected (undefined) so that callers report them as not modelled.
 */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/')
  const addrText = slash >= 0 ? text.slice(0, slash) : text
  const addr = parseIp(addrText)
  if (!addr) return undefined
  let len = BITS[addr.family]
  if (slash >= 0) {
    const m = text.slice(slash + 1)
    if (/^\d{1,3}$/.test(m)) {
      len = Number(m)
      if (len > BITS[addr.family]) return undefined
    } else {
      const maskAddr = parseIp(m)
      if (!maskAddr || maskAddr.family !== addr.family) return undefined
      const l = contiguousLen(maskAddr)
      if (l === undefined) return undefined
      len = l
    }
  }
  return makePrefix(addr, len)
}

function contiguousLen(m: IpAddr): number | undefined {
  const total = BITS[m.family]
  for (let len = 0; len <= total; len++) if (mask(m.family, len) === m.value) return len
  return undefined
}

export function makePrefix(addr: IpAddr, len: number): Prefix {
  return {family: addr.family, value: addr.value & mask(addr.family, len), len}
}

export function hostPrefix(addr: IpAddr): Prefix {
  return {family: addr.family, value: addr.value, len: BITS[addr.family]}
}

export function prefixContains(p: Prefix, a: IpAddr): boolean {
  return p.family === a.family && (a.value & mask(p.family, p.len)) === p.value
}

/** True when every address of `inner` lies in `outer`. */
export function prefixCovers(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.len <= inner.len && (inner.value & mask(outer.family, outer.len)) === outer.value
}

export function prefixOverlaps(a: Prefix, b: Prefix): boolean {
  return prefixCovers(a, b) || prefixCovers(b, a)
}

export function ipEquals(a: IpAddr | undefined, b: IpAddr | undefined): boolean {
  return !!a && !!b && a.family === b.family && a.value === b.value
}

export function formatIp(a: IpAddr): string {
  if (a.family === 4) {
    const v = Number(a.value)
    return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
  }
  const groups: number[] = []
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn))
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':')
}

export function formatPrefix(p: Prefix): string {
  const base = formatIp(p)
  return p.len === BITS[p.family] ? base : `${base}/${p.len}`
}

export function isLoopback(a: IpAddr): boolean {
  return a.family === 4 ? a.value >> 24n === 127n : a.value === 1n
}

/** An IP with a port, as printed `1.2.3.4:80` or `[::1]:80`. */
export interface Endpoint {
  readonly ip: IpAddr
  readonly port: number
}

export function parseEndpoint(text: string): Endpoint | undefined {
  let host: string
  let port: string
  const m6 = /^\[([^\]]+)\]:(\d+)$/.exec(text)
  if (m6) {
    host = m6[1]!
    port = m6[2]!
  } else {
    const i = text.lastIndexOf(':')
    if (i < 0) return undefined
    host = text.slice(0, i)
    port = text.slice(i + 1)
    if (host.includes(':')) return undefined
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined
  const ip = parseIp(host)
  return ip ? {ip, port: Number(port)} : undefined
}

export function formatEndpoint(e: Endpoint): string {
  return e.ip.family === 6 ? `[${formatIp(e.ip)}]:${e.port}` : `${formatIp(e.ip)}:${e.port}`
}
