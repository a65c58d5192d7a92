// ipvsadm output into IpvsService/IpvsConn. Formats from ipvsadm.c (v1.26 .. v1.31):
//   -Sn   print_service_entry() with FMT_RULE: `-A -t VIP:port -s wlc [-p N [-M mask]] [--pe sip] [-o] [-b flags]`
//         and `-a -t VIP:port -r RIP:port -g|-m|-i -w N [--tun-type ipip|gue|gre [--tun-port P] [--tun-csum]]`;
//         the long options and `-x`/`-y` of ipvsadm(8) are accepted too (hand-written `ipvsadm -R` files).
//   -Ln   print_title() + print_service_entry(): `TCP  VIP:port sched [(flags)] [persistent N [mask M]] [pe X] [ops]`,
//         `  -> RIP:port Forward Weight ActiveConn InActConn`, and the --stats/--rate/--thresholds/
//         --persistent-conn/--tun-info column sets, numbers with print_largenum()'s K/M/G/T suffixes.
//         The kernel's /proc/net/ip_vs (ip_vs_ctl.c ip_vs_info_seq_show: the same listing with hex addresses,
//         ports and marks, `persistent T MASK` with a hex netmask) is read as -Ln: what a node without ipvsadm
//         (kube-proxy IPVS mode) shows. A forwarding method the kernel's IPVS does not have (FullNat, SNAT of
//         the alibaba/LVS and iqiyi/dpvs forks) is kept as 'unknown' and listed; their MATCH services are listed
//         and skipped.
//   -Lnc  list_conn()/print_conn(): `pro expire state source virtual destination` (expire mm:ss);
//         the raw /proc/net/ip_vs_conn table (hex addresses and ports, expiry in seconds) is accepted too.
import {formatIp, parseEndpoint, parseIp, type Endpoint, type Family, type IpAddr} from '../../model/ip.js'
import type {IpvsConn, IpvsDest, IpvsMethod, IpvsProto, IpvsRate, IpvsService, IpvsStats} from '../../model/ipvs.js'
import {ParseError, type Loc, type NotModelled} from '../../model/source.js'

type Mutable<T> = {-readonly [K in keyof T]: T[K]}
type SvcBuild = Mutable<Omit<IpvsService, 'dests' | 'notModelled'>> & {dests: IpvsDest[]; notModelled: NotModelled[]}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, ''))
}

function endpoint(text: string, file: string, line: number, what: string): Endpoint {
  const e = parseEndpoint(text)
  if (!e) throw new ParseError(file, line, `${what} as a numeric IP:port or [IPv6]:port (ipvsadm -n)`, text)
  return e
}

function intArg(v: string | undefined, file: string, line: number, what: string, max = 0xffffffff): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) > max) throw new ParseError(file, line, `${what} (a number)`, v ?? 'the end of the line')
  return Number(v)
}

/** `255.255.255.0` or `64` → prefix length; undefined for a non-contiguous IPv4 mask */
function maskLen(text: string, family: Family, file: string, line: number): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    if (n > (family === 4 ? 32 : 128)) throw new ParseError(file, line, 'a persistence netmask', text)
    return n
  }
  const m = parseIp(text)
  if (!m || m.family !== 4) throw new ParseError(file, line, 'a persistence netmask (dotted quad or prefix length)', text)
  for (let len = 0; len <= 32; len++) if (((0xffffffffn << BigInt(32 - len)) & 0xffffffffn) === m.value) return len
  return undefined
}

function svcKey(proto: string, family: Family, vip: string | undefined, fwmark: number | undefined): string {
  return fwmark !== undefined ? `fwm/${family}/${fwmark}` : `${proto}/${vip}`
}

// ----------------------------------------------------------------------------------------------- -Sn

const SVC_OPT: Record<string, string> = {
  '-t': 'tcp', '--tcp-service': 'tcp', '-u': 'udp', '--udp-service': 'udp', '--sctp-service': 'sctp', '-f': 'fwmark', '--fwmark-service': 'fwmark',
}

interface Args {
  proto?: string
  addr?: string
  /** `-b` (FULLNAT) or `-J` (SNAT) on a destination line of the dpvs/alibaba ipvsadm -S */
  fork?: string
  opts: Map<string, string | true>
  unknown: string[]
}

