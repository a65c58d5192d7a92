// keepalived.conf: the parts that describe IPVS (virtual_server / virtual_server_group / real_server) and the
// VRRP addresses (vrrp_instance virtual_ipaddress), plus global_defs vrrp_strict. Keywords and defaults follow
// keepalived's keepalived/check/check_parser.c (install_keyword list) and check_data.c (validate_check_config):
// no lb_kind/lvs_method → NAT; no lb_algo → wlc; no protocol on an address service → UDP (keepalived warns and
// sets it explicitly, the kernel would default to UDP too); `persistence_timeout` without a value, or a
// `persistence_granularity` alone → 360 s (IPVS_SVC_PERSISTENT_TIMEOUT).
// What keepalived rejects with a config error and then runs without (checked with `keepalived -t`, v2.2.7) is
// modelled as keepalived runs it and listed as not modelled with what keepalived does: a persistence_timeout
// outside 1..2678400 (`persistence_timeout 0`, common in real configs, is no persistence and not listed), an unknown scheduler (wlc), an unknown or
// lower-case lb_kind (NAT; the FNAT of the alibaba/dpvs forks leaves the service out), an unknown protocol, a
// virtual_server or real_server whose address is not numeric (the block is skipped), a virtual_server with no
// real_server (ignored by keepalived; kept here without destinations, so that it is reported), a duplicated real_server (the second is removed), `ops` on a TCP/SCTP service (reset),
// port 0 without persistence (keepalived makes the service persistent, 360 s). A virtual_server's `weight` is
// the default weight of its real servers (validate_check_config).
// Health-check blocks (HTTP_GET, TCP_CHECK, MISC_CHECK...) are skipped; `include` is recorded, not followed;
// anything else keepalived accepts but lvsdoctor does not interpret is listed as not modelled.
import {parseIp, type Family, type IpAddr} from '../../model/ip.js'
import type {HealthCheck, IpvsDest, IpvsMethod, IpvsProto, IpvsService} from '../../model/ipvs.js'
import type {KeepalivedConfig} from '../../model/misc.js'
import {ParseError, type Loc, type NotModelled} from '../../model/source.js'

interface Node {
  readonly words: string[]
  readonly line: number
  readonly text: string
  children?: Node[]
}

/** Splits the file into statements and `{ ... }` blocks. */
/**
 * keepalived's parameter substitution (keepalived.conf(5) "Parameter substitution"): `$NAME=VALUE` defines (a
 * value ending in `\\` goes on over the next lines), `${NAME}` anywhere and `$NAME` before whitespace are replaced
 * by the value current at that line, again until none is left; an undefined parameter stays as written. Returns
 * the lines to parse, each with the line of the file it comes from (a multi-line value: the line using it).
 */
function substitute(text: string): {raw: string; line: number}[] {
  const src = text.split('\n').map((l) => l.replace(/\r$/, ''))
  if (!src.some((l) => /^\s*\$[A-Za-z_]\w*=/.test(l))) return src.map((raw, i) => ({raw, line: i + 1}))
  const params = new Map<string, string[]>()
  const out: {raw: string; line: number}[] = []
  const replace = (l: string): string => {
    for (let n = 0; n < 16; n++) {
      const next = l
        .replace(/\$\{([A-Za-z_]\w*)\}/g, (m, k: string) => (params.has(k) ? params.get(k)!.join(' ') : m))
        .replace(/\$([A-Za-z_]\w*)(?=\s|$)/g, (m, k: string) => (params.has(k) && params.get(k)!.length === 1 ? params.get(k)![0]! : m))
      if (next === l) break
      l = next
    }
    return l
  }
  const walk = (lines: readonly string[], at: (k: number) => number, depth: number): void => {
    for (let k = 0; k < lines.length; k++) {
      const def = /^\s*\$([A-Za-z_]\w*)=(.*)$/.exec(lines[k]!)
      if (def) {
        const value: string[] = []
        let v = def[2]!
        while (/\\\s*$/.test(v) && k + 1 < lines.length) {
          value.push(v.replace(/\\\s*$/, ''))
          v = lines[++k]!
        }
        value.push(v.replace(/\\\s*$/, ''))
        params.set(def[1]!, value.length > 1 ? value.filter((x) => x.trim() !== '') : [value[0]!.trim()])
        out.push({raw: '', line: at(k)})
        continue
      }
      // a line that is only a multi-line parameter: its lines, parsed in place
      const only = /^\s*\$\{?([A-Za-z_]\w*)\}?\s*$/.exec(lines[k]!)
      const multi = only ? params.get(only[1]!) : undefined
      if (multi && multi.length > 1 && depth < 8) {
        const line = at(k)
        walk(multi, () => line, depth + 1)
        continue
      }
      out.push({raw: replace(lines[k]!), line: at(k)})
    }
  }
  walk(src, (k) => k + 1, 0)
  return out
}

