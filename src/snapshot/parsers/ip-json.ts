// `ip -j addr show`, `ip -j route show table all` and `ip -j rule show` (iproute2's JSON output) into the
// typed model. Key names follow iproute2's ip/ipaddress.c (print_addrinfo), ip/iproute.c (print_route) and
// ip/iprule.c (print_rule). A file may hold several arrays one after another (`ip -j route ...; ip -j -6
// route ...`); exact duplicates (the same route printed by both) are kept once.
import {makePrefix, parseIp, parsePrefix, type Family, type IpAddr, type Prefix} from '../../model/ip.js'
import type {IfAddr, Interface, IpRule, NextHop, Route, RouteType} from '../../model/net.js'
import {ParseError, type Loc} from '../../model/source.js'
import {jsonArrayItems, type JsonItem} from './json-items.js'

type Obj = Record<string, unknown>

function asObject(item: JsonItem, file: string, what: string): Obj {
  const v = item.value
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ParseError(file, item.line, `a JSON object for each ${what}`, JSON.stringify(v) ?? String(v))
  }
  return v as Obj
}

function str(o: Obj, key: string, file: string, line: number, required: true): string
function str(o: Obj, key: string, file: string, line: number, required?: false): string | undefined
function str(o: Obj, key: string, file: string, line: number, required = false): string | undefined {
  const v = o[key]
  if (v === undefined) {
    if (required) throw new ParseError(file, line, `a "${key}" field`, JSON.stringify(o).slice(0, 80))
    return undefined
  }
  if (typeof v !== 'string') throw new ParseError(file, line, `"${key}" to be a string`, JSON.stringify(v))
  return v
}

function num(o: Obj, key: string, file: string, line: number): number | undefined {
  const v = o[key]
  if (v === undefined) return undefined
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|\d+)$/.test(v)) return Number(v)
  throw new ParseError(file, line, `"${key}" to be a number`, JSON.stringify(v))
}