/** option name → canonical short name, and whether it takes an argument ('opt' = optional argument) */
const OPTS: Record<string, [string, boolean | 'opt']> = {
  '-s': ['-s', true], '--scheduler': ['-s', true],
  '-p': ['-p', 'opt'], '--persistent': ['-p', 'opt'],
  '-M': ['-M', true], '--netmask': ['-M', true],
  '--pe': ['--pe', true], 'pe': ['--pe', true],
  '-o': ['-o', false], '--ops': ['-o', false], 'ops': ['-o', false],
  '-b': ['-b', true], '--sched-flags': ['-b', true],
  '-6': ['-6', false], '--ipv6': ['-6', false],
  '-r': ['-r', true], '--real-server': ['-r', true],
  '-g': ['-g', false], '--gatewaying': ['-g', false],
  '-m': ['-m', false], '--masquerading': ['-m', false],
  '-i': ['-i', false], '--ipip': ['-i', false],
  '-w': ['-w', true], '--weight': ['-w', true],
  '-x': ['-x', true], '--u-threshold': ['-x', true],
  '-y': ['-y', true], '--l-threshold': ['-y', true],
  '--tun-type': ['--tun-type', true], '--tun-port': ['--tun-port', true],
  '--tun-nocsum': ['--tun-nocsum', false], '--tun-csum': ['--tun-csum', false], '--tun-remcsum': ['--tun-remcsum', false],
}

function parseArgs(words: string[], file: string, line: number, dest = false): Args {
  const a: Args = {opts: new Map(), unknown: []}
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!
    // a destination takes no scheduler flags: there `-b` is the dpvs/alibaba fork's full NAT (fwd_switch), `-J` its SNAT
    if (dest && (w === '-b' || w === '-J')) {
      a.fork = w === '-b' ? 'FullNat' : 'SNAT'
      continue
    }
    let inline: string | undefined
    const eq = w.startsWith('--') ? w.indexOf('=') : -1
    if (eq > 0) {
      inline = w.slice(eq + 1)
      w = w.slice(0, eq)
    }
    if (SVC_OPT[w]) {
      a.proto = SVC_OPT[w]
      a.addr = inline ?? words[++i]
      if (a.addr === undefined) throw new ParseError(file, line, `a service address after ${w}`, 'the end of the line')
      continue
    }
    const o = OPTS[w]
    if (!o) {
      a.unknown.push(w)
      continue
    }
    const [name, arg] = o
    if (arg === true) {
      const v = inline ?? words[++i]
      if (v === undefined) throw new ParseError(file, line, `a value after ${w}`, 'the end of the line')
      a.opts.set(name, v)
    } else if (arg === 'opt') {
      const next = words[i + 1]
      if (inline !== undefined) a.opts.set(name, inline)
      else if (next !== undefined && /^\d+$/.test(next)) a.opts.set(name, words[++i]!)
      else a.opts.set(name, true)
    } else a.opts.set(name, true)
  }
  return a
}

/** `-p` without a value: IPVS_SVC_PERSISTENT_TIMEOUT (6*60) of libipvs/libipvs.h, used by ipvsadm.c parse_timeout() */
const DEFAULT_PERSISTENCE = 360