function tree(text: string, file: string): Node[] {
  const root: Node[] = []
  const stack: {nodes: Node[]; opened: number}[] = [{nodes: root, opened: 0}]
  const lines = substitute(text)
  for (let i = 0; i < lines.length; i++) {
    const {raw, line: lineNo} = lines[i]!
    let cur: Node | undefined
    const tokens = tokenize(raw, file, lineNo)
    for (const tok of tokens) {
      const top = stack.at(-1)!
      if (tok === '{') {
        const owner = cur ?? top.nodes.at(-1)
        if (!owner || owner.children) throw new ParseError(file, lineNo, 'a keyword before "{"', raw.trim())
        owner.children = []
        stack.push({nodes: owner.children, opened: owner.line})
        cur = undefined
        continue
      }
      if (tok === '}') {
        if (stack.length === 1) throw new ParseError(file, lineNo, 'a "}" only to close an open block', raw.trim())
        stack.pop()
        cur = undefined
        continue
      }
      if (!cur) {
        cur = {words: [], line: lineNo, text: raw}
        top.nodes.push(cur)
      }
      cur.words.push(tok)
    }
  }
  if (stack.length > 1) {
    let last = lines.length
    while (last > 1 && lines[last - 1]!.raw.trim() === '') last--
    throw new ParseError(file, lines[last - 1]?.line ?? 1, `a "}" closing the block opened on line ${stack.at(-1)!.opened} (the file is truncated)`, 'the end of the file')
  }
  return root
}

function tokenize(raw: string, file: string, line: number): string[] {
  const out: string[] = []
  let i = 0
  while (i < raw.length) {
    const c = raw[i]!
    if (c === ' ' || c === '\t') {
      i++
      continue
    }
    if (c === '#' || c === '!') break
    if (c === '{' || c === '}') {
      out.push(c)
      i++
      continue
    }
    if (c === '"') {
      const end = raw.indexOf('"', i + 1)
      if (end < 0) throw new ParseError(file, line, 'a closing quote (")', raw.trim())
      out.push(raw.slice(i + 1, end))
      i = end + 1
      continue
    }
    let j = i
    while (j < raw.length && !' \t{}"'.includes(raw[j]!)) j++
    out.push(raw.slice(i, j))
    i = j
  }
  return out
}

/** checkers that connect to a port (keepalived's check_*.c): the others ping, run a script or read a file */
const PORT_CHECKERS = new Set(['HTTP_GET', 'SSL_GET', 'TCP_CHECK', 'SMTP_CHECK', 'DNS_CHECK', 'UDP_CHECK'])

/**
 * A health checker block of a real_server: it connects to connect_ip:connect_port, by default the real server's
 * address and port (queue_checker: co->dst = the real server's address; no checker has a default port of its own
 * since keepalived ef9c893d), from bindto when given. A value lvsdoctor cannot read leaves the default (the checker's
 * other keywords are keepalived's business).
 */