function ip(text: string, file: string, line: number, what: string): IpAddr {
  const a = parseIp(text)
  if (!a) throw new ParseError(file, line, `${what} (an IPv4 or IPv6 address)`, text)
  return a
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

function dedupe(items: JsonItem[]): JsonItem[] {
  const seen = new Set<string>()
  return items.filter((it) => {
    const k = JSON.stringify(it.value)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

// ---------------------------------------------------------------------------------------------- addr

const ADDR_FLAG_KEYS = ['secondary', 'temporary', 'nodad', 'optimistic', 'dadfailed', 'home', 'deprecated', 'tentative', 'permanent', 'dynamic', 'mngtmpaddr', 'noprefixroute', 'autojoin', 'stable-privacy']

export function parseIpAddr(text: string, file: string): Interface[] {
  const out: Interface[] = []
  const items = dedupe(jsonArrayItems(text, file, 'ip -j addr show'))
  // `ip -j link show` prints the same interfaces without "addr_info" (ip -j addr prints "addr_info": [] for an
  // interface with no address): read as ip -j addr, the host would have no address at all (vip-not-local...)
  const ifaces = items.filter((it) => it.value !== null && typeof it.value === 'object' && !Array.isArray(it.value) && 'ifname' in it.value)
  if (ifaces.length > 0 && !ifaces.some((it) => 'addr_info' in (it.value as object))) {
    throw new ParseError(file, ifaces[0]!.line, 'the output of `ip -j addr show` (each interface with its "addr_info")', 'interfaces without "addr_info" (`ip -j link show` lists no address)')
  }
  for (const item of items) {
    // iproute2 4.20 (Debian 10) printed an empty object before the interfaces, `[{},{"ifindex":1,...`: nothing to read
    if (item.value !== null && typeof item.value === 'object' && !Array.isArray(item.value) && Object.keys(item.value).length === 0) continue
    const o = asObject(item, file, 'interface')
    const line = item.line
    const name = str(o, 'ifname', file, line, true)
    const ifindex = num(o, 'ifindex', file, line)
    if (ifindex === undefined) throw new ParseError(file, line, 'an "ifindex" field', JSON.stringify(o).slice(0, 80))
    const flags = strings(o.flags)
    const mtu = num(o, 'mtu', file, line)
    const operstate = str(o, 'operstate', file, line)
    // iproute2 print_link_flags/print_linktype: a device whose iflink is 0 (tunl0, sit0 of the fallback
    // tunnels) prints `"link": null` in JSON and `@NONE` in text
    const link = o.link === null ? 'NONE' : str(o, 'link', file, line)
    const linkType = str(o, 'link_type', file, line)
    const mac = linkType === 'ether' ? str(o, 'address', file, line) : undefined
    const master = str(o, 'master', file, line)
    const linkNetnsid = num(o, 'link_netnsid', file, line)
    const info = o.linkinfo as Obj | undefined
    const kind = info && typeof info.info_kind === 'string' ? info.info_kind : undefined
    const addresses: IfAddr[] = []
    const ai = o.addr_info
    if (ai !== undefined && !Array.isArray(ai)) throw new ParseError(file, line, '"addr_info" to be an array', JSON.stringify(ai).slice(0, 60))
    for (const a of (ai ?? []) as unknown[]) {
      if (typeof a !== 'object' || a === null) throw new ParseError(file, line, 'an object in "addr_info"', JSON.stringify(a))
      const ao = a as Obj
      const fam = ao.family
      if (fam !== 'inet' && fam !== 'inet6') continue // mpls, link... carry no IP address
      const local = str(ao, 'local', file, line, true)
      const addr = ip(local, file, line, `the address of ${name}`)
      const family: Family = fam === 'inet' ? 4 : 6
      if (addr.family !== family) throw new ParseError(file, line, `an ${fam} address`, local)
      const prefixlen = num(ao, 'prefixlen', file, line) ?? (family === 4 ? 32 : 128)
      if (prefixlen > (family === 4 ? 32 : 128)) throw new ParseError(file, line, 'a prefix length', String(prefixlen))
      const scope = String(ao.scope ?? 'global')
      const peerText = str(ao, 'address', file, line)
      const peer = peerText !== undefined ? makePrefix(ip(peerText, file, line, 'the peer address'), prefixlen) : undefined
      const brdText = str(ao, 'broadcast', file, line)
      const broadcast = brdText !== undefined ? ip(brdText, file, line, 'the broadcast address') : undefined
      const label = str(ao, 'label', file, line)
      const aflags = ADDR_FLAG_KEYS.filter((k) => ao[k] === true || ao[k] === null)
      const words = [fam, peerText !== undefined ? `${local} peer ${peerText}/${prefixlen}` : `${local}/${prefixlen}`]
      if (brdText !== undefined) words.push('brd', brdText)
      words.push('scope', scope, ...aflags)
      if (label !== undefined) words.push(label)
      addresses.push({
        family,
        ip: addr,
        prefixlen,
        scope,
        ...(label !== undefined ? {label} : {}),
        ...(peer ? {peer} : {}),
        ...(broadcast ? {broadcast} : {}),
        ...(aflags.includes('secondary') ? {secondary: true} : {}),
        ...(aflags.length > 0 ? {flags: aflags.filter((f) => f !== 'secondary')} : {}),
        loc: {file, line, text: words.join(' ')},
      })
    }
    const head = `${ifindex}: ${name}${link ? '@' + link : ''}: <${flags.join(',')}>${mtu !== undefined ? ` mtu ${mtu}` : ''}${master ? ` master ${master}` : ''}${operstate ? ` state ${operstate}` : ''}`
    out.push({
      ifindex,
      name,
      flags,
      ...(mtu !== undefined ? {mtu} : {}),
      ...(operstate !== undefined ? {operstate} : {}),
      ...(link !== undefined ? {link} : {}),
      ...(linkType !== undefined ? {linkType} : {}),
      ...(kind !== undefined ? {kind} : {}),
      ...(mac !== undefined ? {mac} : {}),
      ...(master !== undefined ? {master} : {}),
      ...(linkNetnsid !== undefined ? {linkNetnsid} : {}),
      addresses,
      loc: {file, line, text: head},
    })
  }
  return out
}

// --------------------------------------------------------------------------------------------- route

const ROUTE_TYPES = new Set<RouteType>(['unicast', 'local', 'broadcast', 'multicast', 'anycast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat'])

/** keys of print_route that lvsdoctor reads (the rest go to notModelled when they change forwarding) */
const ROUTE_KEYS = new Set(['type', 'dst', 'gateway', 'via', 'dev', 'table', 'protocol', 'scope', 'prefsrc', 'metric', 'flags', 'nexthops', 'pref', 'tos', 'dsfield', 'uid', 'cache', 'expires', 'error', 'hoplimit', 'ttl-propagate'])

function gatewayOf(o: Obj, file: string, line: number): IpAddr | undefined {
  const gw = str(o, 'gateway', file, line)
  if (gw !== undefined) return ip(gw, file, line, 'the gateway')
  const via = o.via as Obj | undefined
  if (via && typeof via === 'object' && typeof via.host === 'string') return ip(via.host, file, line, 'the "via" gateway')
  return undefined
}

function dstPrefix(dst: string, family: Family, file: string, line: number): Prefix {
  if (dst === 'default') return {family, value: 0n, len: 0}
  const p = parsePrefix(dst)
  if (!p) throw new ParseError(file, line, 'a route destination (a prefix or "default")', dst)
  return p
}

/**
 * iproute2 4.17 to 5.0 (JSON output of ip route from 663c3cb2 until 07366177; Debian 10's 4.20) printed a route's
 * type with no key, `{"broadcast","dst":"127.0.0.0",...}`, which is not JSON: every `ip -j route show table all`
 * (the local table has local and broadcast routes) was refused. The word is the route's type, where 5.1 prints
 * `"type":"broadcast"`. Nothing is added to a line (line numbers stay).
 */
const BARE_ROUTE_TYPE = /\{(\s*)"(unicast|local|broadcast|anycast|multicast|blackhole|unreachable|prohibit|throw|nat|xresolve)"(\s*),/g

export function parseIpRoute(text: string, file: string): Route[] {
  const out: Route[] = []
  if (text.includes('",') && /\{\s*"[a-z]+"\s*,/.test(text)) text = text.replace(BARE_ROUTE_TYPE, '{$1"type":"$2"$3,')
  for (const item of dedupe(jsonArrayItems(text, file, 'ip -j route show table all'))) {
    const o = asObject(item, file, 'route')
    const line = item.line
    const dst = str(o, 'dst', file, line, true)
    const typeText = str(o, 'type', file, line) ?? 'unicast'
    if (!ROUTE_TYPES.has(typeText as RouteType)) {
      throw new ParseError(file, line, `a route type (${[...ROUTE_TYPES].join(', ')})`, typeText)
    }
    const type = typeText as RouteType
    const gateway = gatewayOf(o, file, line)
    const prefsrcText = str(o, 'prefsrc', file, line)
    const src = prefsrcText !== undefined ? ip(prefsrcText, file, line, 'the preferred source') : undefined
    const nexthops: NextHop[] = []
    if (o.nexthops !== undefined) {
      if (!Array.isArray(o.nexthops)) throw new ParseError(file, line, '"nexthops" to be an array', JSON.stringify(o.nexthops).slice(0, 60))
      for (const h of o.nexthops as unknown[]) {
        if (typeof h !== 'object' || h === null) throw new ParseError(file, line, 'an object in "nexthops"', JSON.stringify(h))
        const ho = h as Obj
        const hgw = gatewayOf(ho, file, line)
        const hdev = str(ho, 'dev', file, line)
        const weight = num(ho, 'weight', file, line)
        const hflags = strings(ho.flags)
        nexthops.push({...(hgw ? {gateway: hgw} : {}), ...(hdev !== undefined ? {dev: hdev} : {}), ...(weight !== undefined ? {weight} : {}), ...(hflags.length ? {flags: hflags} : {})})
      }
    }
    // the family: from an address when there is one; IPv6 routes always carry "pref" (RTA_PREF)
    let family: Family | undefined
    if (dst !== 'default') family = parsePrefix(dst)?.family
    family ??= gateway?.family ?? src?.family ?? nexthops.find((h) => h.gateway)?.gateway?.family
    family ??= o.pref !== undefined ? 6 : 4
    const prefix = dstPrefix(dst, family, file, line)
    const dev = str(o, 'dev', file, line)
    const table = o.table === undefined ? 'main' : String(o.table)
    const scope = o.scope === undefined ? (type === 'local' ? 'host' : 'global') : String(o.scope)
    const metric = num(o, 'metric', file, line) ?? 0
    const protocol = o.protocol === undefined ? undefined : String(o.protocol)
    const tosV = o.tos ?? o.dsfield
    const tos = tosV === undefined ? undefined : typeof tosV === 'number' ? tosV : /^(0x[0-9a-f]+|\d+)$/i.test(String(tosV)) ? Number(tosV) : undefined
    const flags = strings(o.flags)
    const pref = str(o, 'pref', file, line)
    const notModelled: string[] = []
    for (const k of Object.keys(o)) {
      if (ROUTE_KEYS.has(k)) continue
      const v = o[k]
      notModelled.push(typeof v === 'object' && v !== null ? k : `${k} ${String(v)}`)
    }
    if (tosV !== undefined && tos === undefined) notModelled.push(`tos ${String(tosV)}`)
    const unknownWords = notModelled.filter((w) => !w.startsWith('tos '))
    // ip prints source-specific routes (RTA_SRC) as "src": "prefix" beside "prefsrc"
    const words: string[] = []
    if (type !== 'unicast') words.push(type)
    words.push(dst)
    if (tosV !== undefined) words.push('tos', String(tosV))
    if (gateway) words.push('via', str(o, 'gateway', file, line) ?? String((o.via as Obj).host))
    if (dev !== undefined) words.push('dev', dev)
    if (table !== 'main') words.push('table', table)
    if (protocol !== undefined) words.push('proto', protocol)
    if (o.scope !== undefined) words.push('scope', scope)
    if (prefsrcText !== undefined) words.push('src', prefsrcText)
    if (o.metric !== undefined) words.push('metric', String(metric))
    words.push(...flags, ...unknownWords)
    if (pref !== undefined) words.push('pref', pref)
    for (const [k, h] of nexthops.entries()) {
      const ho = (o.nexthops as Obj[])[k]!
      words.push('nexthop')
      if (h.gateway) words.push('via', str(ho, 'gateway', file, line) ?? String((ho.via as Obj).host))
      if (h.dev !== undefined) words.push('dev', h.dev)
      if (h.weight !== undefined) words.push('weight', String(h.weight))
      words.push(...(h.flags ?? []))
    }
    const loc: Loc = {file, line, text: words.join(' ')}
    // `ip -j` prints one line: name the route, so that "ip-route.json:1 metrics" says which one
    const where = `route ${type !== 'unicast' ? `${type} ` : ''}${dst}${table !== 'main' ? ` table ${table}` : ''}`
    for (let k = 0; k < notModelled.length; k++) notModelled[k] = `${where}: ${notModelled[k]}`
    out.push({
      table,
      type,
      family,
      dst: prefix,
      ...(gateway ? {gateway} : {}),
      ...(dev !== undefined ? {dev} : {}),
      ...(nexthops.length ? {nexthops} : {}),
      ...(src ? {src} : {}),
      scope,
      metric,
      ...(protocol !== undefined ? {protocol} : {}),
      ...(tos !== undefined ? {tos} : {}),
      flags,
      ...(pref !== undefined ? {pref} : {}),
      ...(notModelled.length ? {notModelled} : {}),
      loc,
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------- rule

const IPPROTO: Record<string, number> = {icmp: 1, igmp: 2, ipip: 4, tcp: 6, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, icmpv6: 58, sctp: 132, udplite: 136, dccp: 33}
/** /etc/iproute2/rt_dsfield names ip may print instead of a number */
const DSFIELD: Record<string, number> = {default: 0, lowdelay: 0x10, throughput: 0x08, reliability: 0x04, 'af11': 0x28, 'af12': 0x30, 'af13': 0x38, 'af21': 0x48, 'af22': 0x50, 'af23': 0x58, 'af31': 0x68, 'af32': 0x70, 'af33': 0x78, 'af41': 0x88, 'af42': 0x90, 'af43': 0x98, 'cs1': 0x20, 'cs2': 0x40, 'cs3': 0x60, 'cs4': 0x80, 'cs5': 0xa0, 'cs6': 0xc0, 'cs7': 0xe0, 'ef': 0xb8}
const RULE_KEYS = new Set(['to_tbl', 'priority', 'not', 'src', 'srclen', 'dst', 'dstlen', 'tos', 'dsfield', 'fwmark', 'fwmask', 'iif', 'oif', 'ipproto', 'sport', 'sport_start', 'sport_end', 'dport', 'dport_start', 'dport_end', 'uid_start', 'uid_end', 'table', 'action', 'goto', 'nop', 'suppress_prefixlen', 'suppress_ifgroup', 'protocol', 'unresolved', 'iif_detached', 'oif_detached'])
const RULE_ACTIONS = new Set(['blackhole', 'unreachable', 'prohibit'])

function hex(o: Obj, key: string, file: string, line: number): number | undefined {
  const v = o[key]
  if (v === undefined) return undefined
  if (typeof v === 'number') return v >>> 0
  if (typeof v === 'string' && /^(0x[0-9a-fA-F]{1,8}|\d+)$/.test(v)) return Number(v) >>> 0
  throw new ParseError(file, line, `"${key}" to be a number (hex or decimal)`, JSON.stringify(v))
}

function range(o: Obj, base: string, file: string, line: number): readonly [number, number] | undefined {
  const single = num(o, base, file, line)
  if (single !== undefined) return [single, single]
  const a = num(o, `${base}_start`, file, line)
  const b = num(o, `${base}_end`, file, line)
  if (a === undefined && b === undefined) return undefined
  if (a === undefined || b === undefined) throw new ParseError(file, line, `both "${base}_start" and "${base}_end"`, JSON.stringify(o).slice(0, 80))
  return [a, b]
}

function selector(o: Obj, key: 'src' | 'dst', family: Family, file: string, line: number): Prefix | undefined {
  const v = str(o, key, file, line)
  if (v === undefined || v === 'all') return undefined
  const addr = ip(v, file, line, `the rule's "${key}"`)
  const len = num(o, `${key}len`, file, line) ?? (addr.family === 4 ? 32 : 128)
  if (len > (addr.family === 4 ? 32 : 128)) throw new ParseError(file, line, `"${key}len" a prefix length`, String(len))
  void family
  return makePrefix(addr, len)
}

export function parseIpRule(text: string, file: string): IpRule[] {
  const all = jsonArrayItems(text, file, 'ip -j rule show')
  // `ip -j rule show` lists one family; a file may append `ip -j -6 rule show`: an array whose rules name
  // an IPv6 address is IPv6 as a whole
  const arrayFamily = new Map<number, Family>()
  for (const it of all) {
    const o = it.value as Obj | null
    if (!o || typeof o !== 'object') continue
    for (const k of ['src', 'dst']) {
      const a = typeof o[k] === 'string' && o[k] !== 'all' ? parseIp(o[k] as string) : undefined
      if (a && !arrayFamily.has(it.array)) arrayFamily.set(it.array, a.family)
    }
  }
  // the same file appended twice repeats rules; IPv4 and IPv6 default rules print the same JSON, so the
  // family is part of what makes a rule a duplicate
  const seen = new Set<string>()
  const items = all.filter((it) => {
    const k = `${arrayFamily.get(it.array) ?? 4} ${JSON.stringify(it.value)}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
  const out: IpRule[] = []
  for (const item of items) {
    const o = asObject(item, file, 'rule')
    const line = item.line
    const priority = num(o, 'priority', file, line)
    if (priority === undefined) throw new ParseError(file, line, 'a "priority" field', JSON.stringify(o).slice(0, 80))
    const family: Family = arrayFamily.get(item.array) ?? 4
    const not = 'not' in o
    const from = selector(o, 'src', family, file, line)
    const to = selector(o, 'dst', family, file, line)
    const fwmark = hex(o, 'fwmark', file, line)
    const fwmask = fwmark !== undefined ? (hex(o, 'fwmask', file, line) ?? 0xffffffff) : hex(o, 'fwmask', file, line)
    const iif = str(o, 'iif', file, line)
    const oif = str(o, 'oif', file, line)
    const notModelled: string[] = []
    const tosV = o.tos ?? o.dsfield
    let tos: number | undefined
    if (tosV !== undefined) {
      const t = String(tosV)
      tos = /^(0x[0-9a-fA-F]+|\d+)$/.test(t) ? Number(t) : DSFIELD[t]
      if (tos === undefined) notModelled.push(`tos ${t}`)
    }
    let ipproto: number | undefined
    if (o.ipproto !== undefined) {
      const p = String(o.ipproto)
      ipproto = /^\d+$/.test(p) ? Number(p) : IPPROTO[p]
      if (ipproto === undefined) notModelled.push(`ipproto ${p}`)
    }
    const sport = range(o, 'sport', file, line)
    const dport = range(o, 'dport', file, line)
    const uidrange = range(o, 'uid', file, line)
    const table = o.table === undefined ? undefined : String(o.table)
    const gotoTarget = num(o, 'goto', file, line)
    let action: IpRule['action']
    // iproute2 4.17 to 5.0 named it "to_tbl" (`{"priority":0,"src":"all","to_tbl":"blackhole"}`; f5f8e969 renamed it)
    const act = str(o, 'action', file, line) ?? str(o, 'to_tbl', file, line)
    if (act !== undefined) {
      if (!RULE_ACTIONS.has(act)) throw new ParseError(file, line, 'a rule action (blackhole, unreachable, prohibit)', act)
      action = act as IpRule['action']
    } else if (gotoTarget !== undefined) action = 'goto'
    else if ('nop' in o) action = 'nop'
    else if (table !== undefined) action = 'lookup'
    else throw new ParseError(file, line, 'a rule action ("table", "goto", "nop" or "action")', JSON.stringify(o).slice(0, 80))
    const suppressPrefixlen = num(o, 'suppress_prefixlen', file, line)
    const suppressIfgroup = o.suppress_ifgroup === undefined ? undefined : Number(o.suppress_ifgroup)
    for (const k of Object.keys(o)) {
      if (RULE_KEYS.has(k)) continue
      const v = o[k]
      notModelled.push(v === null || typeof v === 'object' ? k : `${k} ${String(v)}`)
    }
    if (o.iif_detached !== undefined) notModelled.push('iif [detached]')
    if (o.oif_detached !== undefined) notModelled.push('oif [detached]')
    // the text as `ip rule show` prints it (ip/iprule.c print_rule)
    const w: string[] = [`${priority}:`]
    if (not) w.push('not')
    w.push('from', o.src === undefined || o.src === 'all' ? 'all' : fmtSel(o, 'src'))
    if (o.dst !== undefined) w.push('to', fmtSel(o, 'dst'))
    if (tosV !== undefined) w.push('tos', String(tosV))
    if (o.fwmark !== undefined) w.push('fwmark', o.fwmask !== undefined ? `${String(o.fwmark)}/${String(o.fwmask)}` : String(o.fwmark))
    if (iif !== undefined) w.push('iif', iif)
    if (oif !== undefined) w.push('oif', oif)
    for (const k of Object.keys(o)) if (!RULE_KEYS.has(k)) w.push(o[k] === null || typeof o[k] === 'object' ? k : `${k} ${String(o[k])}`)
    if (uidrange) w.push('uidrange', `${uidrange[0]}-${uidrange[1]}`)
    if (o.ipproto !== undefined) w.push('ipproto', String(o.ipproto))
    if (sport) w.push('sport', sport[0] === sport[1] ? String(sport[0]) : `${sport[0]}-${sport[1]}`)
    if (dport) w.push('dport', dport[0] === dport[1] ? String(dport[0]) : `${dport[0]}-${dport[1]}`)
    if (action === 'lookup') w.push('lookup', table!)
    else if (action === 'goto') w.push('goto', String(gotoTarget))
    else w.push(action)
    if (suppressPrefixlen !== undefined) w.push('suppress_prefixlength', String(suppressPrefixlen))
    if (suppressIfgroup !== undefined) w.push('suppress_ifgroup', String(suppressIfgroup))
    for (let k = 0; k < notModelled.length; k++) notModelled[k] = `rule ${priority}: ${notModelled[k]}`
    out.push({
      priority,
      family: from?.family ?? to?.family ?? family,
      not,
      ...(from ? {from} : {}),
      ...(to ? {to} : {}),
      ...(fwmark !== undefined ? {fwmark} : {}),
      ...(fwmask !== undefined ? {fwmask} : {}),
      ...(iif !== undefined ? {iif} : {}),
      ...(oif !== undefined ? {oif} : {}),
      ...(tos !== undefined ? {tos} : {}),
      ...(ipproto !== undefined ? {ipproto} : {}),
      ...(sport ? {sport} : {}),
      ...(dport ? {dport} : {}),
      ...(uidrange ? {uidrange} : {}),
      action,
      ...(table !== undefined ? {table} : {}),
      ...(gotoTarget !== undefined ? {goto: gotoTarget} : {}),
      ...(suppressPrefixlen !== undefined ? {suppressPrefixlen} : {}),
      ...(suppressIfgroup !== undefined ? {suppressIfgroup} : {}),
      ...(notModelled.length ? {notModelled} : {}),
      loc: {file, line, text: w.join(' ')},
    })
  }
  return out
}

function fmtSel(o: Obj, key: 'src' | 'dst'): string {
  const len = o[`${key}len`]
  return len === undefined ? String(o[key]) : `${String(o[key])}/${String(len)}`
}