export function parseIpvsadmSave(text: string, file: string): IpvsService[] {
  const services = new Map<string, SvcBuild>()
  const ls = lines(text)
  // IPVS loaded with no services: `ipvsadm -Sn` prints nothing, which is known-empty
  const notModelled: NotModelled[] = []
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i]!
    const lineNo = i + 1
    const t = raw.trim()
    if (t === '' || t.startsWith('#')) continue
    const words = t.split(/\s+/)
    const cmd = words[0]!
    const loc: Loc = {file, line: lineNo, text: raw}
    if (cmd === '-C' || cmd === '--clear') {
      services.clear()
      continue
    }
    if (!['-A', '--add-service', '-a', '--add-server'].includes(cmd)) {
      if (/^(-[EeDdZ]|--(edit|delete)-(service|server)|--zero|--set|--start-daemon|--stop-daemon)$/.test(cmd)) {
        notModelled.push({file, line: lineNo, what: `ipvsadm ${cmd}`})
        continue
      }
      throw new ParseError(file, lineNo, 'an `ipvsadm -Sn` line (-A ... or -a ...)', raw)
    }
    const a = parseArgs(words.slice(1), file, lineNo, cmd === '-a' || cmd === '--add-server')
    if (!a.proto || a.addr === undefined) throw new ParseError(file, lineNo, 'a virtual service (-t/-u/--sctp-service VIP:port or -f MARK)', raw)
    let family: Family
    let vip: Endpoint | undefined
    let fwmark: number | undefined
    if (a.proto === 'fwmark') {
      fwmark = intArg(a.addr, file, lineNo, 'a firewall mark after -f')
      family = a.opts.has('-6') ? 6 : 4
    } else {
      vip = endpoint(a.addr, file, lineNo, 'the virtual service address')
      family = vip.ip.family
    }
    const key = svcKey(a.proto, family, vip ? `${formatIp(vip.ip)}:${vip.port}` : undefined, fwmark)
    if (cmd === '-A' || cmd === '--add-service') {
      const sched = a.opts.get('-s')
      const p = a.opts.get('-p')
      const persistence = p === undefined ? undefined : p === true ? DEFAULT_PERSISTENCE : intArg(p, file, lineNo, 'a persistence timeout')
      const M = a.opts.get('-M')
      let persistenceNetmask: number | undefined
      const svcNm: NotModelled[] = []
      if (persistence !== undefined) {
        persistenceNetmask = typeof M === 'string' ? maskLen(M, family, file, lineNo) : family === 4 ? 32 : 128
        if (persistenceNetmask === undefined) svcNm.push({file, line: lineNo, what: `non-contiguous persistence netmask ${String(M)}`})
      }
      const b = a.opts.get('-b')
      const schedFlags = typeof b === 'string' ? b.split(',').filter(Boolean) : []
      const ops = a.opts.has('-o')
      const pe = a.opts.get('--pe')
      for (const u of a.unknown) svcNm.push({file, line: lineNo, what: `ipvsadm option ${u}`})
      const flags = [...(persistence !== undefined ? ['persistent'] : []), ...(ops ? ['ops'] : [])]
      services.set(key, {
        family,
        proto: a.proto as IpvsProto | 'fwmark',
        ...(vip ? {vip: vip.ip, port: vip.port} : {}),
        ...(fwmark !== undefined ? {fwmark} : {}),
        scheduler: typeof sched === 'string' ? sched : 'wlc',
        ...(persistence !== undefined ? {persistence} : {}),
        ...(persistenceNetmask !== undefined ? {persistenceNetmask} : {}),
        flags,
        schedFlags,
        ops,
        ...(typeof pe === 'string' ? {pe} : {}),
        dests: [],
        notModelled: svcNm,
        loc,
      })
      continue
    }
    // -a: a destination of a service defined above
    const svc = services.get(key)
    if (!svc) throw new ParseError(file, lineNo, `the -A line of service ${a.addr} before its destinations`, raw)
    const r = a.opts.get('-r')
    if (typeof r !== 'string') throw new ParseError(file, lineNo, 'a real server after -r', raw)
    // a destination without a port takes the service's (ipvsadm: DR and TUN always do)
    const rip = parseIp(r) ? {ip: parseIp(r)!, port: svc.port ?? 0} : endpoint(r, file, lineNo, 'the real server address')
    const method: IpvsMethod = a.fork ? 'unknown' : a.opts.has('-m') ? 'masq' : a.opts.has('-i') ? 'tunnel' : 'route'
    if (a.fork && !svc.notModelled.some((n) => n.what.startsWith(`${a.fork} forwarding`))) {
      svc.notModelled.push({file, line: lineNo, what: `${a.fork} forwarding (the alibaba/LVS or iqiyi/dpvs fork of IPVS) is not modelled: its destinations are not evaluated`})
    }
    const w = a.opts.get('-w')
    const tt = a.opts.get('--tun-type')
    if (tt !== undefined && !['ipip', 'gue', 'gre'].includes(String(tt))) throw new ParseError(file, lineNo, '--tun-type ipip, gue or gre', String(tt))
    const tp = a.opts.get('--tun-port')
    const csum = a.opts.has('--tun-remcsum') ? 'remcsum' : a.opts.has('--tun-csum') ? 'csum' : a.opts.has('--tun-nocsum') ? 'nocsum' : undefined
    for (const u of a.unknown) svc.notModelled.push({file, line: lineNo, what: `ipvsadm option ${u}`})
    svc.dests.push({
      ip: rip.ip,
      // -Sn prints the port the kernel holds: a DR/TUN destination set by netlink (keepalived) can differ
      // from the service port, and that difference is what dr-port-mismatch looks for
      port: rip.port,
      method,
      weight: w === undefined ? 1 : intArg(String(w), file, lineNo, 'a weight after -w', 65535),
      upperThreshold: a.opts.has('-x') ? intArg(String(a.opts.get('-x')), file, lineNo, 'an upper threshold after -x') : 0,
      lowerThreshold: a.opts.has('-y') ? intArg(String(a.opts.get('-y')), file, lineNo, 'a lower threshold after -y') : 0,
      ...(method === 'tunnel' ? {tunnelType: (tt ?? 'ipip') as 'ipip' | 'gue' | 'gre'} : {}),
      ...(tp !== undefined ? {tunnelPort: intArg(String(tp), file, lineNo, 'a port after --tun-port', 65535)} : {}),
      ...(csum ? {tunnelCsum: csum} : {}),
      loc,
    })
  }
  const out = [...services.values()].map(finish)
  if (notModelled.length && out[0]) out[0] = {...out[0], notModelled: [...(out[0].notModelled ?? []), ...notModelled]}
  return out
}