function checkerOf(n: Node, kind: string, rip: IpAddr, rport: number | undefined, loc: (n: Node) => Loc): HealthCheck {
  let ip = rip
  let port = PORT_CHECKERS.has(kind) ? rport : undefined
  let bindto: IpAddr | undefined
  let requireReply = false
  for (const c of n.children ?? []) {
    const [k, v] = c.words
    if (k === 'connect_ip' && v !== undefined) ip = parseIp(v) ?? ip
    else if (k === 'connect_port' && v !== undefined && /^\d+$/.test(v) && Number(v) <= 65535 && PORT_CHECKERS.has(kind)) port = Number(v)
    else if (k === 'bindto' && v !== undefined) bindto = parseIp(v) ?? bindto
    else if (k === 'require_reply') requireReply = true
  }
  return {kind, ip, ...(port !== undefined ? {port} : {}), ...(bindto ? {bindto} : {}), ...(requireReply ? {requireReply} : {}), loc: loc(n)}
}

const CHECKERS = new Set(['HTTP_GET', 'SSL_GET', 'TCP_CHECK', 'MISC_CHECK', 'SMTP_CHECK', 'DNS_CHECK', 'BFD_CHECK', 'UDP_CHECK', 'PING_CHECK', 'FILE_CHECK'])
/** virtual_server keywords that only steer health checking, alerting or the daemon: no effect on the IPVS table */
const VS_IGNORED = new Set(['delay_loop', 'retry', 'delay_before_retry', 'warmup', 'connect_timeout', 'inhibit_on_failure', 'ha_suspend', 'smtp_alert', 'virtualhost', 'snmp_name', 'alpha', 'omega', 'quorum', 'quorum_up', 'quorum_down', 'hysteresis', 'ip_family'])
/** check_parser.c lvs_schedulers[]: any other lb_algo is rejected and the service keeps wlc */
const SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos'])
/** global_data.h LVS_MAX_TIMEOUT: persistence_timeout is read in 1..31 days */
const LVS_MAX_TIMEOUT = 86400 * 31
/** forwarding methods of the alibaba/LVS and iqiyi/dpvs keepalived forks (full NAT), not in the kernel's IPVS */
const FORK_METHODS = new Set(['FNAT', 'FULLNAT', 'SNAT'])
const RS_IGNORED = new Set(['inhibit_on_failure', 'alpha', 'retry', 'delay_before_retry', 'warmup', 'connect_timeout', 'delay_loop', 'smtp_alert', 'virtualhost', 'snmp_name', 'notify_up', 'notify_down'])
const SCHED_FLAGS = new Set(['flag-1', 'flag-2', 'flag-3', 'sh-port', 'sh-fallback', 'mh-port', 'mh-fallback'])
const KNOWN_TOP = new Set(['global_defs', 'vrrp_instance', 'vrrp_sync_group', 'vrrp_script', 'vrrp_track_process', 'track_file', 'static_ipaddress', 'static_routes', 'static_rules', 'linkbeat_interfaces', 'garp_group', 'bfd_instance', 'SSL', 'net_namespace', 'net_namespace_ipvs', 'instance', 'use_pid_dir', 'vrrp_track_file', 'virtual_server', 'virtual_server_group', 'include'])
const PERSISTENT_TIMEOUT = 360

function ipArg(w: string | undefined, file: string, line: number, what: string): IpAddr {
  const a = w === undefined ? undefined : parseIp(w)
  if (!a) throw new ParseError(file, line, `${what} (an IP address)`, w ?? 'the end of the line')
  return a
}

function uint(w: string | undefined, file: string, line: number, what: string, max = 0xffffffff): number {
  if (w === undefined || !/^\d+$/.test(w) || Number(w) > max) throw new ParseError(file, line, `${what} (a number)`, w ?? 'the end of the line')
  return Number(w)
}

function method(w: string | undefined, file: string, line: number): IpvsMethod {
  switch (w) {
    case 'NAT':
      return 'masq'
    case 'DR':
      return 'route'
    case 'TUN':
      return 'tunnel'
    default:
      throw new ParseError(file, line, 'lb_kind/lvs_method NAT, DR or TUN', w ?? 'the end of the line')
  }
}

/** `TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]` after lvs_method */
function tunnelOpts(words: string[], file: string, line: number): Partial<{-readonly [K in keyof IpvsDest]: IpvsDest[K]}> {
  const o: Partial<{-readonly [K in keyof IpvsDest]: IpvsDest[K]}> = {}
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!
    if (w === 'type') {
      const t = words[++k]
      if (t !== 'ipip' && t !== 'gue' && t !== 'gre') throw new ParseError(file, line, 'a tunnel type ipip, gue or gre', t)
      o.tunnelType = t
    } else if (w === 'port') o.tunnelPort = uint(words[++k], file, line, 'a tunnel port', 65535)
    else if (w === 'nocsum' || w === 'csum' || w === 'remcsum') o.tunnelCsum = w
    else throw new ParseError(file, line, 'tunnel options type/port/nocsum/csum/remcsum', w)
  }
  return o
}

interface VsKey {
  readonly family: Family
  readonly vip?: IpAddr
  readonly port?: number
  readonly fwmark?: number
}

export function parseKeepalived(text: string, file: string): KeepalivedConfig {
  const nodes = tree(text, file)
  const notModelled: NotModelled[] = []
  const includes: {path: string; loc: Loc}[] = []
  const services: IpvsService[] = []
  const vrrpAddresses: KeepalivedConfig['vrrpAddresses'][number][] = []
  let vrrpStrict = false
  let lvsTimeouts: KeepalivedConfig['lvsTimeouts']
  /** `lvs_timeouts [tcp N] [tcpfin N] [udp N]` (keepalived.conf(5)); what else it holds is reported, not guessed */
  const lvsTimeoutsOf = (c: Node): KeepalivedConfig['lvsTimeouts'] => {
    const out: {tcp?: number; tcpfin?: number; udp?: number} = {}
    const w = c.words
    for (let i = 1; i < w.length; i += 2) {
      const k = w[i]!
      const v = w[i + 1]
      if ((k !== 'tcp' && k !== 'tcpfin' && k !== 'udp') || v === undefined || !/^\d+$/.test(v)) {
        // keepalived reports the option and reads on
        nm(c, `lvs_timeouts ${k}${v === undefined ? '' : ` ${v}`}: not a timeout keepalived reads (tcp|tcpfin|udp SECONDS)`)
        continue
      }
      // 0 leaves the kernel's timeout as it is (ip_vs_set_timeout)
      if (Number(v) > 0) out[k] = Number(v)
    }
    return Object.keys(out).length ? {...out, loc: loc(c)} : undefined
  }
  const groups = new Map<string, {keys: VsKey[]; complete: boolean}>()
  const loc = (n: Node): Loc => ({file, line: n.line, text: n.text})
  const nm = (n: Node, what: string): void => {
    notModelled.push({file, line: n.line, what})
  }

  // groups first: a virtual_server may name a group defined further down
  for (const n of nodes) {
    if (n.words[0] !== 'virtual_server_group') continue
    const name = n.words[1]
    if (!name) throw new ParseError(file, n.line, 'a group name after virtual_server_group', n.text.trim())
    const keys: VsKey[] = []
    let complete = true
    for (const e of n.children ?? []) {
      const [a, b, c] = e.words
      if (a === 'fwmark') {
        const fwmark = uint(b, file, e.line, 'a firewall mark')
        keys.push({family: c === 'inet6' ? 6 : 4, fwmark})
        continue
      }
      const range = /^([^-/]+)-([0-9a-fA-F]+)$/.exec(a ?? '')
      if (range) {
        // 192.168.1.1-10: the last byte (IPv4) or group (IPv6) runs up to the number given
        const first = ipArg(range[1], file, e.line, 'the first address of the range')
        const last = first.family === 4 ? BigInt(Number(range[2])) : BigInt('0x' + range[2])
        const step = first.value & (first.family === 4 ? 0xffn : 0xffffn)
        const count = Number(last - step) + 1
        if (count < 1 || count > 256) {
          nm(e, `virtual_server_group ${name} range ${a} (${count} addresses)`)
          complete = false
          continue
        }
        const port = b === undefined ? 0 : uint(b, file, e.line, 'a port', 65535)
        for (let k = 0; k < count; k++) keys.push({family: first.family, vip: {family: first.family, value: first.value + BigInt(k)}, port})
        continue
      }
      if (a && a.includes('/')) {
        nm(e, `virtual_server_group ${name} prefix ${a}`)
        complete = false
        continue
      }
      const vip = ipArg(a, file, e.line, 'a virtual_server_group entry (IP PORT, IP-RANGE PORT or fwmark N)')
      keys.push({family: vip.family, vip, port: b === undefined ? 0 : uint(b, file, e.line, 'a port', 65535)})
    }
    groups.set(name, {keys, complete})
  }

  for (const n of nodes) {
    const kw = n.words[0]!
    if (!/^[A-Za-z_@$~][\w.@$~-]*$/.test(kw)) throw new ParseError(file, n.line, 'a keepalived keyword (virtual_server, vrrp_instance, global_defs...)', n.text.trim())
    if (kw.startsWith('@') || kw.startsWith('$') || n.words.some((w) => w.startsWith('$') || w.startsWith('~SEQ'))) {
      nm(n, `keepalived conditional/parameter syntax ${kw}`)
      continue
    }
    switch (kw) {
      case 'include':
        includes.push({path: n.words.slice(1).join(' '), loc: loc(n)})
        nm(n, `include ${n.words.slice(1).join(' ')} (not followed: the included file is not in the snapshot)`)
        break
      case 'global_defs':
        for (const c of n.children ?? []) {
          if (c.words[0] === 'vrrp_strict') vrrpStrict = true
          if (c.words[0] === 'lvs_timeouts') lvsTimeouts = lvsTimeoutsOf(c) ?? lvsTimeouts
        }
        break
      case 'vrrp_instance': {
        const iface = (n.children ?? []).find((c) => c.words[0] === 'interface')?.words[1]
        for (const c of n.children ?? []) {
          if (c.words[0] !== 'virtual_ipaddress' && c.words[0] !== 'virtual_ipaddress_excluded') continue
          for (const v of c.children ?? []) {
            const [addr, ...rest] = v.words
            const slash = addr!.indexOf('/')
            const ip = parseIp(slash >= 0 ? addr!.slice(0, slash) : addr!)
            const len = slash >= 0 ? addr!.slice(slash + 1) : undefined
            if (!ip || (len !== undefined && (!/^\d+$/.test(len) || Number(len) > (ip.family === 4 ? 32 : 128)))) {
              // keepalived: "VRRP parsed invalid IP ... skipping IP"
              nm(v, `${c.words[0]} entry ${v.words.join(' ')}: not an address (keepalived reports a config error and skips it)`)
              continue
            }
            const prefixlen = len !== undefined ? Number(len) : undefined
            const di = rest.indexOf('dev')
            const dev = di >= 0 ? rest[di + 1] : iface
            vrrpAddresses.push({ip, ...(prefixlen !== undefined ? {prefixlen} : {}), ...(dev !== undefined ? {dev} : {}), loc: loc(v)})
          }
        }
        break
      }
      case 'virtual_server':
        services.push(...virtualServer(n))
        break
      case 'virtual_server_group':
        break
      default:
        if (!KNOWN_TOP.has(kw)) nm(n, `keepalived keyword ${kw}`)
    }
  }

  function virtualServer(n: Node): IpvsService[] {
    const [, a, b] = n.words
    let keys: VsKey[]
    const skipped = (why: string): IpvsService[] => {
      nm(n, `virtual_server ${n.words.slice(1).join(' ')}: ${why}`)
      return []
    }
    if (a === 'fwmark') {
      if (b === undefined || !/^\d+$/.test(b) || Number(b) > 0xffffffff) return skipped('not a firewall mark (keepalived reports a config error and skips the block)')
      const fwmark = Number(b)
      const fam = (n.children ?? []).find((c) => c.words[0] === 'ip_family')?.words[1]
      keys = [{family: fam === 'inet6' ? 6 : 4, fwmark}]
    } else if (a === 'group') {
      const g = b === undefined ? undefined : groups.get(b)
      if (!g) throw new ParseError(file, n.line, `a virtual_server_group named ${b ?? '(none)'} defined in this file`, n.text.trim())
      if (!g.complete) nm(n, `virtual_server group ${b}: only the simple entries of the group are modelled`)
      keys = g.keys
    } else {
      const vip = a === undefined ? undefined : parseIp(a)
      if (!vip || (b !== undefined && (!/^\d+$/.test(b) || Number(b) > 65535))) {
        const fork = a === 'match' ? "; `virtual_server match` is the dpvs keepalived fork's SNAT service, not modelled" : ''
        return skipped(`not a numeric address and port (keepalived reports a config error and skips the block${fork})`)
      }
      keys = [{family: vip.family, vip, port: b === undefined ? 0 : Number(b)}]
    }
    let scheduler: string | undefined
    let kind: IpvsMethod | undefined
    let kindTun: Partial<IpvsDest> = {}
    let persistence: number | undefined
    let granularity: number | undefined
    let proto: IpvsProto | undefined
    let pe: string | undefined
    let ops = false
    let vsWeight: number | undefined
    let forkMethod: string | undefined
    const schedFlags: string[] = []
    const svcNm: NotModelled[] = []
    const reals: {node: Node; ip: IpAddr; port?: number; weight?: number; method?: IpvsMethod; tun: Partial<IpvsDest>; ut: number; lt: number; checks: HealthCheck[]}[] = []
    /** NAT, DR or TUN as keepalived spells them; anything else is a config error keepalived ignores */
    const knownMethod = (c: Node, v: string | undefined, keeps: string): boolean => {
      if (v === 'NAT' || v === 'DR' || v === 'TUN') return true
      svcNm.push({file, line: c.line, what: `${c.words[0]} ${v ?? ''}: keepalived knows only NAT, DR and TUN (upper case), reports a config error and keeps ${keeps}`})
      return false
    }
    for (const c of n.children ?? []) {
      const [k, v, ...more] = c.words
      switch (k) {
        case 'lb_algo':
        case 'lvs_sched':
          if (v !== undefined && SCHEDULERS.has(v)) scheduler = v
          else svcNm.push({file, line: c.line, what: `${k} ${v ?? ''}: not a scheduler keepalived knows; it reports a config error and keeps ${scheduler ?? 'wlc'}`})
          break
        case 'lb_kind':
        case 'lvs_method':
          if (v !== undefined && FORK_METHODS.has(v.toUpperCase())) forkMethod = v
          else if (knownMethod(c, v, kind === 'route' ? 'DR' : kind === 'tunnel' ? 'TUN' : 'NAT')) {
            kind = method(v, file, c.line)
            kindTun = kind === 'tunnel' ? tunnelOpts(more, file, c.line) : {}
          }
          break
        case 'persistence_timeout':
          if (v === undefined) persistence = PERSISTENT_TIMEOUT
          else if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= LVS_MAX_TIMEOUT) persistence = Number(v)
          // 0 is rejected too (config error), which leaves the service without persistence, as written
          else if (!/^0+$/.test(v)) svcNm.push({file, line: c.line, what: `persistence_timeout ${v}: keepalived accepts 1 to ${LVS_MAX_TIMEOUT} s, reports a config error and ignores it${persistence === undefined ? ' (no persistence)' : ''}`})
          break
        case 'weight':
          vsWeight = uint(v, file, c.line, 'a default real server weight', 0x7fffffff)
          break
        case 'persistence_granularity': {
          if (v !== undefined && /^\d+$/.test(v)) granularity = uint(v, file, c.line, 'an IPv6 prefix length', 128)
          else {
            const m = ipArg(v, file, c.line, 'a persistence_granularity netmask')
            granularity = undefined
            for (let len = 0; len <= 32; len++) if (((0xffffffffn << BigInt(32 - len)) & 0xffffffffn) === m.value) granularity = len
            if (granularity === undefined) svcNm.push({file, line: c.line, what: `non-contiguous persistence_granularity ${v}`})
          }
          persistence ??= PERSISTENT_TIMEOUT
          break
        }
        case 'persistence_engine':
          pe = v
          break
        case 'protocol': {
          const p = v?.toLowerCase()
          if (p === 'tcp' || p === 'udp' || p === 'sctp') proto = p
          else svcNm.push({file, line: c.line, what: `protocol ${v ?? ''}: keepalived knows TCP, UDP and SCTP, reports a config error and ignores it`})
          break
        }
        case 'ops':
          ops = true
          break
        case 'hashed':
          break
        case 'real_server': {
          const ip = v === undefined ? undefined : parseIp(v)
          if (!ip || (more[0] !== undefined && (!/^\d+$/.test(more[0]) || Number(more[0]) > 65535))) {
            svcNm.push({file, line: c.line, what: `real_server ${c.words.slice(1).join(' ')}: not a numeric address and port (keepalived reports a config error and skips it)`})
            break
          }
          const port = more[0] === undefined ? undefined : Number(more[0])
          let weight: number | undefined
          let m: IpvsMethod | undefined
          let tun: Partial<IpvsDest> = {}
          let ut = 0
          let lt = 0
          const checks: HealthCheck[] = []
          for (const r of c.children ?? []) {
            const [rk, rv, ...rmore] = r.words
            if (CHECKERS.has(rk!)) {
              checks.push(checkerOf(r, rk!, ip, port, loc))
              continue
            }
            if (rk === 'weight') weight = uint(rv, file, r.line, 'a weight', 0x7fffffff)
            else if (rk === 'lvs_method') {
              if (rv !== undefined && FORK_METHODS.has(rv.toUpperCase())) forkMethod = rv
              else if (knownMethod(r, rv, "the virtual server's method")) {
                m = method(rv, file, r.line)
                tun = m === 'tunnel' ? tunnelOpts(rmore, file, r.line) : {}
              }
            } else if (rk === 'uthreshold') ut = uint(rv, file, r.line, 'an upper threshold')
            else if (rk === 'lthreshold') lt = uint(rv, file, r.line, 'a lower threshold')
            else if (!RS_IGNORED.has(rk!)) svcNm.push({file, line: r.line, what: `real_server keyword ${rk}`})
          }
          // validate_check_config: a real server equal to an earlier one (address and port as written) is removed
          if (reals.some((x) => x.ip.value === ip.value && x.ip.family === ip.family && x.port === port)) {
            svcNm.push({file, line: c.line, what: `real_server ${c.words.slice(1).join(' ')}: a duplicate of an earlier real_server (keepalived removes it)`})
            break
          }
          reals.push({node: c, ip, ...(port !== undefined ? {port} : {}), ...(weight !== undefined ? {weight} : {}), ...(m ? {method: m} : {}), tun, ut, lt, checks})
          break
        }
        case 'sorry_server':
          svcNm.push({file, line: c.line, what: `sorry_server ${c.words.slice(1).join(' ')} (used only when every real server is down)`})
          break
        default:
          if (k && SCHED_FLAGS.has(k)) {
            // lbflags_handler: sh-port/sh-fallback count only when the scheduler read so far is sh, mh-port/mh-fallback
            // only under mh (keepalived reports "only applies to sh scheduler - ignoring" otherwise); flag-N always
            const needs = k.startsWith('sh-') ? 'sh' : k.startsWith('mh-') ? 'mh' : undefined
            if (needs && scheduler !== needs) svcNm.push({file, line: c.line, what: `${k} ${scheduler ? `with lb_algo ${scheduler}` : `before lb_algo ${needs}`}: keepalived applies it only after lb_algo ${needs} and ignores it here`})
            else schedFlags.push(k)
          } else if (k && !VS_IGNORED.has(k) && !CHECKERS.has(k) && k !== 'sorry_server_inhibit' && k !== 'sorry_server_lvs_method') {
            svcNm.push({file, line: c.line, what: `virtual_server keyword ${k}`})
          }
      }
    }
    if (forkMethod !== undefined) return skipped(`lb_kind/lvs_method ${forkMethod} is the full NAT of the alibaba/LVS and iqiyi/dpvs keepalived forks (upstream keepalived rejects it and uses NAT): the service is not modelled`)
    // keepalived >= 2.2.7 ignores a virtual_server without real_server (sorry_server or not): the VIP is not
    // balanced at all. Kept as a service without destinations, which is what the checks report as unserved.
    if (reals.length === 0) svcNm.push({file, line: n.line, what: 'virtual_server without real_server: keepalived (2.2.7 and later) reports a config error and installs no IPVS service for it'})
    if (scheduler === undefined && !svcNm.some((x) => /^(lb_algo|lvs_sched) /.test(x.what))) svcNm.push({file, line: n.line, what: 'virtual_server without lb_algo: keepalived uses wlc'})
    const isFwmark = keys.length > 0 && keys.every((k) => k.fwmark !== undefined)
    const hasAddress = keys.some((k) => k.fwmark === undefined)
    if (proto === undefined && !isFwmark) svcNm.push({file, line: n.line, what: 'virtual_server without protocol: keepalived sets UDP'})
    if (ops && hasAddress && (proto ?? 'udp') !== 'udp') {
      ops = false
      svcNm.push({file, line: n.line, what: `ops on a ${proto!.toUpperCase()} service: keepalived reports that one-packet scheduling requires UDP and resets it`})
    }
    if (persistence === undefined && keys.some((k) => k.fwmark === undefined && k.port === 0)) {
      persistence = PERSISTENT_TIMEOUT
      svcNm.push({file, line: n.line, what: `port 0 without persistence_timeout: keepalived makes the service persistent (${PERSISTENT_TIMEOUT} s)`})
    }
    const svcMethod = kind ?? 'masq'
    return keys.map((key): IpvsService => {
      const family = key.family
      const persistent = persistence !== undefined
      const dests: IpvsDest[] = reals.map((r) => {
        const m = r.method ?? svcMethod
        const tun = r.method ? r.tun : kindTun
        return {
          ip: r.ip,
          // DR and TUN keep the packet's port: the service port, 0 under a fwmark (check_data.c: "port will be ignored")
          port: m === 'route' || m === 'tunnel' ? (key.port !== undefined && key.port !== 0 ? key.port : key.fwmark !== undefined ? 0 : (r.port ?? 0)) : (r.port ?? key.port ?? 0),
          method: m,
          weight: r.weight ?? vsWeight ?? 1,
          upperThreshold: r.ut,
          lowerThreshold: r.lt,
          ...(m === 'tunnel' ? {tunnelType: tun.tunnelType ?? 'ipip'} : {}),
          ...(m === 'tunnel' && tun.tunnelPort !== undefined ? {tunnelPort: tun.tunnelPort} : {}),
          ...(m === 'tunnel' && tun.tunnelCsum !== undefined ? {tunnelCsum: tun.tunnelCsum} : {}),
          ...(r.checks.length ? {checks: r.checks} : {}),
          loc: loc(r.node),
        }
      })
      const p: IpvsProto | 'fwmark' = key.fwmark !== undefined ? 'fwmark' : (proto ?? 'udp')
      return {
        family,
        proto: p,
        ...(key.vip ? {vip: key.vip, port: key.port ?? 0} : {}),
        ...(key.fwmark !== undefined ? {fwmark: key.fwmark} : {}),
        scheduler: scheduler ?? 'wlc',
        ...(persistent ? {persistence, persistenceNetmask: granularity ?? (family === 4 ? 32 : 128)} : {}),
        flags: [...(persistent ? ['persistent'] : []), ...(ops ? ['ops'] : [])],
        schedFlags: [...schedFlags],
        ops,
        ...(pe !== undefined ? {pe} : {}),
        dests,
        ...(svcNm.length ? {notModelled: svcNm} : {}),
        loc: loc(n),
      }
    })
  }

  return {services, vrrpAddresses, vrrpStrict, ...(lvsTimeouts ? {lvsTimeouts} : {}), ...(includes.length ? {includes} : {}), ...(notModelled.length ? {notModelled} : {})}
}