function finish(s: SvcBuild): IpvsService {
  const {notModelled, ...rest} = s
  return notModelled.length ? {...rest, notModelled} : rest
}

// ----------------------------------------------------------------------------------------------- -Ln

const FWD: Record<string, IpvsMethod> = {Masq: 'masq', Route: 'route', Tunnel: 'tunnel', Local: 'local', Bypass: 'bypass'}
const SUFFIX: Record<string, number> = {K: 1e3, M: 1e6, G: 1e9, T: 1e12}

/** print_largenum(): a number, or one with a K/M/G/T suffix (then exact only to that unit) */
function largenum(w: string | undefined, file: string, line: number, what: string): number {
  const m = w === undefined ? null : /^(\d+)([KMGT]?)$/.exec(w)
  if (!m) throw new ParseError(file, line, `${what} (a number, optionally with a K/M/G/T suffix)`, w ?? 'the end of the line')
  return Number(m[1]) * (m[2] ? SUFFIX[m[2]]! : 1)
}

type Columns = 'plain' | 'tun' | 'stats' | 'rate' | 'thresholds' | 'persist'

/** forwarding names printed by the ipvsadm of the alibaba/LVS (FULLNAT) and iqiyi/dpvs forks */
const FORK_FWD = new Set(['FullNat', 'SNAT'])

/** /proc/net/ip_vs endpoints: `0A000011:0050`, `[2001:0db8:...]:0050` (hex port, always 4 digits) */
const PROC_V4 = /^[0-9A-Fa-f]{8}:[0-9A-Fa-f]{4}$/
const PROC_V6 = /^\[[0-9A-Fa-f:]+\]:[0-9A-Fa-f]{4}$/

/** Whether the listing is /proc/net/ip_vs: an IPv4 endpoint in hex, or a zero-padded/hex fwmark or port. */
function isProcListing(ls: readonly string[]): boolean {
  for (const l of ls) {
    const w = l.trim().split(/\s+/)
    const a = w[0] === '->' ? w[1] : w[0] === 'TCP' || w[0] === 'UDP' || w[0] === 'SCTP' ? w[1] : undefined
    if (a !== undefined && PROC_V4.test(a)) return true
    if (a !== undefined && PROC_V6.test(a) && /:(0|[0-9]*[A-Fa-f])[0-9A-Fa-f]*$/.test(a)) return true
    if (w[0] === 'FWM' && w[1] !== undefined && /^(0[0-9A-Fa-f]{7}|[0-9A-Fa-f]*[A-Fa-f][0-9A-Fa-f]*)$/.test(w[1]) && w[1].length === 8) return true
  }
  return false
}

function procEndpoint(text: string, file: string, line: number, what: string): Endpoint {
  if (PROC_V4.test(text)) return {ip: {family: 4, value: BigInt('0x' + text.slice(0, 8))}, port: parseInt(text.slice(9), 16)}
  const m = /^\[([0-9A-Fa-f:]+)\]:([0-9A-Fa-f]{4})$/.exec(text)
  const ip = m ? parseIp(m[1]!) : undefined
  if (!m || !ip) throw new ParseError(file, line, `${what} as /proc/net/ip_vs prints it (8 hex digits:4 hex digits, or [IPv6]:4 hex digits)`, text)
  return {ip, port: parseInt(m[2]!, 16)}
}

export function parseIpvsadmList(text: string, file: string): IpvsService[] {
  const ls = lines(text)
  if (text.trim() === '') throw new ParseError(file, 1, '`ipvsadm -Ln` output', 'an empty file')
  let cols: Columns | undefined
  const out: SvcBuild[] = []
  const seen = new Set<string>()
  const proc = isProcListing(ls)
  /** a dpvs MATCH service being skipped, with its destinations */
  let skipping = false
  const skipped: NotModelled[] = []
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i]!
    const lineNo = i + 1
    const t = raw.trim()
    if (t === '') continue
    if (/^IP Virtual Server version /.test(t)) continue
    if (t.startsWith('Prot LocalAddress:Port')) {
      const rest = t.slice('Prot LocalAddress:Port'.length).trim().split(/\s+/)
      if (rest[0] === 'Scheduler') {
        // the second header line says which destination columns follow
        const next = ls[i + 1]?.trim() ?? ''
        cols = /Forward TunnelInfo/.test(next) ? 'tun' : 'plain'
      } else if (rest[0] === 'Conns') cols = 'stats'
      else if (rest[0] === 'CPS') cols = 'rate'
      else if (rest[0] === 'Uthreshold') cols = 'thresholds'
      else if (rest[0] === 'Weight') cols = 'persist'
      else throw new ParseError(file, lineNo, 'an ipvsadm -L header (Scheduler Flags, Conns..., CPS..., Uthreshold..., Weight PersistConn...)', raw)
      continue
    }
    if (t.startsWith('-> RemoteAddress:Port')) continue
    if (cols === undefined) throw new ParseError(file, lineNo, 'the "Prot LocalAddress:Port ..." header of ipvsadm -Ln', raw)
    const loc: Loc = {file, line: lineNo, text: raw}
    const words = t.split(/\s+/)
    if (words[0] === '->') {
      if (skipping) continue
      const svc = out.at(-1)
      if (!svc) throw new ParseError(file, lineNo, 'a service line before its destinations', raw)
      svc.dests.push(listDest(words.slice(1), cols, svc, file, lineNo, loc, proc))
      continue
    }
    skipping = words[0] === 'MATCH'
    if (skipping) {
      skipped.push({file, line: lineNo, what: `dpvs MATCH (SNAT) service ${words.slice(1).join(' ')}: not a kernel IPVS service, not modelled`})
      continue
    }
    const svc = listService(words, cols, file, lineNo, loc, proc)
    const key = svcKey(svc.proto, svc.family, svc.vip ? `${formatIp(svc.vip)}:${svc.port}` : undefined, svc.fwmark)
    if (seen.has(key)) throw new ParseError(file, lineNo, 'each virtual service listed once', raw)
    seen.add(key)
    out.push(svc)
  }
  if (skipped.length) {
    // kept on the first service, as -Sn does with lines that are not services (a listing of MATCH services
    // alone has nowhere to keep them: it is refused)
    if (!out[0]) throw new ParseError(file, skipped[0]!.line, 'a service line (TCP/UDP/SCTP VIP:port or FWM mark): the MATCH services of the dpvs fork are not modelled', ls[skipped[0]!.line - 1]!.trim())
    out[0].notModelled.push(...skipped)
  }
  return out.map(finish)
}

function listService(words: string[], cols: Columns, file: string, line: number, loc: Loc, proc = false): SvcBuild {
  const protoWord = words[0]!
  let k = 1
  let family: Family
  let vip: Endpoint | undefined
  let fwmark: number | undefined
  let proto: IpvsProto | 'fwmark'
  if (protoWord === 'FWM') {
    proto = 'fwmark'
    const w = words[k++]
    if (proc && w !== undefined && /^[0-9A-Fa-f]{8}$/.test(w)) fwmark = parseInt(w, 16)
    else fwmark = intArg(w, file, line, 'a firewall mark after FWM')
    family = 4
    if (words[k] === 'IPv6') {
      family = 6
      k++
    }
  } else if (protoWord === 'TCP' || protoWord === 'UDP' || protoWord === 'SCTP') {
    proto = protoWord.toLowerCase() as IpvsProto
    vip = proc ? procEndpoint(words[k++] ?? '', file, line, 'the virtual service address') : endpoint(words[k++] ?? '', file, line, 'the virtual service address')
    family = vip.ip.family
  } else throw new ParseError(file, line, 'a service line (TCP/UDP/SCTP VIP:port or FWM mark) or a "  -> " destination line', loc.text)
  const base = {family, proto, ...(vip ? {vip: vip.ip, port: vip.port} : {}), ...(fwmark !== undefined ? {fwmark} : {}), loc}
  const nm: NotModelled[] = []
  if (cols === 'stats' || cols === 'rate') {
    const n = words.slice(k).map((w, j) => largenum(w, file, line, `column ${j + 1} of the counters`))
    if (n.length !== 5) throw new ParseError(file, line, '5 counter columns', loc.text)
    const counters = cols === 'stats'
      ? {stats: {conns: n[0]!, inPkts: n[1]!, outPkts: n[2]!, inBytes: n[3]!, outBytes: n[4]!} satisfies IpvsStats}
      : {rate: {cps: n[0]!, inPps: n[1]!, outPps: n[2]!, inBps: n[3]!, outBps: n[4]!} satisfies IpvsRate}
    return {...base, scheduler: '', flags: [], schedFlags: [], ops: false, ...counters, dests: [], notModelled: nm}
  }
  const scheduler = words[k++]
  if (scheduler === undefined) throw new ParseError(file, line, 'a scheduler name after the service', loc.text)
  let schedFlags: string[] = []
  let persistence: number | undefined
  let persistenceNetmask: number | undefined
  let pe: string | undefined
  let ops = false
  while (k < words.length) {
    const w = words[k++]!
    if (w.startsWith('(')) {
      let s = w
      while (!s.endsWith(')') && k < words.length) s += words[k++]
      schedFlags = s.replace(/[()]/g, '').split(',').filter(Boolean)
    } else if (w === 'persistent') {
      persistence = intArg(words[k++], file, line, 'a timeout after persistent')
      // /proc/net/ip_vs: `persistent T MASK`, the netmask in hex (IPv4) or the prefix length (IPv6)
      const m = proc ? words[k] : undefined
      if (m !== undefined && /^[0-9A-Fa-f]{8}$/.test(m)) {
        k++
        const v = parseInt(m, 16)
        // IPv6: the prefix length, printed through ntohl() (so byte-swapped on little-endian hosts)
        const v6 = v <= 128 ? v : ((v >>> 24) | ((v >>> 8) & 0xff00)) <= 128 ? (v >>> 24) | ((v >>> 8) & 0xff00) : undefined
        persistenceNetmask = family === 4 ? maskLen(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`, 4, file, line) : v6
        if (persistenceNetmask === undefined) nm.push({file, line, what: `non-contiguous persistence netmask ${m}`})
      }
    } else if (w === 'mask') {
      const m = words[k++] ?? ''
      persistenceNetmask = maskLen(m, family, file, line)
      if (persistenceNetmask === undefined) nm.push({file, line, what: `non-contiguous persistence netmask ${m}`})
    } else if (w === 'pe') pe = words[k++]
    else if (w === 'ops') ops = true
    else nm.push({file, line, what: `ipvsadm -Ln service flag ${w}`})
  }
  if (persistence !== undefined && persistenceNetmask === undefined && !nm.length) persistenceNetmask = family === 4 ? 32 : 128
  const flags = [...(persistence !== undefined ? ['persistent'] : []), ...(ops ? ['ops'] : [])]
  return {
    ...base,
    scheduler,
    ...(persistence !== undefined ? {persistence} : {}),
    ...(persistenceNetmask !== undefined ? {persistenceNetmask} : {}),
    flags,
    schedFlags,
    ops,
    ...(pe !== undefined ? {pe} : {}),
    dests: [],
    notModelled: nm,
  }
}

function listDest(words: string[], cols: Columns, svc: SvcBuild, file: string, line: number, loc: Loc, proc = false): IpvsDest {
  const ep = proc ? procEndpoint(words[0] ?? '', file, line, 'the real server address') : endpoint(words[0] ?? '', file, line, 'the real server address')
  const rest = words.slice(1)
  const n = (j: number, what: string): number => intArg(rest[j], file, line, what)
  const expect = (count: number, what: string): void => {
    if (rest.length !== count) throw new ParseError(file, line, `${count} columns after the address (${what})`, loc.text)
  }
  const base = {ip: ep.ip, port: ep.port, upperThreshold: 0, lowerThreshold: 0, loc}
  const fwd = (w: string | undefined): IpvsMethod => {
    const m = w === undefined ? undefined : FWD[w]
    if (m) return m
    if (w !== undefined && FORK_FWD.has(w)) {
      if (!svc.notModelled.some((n) => n.what.startsWith(`${w} forwarding`))) {
        svc.notModelled.push({file, line, what: `${w} forwarding (the alibaba/LVS or iqiyi/dpvs fork of IPVS) is not modelled: its destinations are not evaluated`})
      }
      return 'unknown'
    }
    throw new ParseError(file, line, 'a forwarding method (Masq, Route, Tunnel, Local)', w ?? 'the end of the line')
  }
  switch (cols) {
    case 'plain':
      expect(4, 'Forward Weight ActiveConn InActConn')
      return {...base, method: fwd(rest[0]), weight: n(1, 'a weight'), activeConns: n(2, 'ActiveConn'), inactiveConns: n(3, 'InActConn'), ...tunnelOf(fwd(rest[0]), undefined)}
    case 'tun': {
      expect(5, 'Forward TunnelInfo Weight ActiveConn InActConn')
      const method = fwd(rest[0])
      return {...base, method, ...tunnelOf(method, rest[1], file, line), weight: n(2, 'a weight'), activeConns: n(3, 'ActiveConn'), inactiveConns: n(4, 'InActConn')}
    }
    case 'stats': {
      expect(5, 'Conns InPkts OutPkts InBytes OutBytes')
      const v = rest.map((w) => largenum(w, file, line, 'a counter'))
      return {...base, method: 'unknown', weight: NaN, stats: {conns: v[0]!, inPkts: v[1]!, outPkts: v[2]!, inBytes: v[3]!, outBytes: v[4]!}}
    }
    case 'rate': {
      expect(5, 'CPS InPPS OutPPS InBPS OutBPS')
      const v = rest.map((w) => largenum(w, file, line, 'a rate'))
      return {...base, method: 'unknown', weight: NaN, rate: {cps: v[0]!, inPps: v[1]!, outPps: v[2]!, inBps: v[3]!, outBps: v[4]!}}
    }
    case 'thresholds':
      expect(4, 'Uthreshold Lthreshold ActiveConn InActConn')
      return {...base, method: 'unknown', weight: NaN, upperThreshold: n(0, 'Uthreshold'), lowerThreshold: n(1, 'Lthreshold'), activeConns: n(2, 'ActiveConn'), inactiveConns: n(3, 'InActConn')}
    case 'persist':
      expect(4, 'Weight PersistConn ActiveConn InActConn')
      return {...base, method: 'unknown', weight: n(0, 'a weight'), persistConns: n(1, 'PersistConn'), activeConns: n(2, 'ActiveConn'), inactiveConns: n(3, 'InActConn')}
  }
  void svc
}

/** fwd_tun_info(): `ipip`, `gue:PORT:-c|+c|r+c`, `gre:-c|+c|r+c`, `n/a` */
function tunnelOf(method: IpvsMethod, info: string | undefined, file?: string, line?: number): Partial<Mutable<IpvsDest>> {
  if (method !== 'tunnel') return {}
  if (info === undefined) return {}
  const csum = {'-c': 'nocsum', '+c': 'csum', 'r+c': 'remcsum'} as const
  const m = /^(ipip|gue|gre)(?::(\d+))?(?::(-c|\+c|r\+c))?$/.exec(info)
  if (!m) throw new ParseError(file!, line, 'tunnel info (ipip, gue:PORT:FLAGS, gre:FLAGS)', info)
  return {
    tunnelType: m[1] as 'ipip' | 'gue' | 'gre',
    ...(m[2] ? {tunnelPort: Number(m[2])} : {}),
    ...(m[3] ? {tunnelCsum: csum[m[3] as keyof typeof csum]} : {}),
  }
}

/**
 * Adds what `ipvsadm -Ln` knows and `-Sn` does not (connection counts, counters) to the services of
 * `-Sn`. Services and destinations are matched by their keys; the -Sn values win where both have one.
 */
export function mergeIpvsList(save: readonly IpvsService[], list: readonly IpvsService[]): IpvsService[] {
  const key = (s: IpvsService): string => svcKey(s.proto, s.family, s.vip ? `${formatIp(s.vip)}:${s.port}` : undefined, s.fwmark)
  const dkey = (d: IpvsDest): string => `${formatIp(d.ip)}:${d.port}`
  const byKey = new Map(list.map((s) => [key(s), s]))
  return save.map((s) => {
    const l = byKey.get(key(s))
    if (!l) return s
    const ld = new Map(l.dests.map((d) => [dkey(d), d]))
    return {
      ...s,
      ...(l.stats ? {stats: l.stats} : {}),
      ...(l.rate ? {rate: l.rate} : {}),
      dests: s.dests.map((d) => {
        const x = ld.get(dkey(d))
        if (!x) return d
        return {
          ...d,
          ...(x.activeConns !== undefined ? {activeConns: x.activeConns} : {}),
          ...(x.inactiveConns !== undefined ? {inactiveConns: x.inactiveConns} : {}),
          ...(x.stats ? {stats: x.stats} : {}),
          ...(x.rate ? {rate: x.rate} : {}),
          ...(x.persistConns !== undefined ? {persistConns: x.persistConns} : {}),
          ...(d.method === 'route' && x.method === 'local' ? {method: 'local' as const} : {}),
        }
      }),
    }
  })
}

// ---------------------------------------------------------------------------------------------- -Lnc

export function parseIpvsadmConns(text: string, file: string): IpvsConn[] {
  const ls = lines(text)
  if (text.trim() === '') throw new ParseError(file, 1, '`ipvsadm -Lnc` output', 'an empty file')
  const out: IpvsConn[] = []
  let proc = false
  let header = false
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i]!
    const lineNo = i + 1
    const t = raw.trim()
    if (t === '' || t === 'IPVS connection entries') continue
    if (/^pro\s+expire\s+state\s+source\s+virtual\s+destination/.test(t)) {
      header = true
      continue
    }
    if (/^Pro\s+FromIP\s+FPrt\s+ToIP\s+TPrt\s+DestIP\s+DPrt\s+State\s+Expires/.test(t)) {
      header = proc = true
      continue
    }
    if (!header) throw new ParseError(file, lineNo, 'the "pro expire state source virtual destination" header of ipvsadm -Lnc', raw)
    const w = t.split(/\s+/)
    const loc: Loc = {file, line: lineNo, text: raw}
    if (proc) {
      // /proc/net/ip_vs_conn: Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires [PEName PEData]
      if (w.length < 9) throw new ParseError(file, lineNo, 'a /proc/net/ip_vs_conn line (9 columns)', raw)
      const ep = (a: string, p: string): {ip: ReturnType<typeof procIp>; port: number} => {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) throw new ParseError(file, lineNo, 'a hexadecimal port', p)
        return {ip: procIp(a, file, lineNo), port: parseInt(p, 16)}
      }
      const virtual = ep(w[3]!, w[4]!)
      out.push({
        proto: w[0]!.toLowerCase(),
        expire: intArg(w[8], file, lineNo, 'the expiry in seconds'),
        state: w[7]!,
        client: ep(w[1]!, w[2]!),
        virtual,
        dest: ep(w[5]!, w[6]!),
        ...fwmarkTemplate(w[0]!, virtual.ip),
        loc,
      })
      continue
    }
    if (w.length < 6) throw new ParseError(file, lineNo, 'an ipvsadm -Lnc line: pro expire state source virtual destination', raw)
    const em = /^(\d+):(\d\d)$/.exec(w[1]!)
    if (!em) throw new ParseError(file, lineNo, 'the expiry as mm:ss', w[1])
    const virtual = endpoint(w[4]!, file, lineNo, 'the virtual address')
    out.push({
      proto: w[0]!.toLowerCase(),
      expire: Number(em[1]) * 60 + Number(em[2]),
      state: w[2]!,
      client: endpoint(w[3]!, file, lineNo, 'the source'),
      virtual,
      dest: endpoint(w[5]!, file, lineNo, 'the destination'),
      ...fwmarkTemplate(w[0]!, virtual.ip),
      loc,
    })
  }
  return out
}

/**
 * The persistence template of an fwmark service: protocol IP (0), the mark in the virtual address field
 * (ip_vs_conn_fill_param_persist: vaddr = fwmark for an fwmark service), e.g. `IP 15:27 NONE 192.168.0.6:0
 * 0.0.0.10:0 10.0.0.17:0`, `IP C0A80006 0000 0000000A 0000 ...`.
 */
function fwmarkTemplate(proto: string, vaddr: IpAddr): {fwmark?: number} {
  return proto.toUpperCase() === 'IP' && vaddr.family === 4 ? {fwmark: Number(vaddr.value)} : {}
}

function procIp(a: string, file: string, line: number) {
  if (/^[0-9A-Fa-f]{8}$/.test(a)) return {family: 4 as const, value: BigInt('0x' + a)}
  const ip = parseIp(a)
  if (!ip) throw new ParseError(file, line, 'an address (8 hex digits or IPv6)', a)
  return ip
}
