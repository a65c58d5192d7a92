// Parser for the output of `iptables-save` / `ip6tables-save` (and what `iptables-restore` reads).
//
// Structure (iptables-restore, iptables/iptables-restore.c): `#` comments and blank lines anywhere; `*table`
// opens a table, `COMMIT` closes it; inside, `:CHAIN POLICY [packets:bytes]` declares a chain (user chains have
// policy `-`) and every other line is one iptables command, of which iptables-save only prints `-A CHAIN ...`
// (optionally prefixed by `[packets:bytes]` with `-c`). `-N CHAIN` and `-P CHAIN POLICY` are accepted too.
// Arguments are tokenised like iptables-restore's add_param_to_argv: whitespace separates, `"` opens/closes a
// quoted part, and inside quotes a backslash makes the next character literal.
//
// Decisions, each pinned by a test:
// - empty input (or only comments) is an empty ruleset: iptables-restore accepts it and changes nothing;
// - a table without COMMIT, a rule outside a table, a rule for a chain that is neither declared nor builtin,
//   a jump to a name that is neither a chain of the table nor a target extension, a garbled line, an option
//   missing its value and an invalid value all throw ParseError with the line;
// - valid syntax this parser does not model (match modules, target extensions, options) is kept as
//   `{kind:'unknown'}` and listed under notModelled: never dropped, never fatal.
import {type Family, type IpAddr, type Prefix, parseIp, parsePrefix} from '../../model/ip.js'
import {
  type AddrType,
  BUILTIN_CHAINS,
  type Counters,
  type CtState,
  type IptablesRuleset,
  type IptChain,
  type IptRule,
  type IptTable,
  type Match,
  type NatRange,
  type PortRange,
  type Target,
} from '../../model/iptables.js'
import {type Loc, type NotModelled, ParseError} from '../../model/source.js'

// ---------------------------------------------------------------------------------------------------------------
// Name tables

/** Protocol names iptables accepts for `-p` (its own list plus /etc/protocols of Debian's netbase). */
const PROTOCOLS: Readonly<Record<string, number>> = {
  all: 0, ip: 0, hopopt: 0, icmp: 1, igmp: 2, ggp: 3, ipencap: 4, st: 5, tcp: 6, egp: 8, igp: 9, pup: 12,
  udp: 17, hmp: 20, 'xns-idp': 22, rdp: 27, 'iso-tp4': 29, dccp: 33, xtp: 36, ddp: 37, 'idpr-cmtp': 38,
  ipv6: 41, 'ipv6-route': 43, 'ipv6-frag': 44, idrp: 45, rsvp: 46, gre: 47, esp: 50, ah: 51, skip: 57,
  'ipv6-icmp': 58, icmpv6: 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, rspf: 73, vmtp: 81, eigrp: 88, ospf: 89,
  'ax.25': 93, ipip: 94, etherip: 97, encap: 98, pim: 103, ipcomp: 108, vrrp: 112, l2tp: 115, isis: 124,
  sctp: 132, fc: 133, mh: 135, 'mobility-header': 135, udplite: 136, 'mpls-in-ip': 137, manet: 138, hip: 139,
  shim6: 140, wesp: 141, rohc: 142, ethernet: 143,
}

/** A few service names (iptables-save always prints numbers; hand-written files sometimes do not). */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21, 'ftp-data': 20, ssh: 22, telnet: 23, smtp: 25, domain: 53, bootps: 67, bootpc: 68, tftp: 69, http: 80,
  www: 80, pop3: 110, sunrpc: 111, ntp: 123, 'netbios-ns': 137, 'netbios-dgm': 138, 'netbios-ssn': 139,
  imap: 143, imap2: 143, snmp: 161, 'snmp-trap': 162, bgp: 179, ldap: 389, https: 443, 'microsoft-ds': 445,
  isakmp: 500, syslog: 514, submission: 587, ldaps: 636, imaps: 993, pop3s: 995, openvpn: 1194, 'ms-sql-s': 1433,
  nfs: 2049, mysql: 3306, 'ipsec-nat-t': 4500, sip: 5060, postgresql: 5432, 'http-alt': 8080,
}

const CT_STATES: ReadonlySet<string> = new Set(['INVALID', 'NEW', 'ESTABLISHED', 'RELATED', 'UNTRACKED', 'SNAT', 'DNAT'])
const CT_STATUSES: ReadonlySet<string> = new Set(['NONE', 'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED'])
const TCP_FLAGS: ReadonlySet<string> = new Set(['SYN', 'ACK', 'FIN', 'RST', 'URG', 'PSH', 'ALL', 'NONE'])
const ADDR_TYPES: ReadonlySet<string> = new Set([
  'UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW',
  'NAT', 'XRESOLVE',
])

/** `--reject-with` names and their aliases (libipt_REJECT.c, libip6t_REJECT.c), mapped to the canonical name. */
const REJECT_WITH_4: Readonly<Record<string, string>> = {
  'icmp-net-unreachable': 'icmp-net-unreachable', 'net-unreach': 'icmp-net-unreachable',
  'icmp-host-unreachable': 'icmp-host-unreachable', 'host-unreach': 'icmp-host-unreachable',
  'icmp-proto-unreachable': 'icmp-proto-unreachable', 'proto-unreach': 'icmp-proto-unreachable',
  'icmp-port-unreachable': 'icmp-port-unreachable', 'port-unreach': 'icmp-port-unreachable',
  'icmp-net-prohibited': 'icmp-net-prohibited', 'net-prohib': 'icmp-net-prohibited',
  'icmp-host-prohibited': 'icmp-host-prohibited', 'host-prohib': 'icmp-host-prohibited',
  'icmp-admin-prohibited': 'icmp-admin-prohibited', 'admin-prohib': 'icmp-admin-prohibited',
  'tcp-reset': 'tcp-reset', 'tcp-rst': 'tcp-reset',
}
const REJECT_WITH_6: Readonly<Record<string, string>> = {
  'icmp6-no-route': 'icmp6-no-route', 'no-route': 'icmp6-no-route',
  'icmp6-adm-prohibited': 'icmp6-adm-prohibited', 'adm-prohibited': 'icmp6-adm-prohibited',
  'icmp6-addr-unreachable': 'icmp6-addr-unreachable', 'addr-unreach': 'icmp6-addr-unreachable',
  'icmp6-port-unreachable': 'icmp6-port-unreachable', 'port-unreach': 'icmp6-port-unreachable',
  'icmp6-policy-fail': 'icmp6-policy-fail', 'policy-fail': 'icmp6-policy-fail',
  'icmp6-reject-route': 'icmp6-reject-route', 'reject-route': 'icmp6-reject-route',
  'tcp-reset': 'tcp-reset', 'tcp-rst': 'tcp-reset',
}

/** ICMP type names (libxt_icmp.c): [type, code] with code undefined for "any code". */
const ICMP4_TYPES: Readonly<Record<string, readonly [number, number | undefined]>> = {
  'echo-reply': [0, undefined], pong: [0, undefined],
  'destination-unreachable': [3, undefined], 'network-unreachable': [3, 0], 'host-unreachable': [3, 1],
  'protocol-unreachable': [3, 2], 'port-unreachable': [3, 3], 'fragmentation-needed': [3, 4],
  'source-route-failed': [3, 5], 'network-unknown': [3, 6], 'host-unknown': [3, 7], 'network-prohibited': [3, 9],
  'host-prohibited': [3, 10], 'TOS-network-unreachable': [3, 11], 'TOS-host-unreachable': [3, 12],
  'communication-prohibited': [3, 13], 'host-precedence-violation': [3, 14], 'precedence-cutoff': [3, 15],
  'source-quench': [4, undefined],
  redirect: [5, undefined], 'network-redirect': [5, 0], 'host-redirect': [5, 1], 'TOS-network-redirect': [5, 2],
  'TOS-host-redirect': [5, 3],
  'echo-request': [8, undefined], ping: [8, undefined],
  'router-advertisement': [9, undefined], 'router-solicitation': [10, undefined],
  'time-exceeded': [11, undefined], 'ttl-exceeded': [11, undefined], 'ttl-zero-during-transit': [11, 0],
  'ttl-zero-during-reassembly': [11, 1],
  'parameter-problem': [12, undefined], 'ip-header-bad': [12, 0], 'required-option-missing': [12, 1],
  'timestamp-request': [13, undefined], 'timestamp-reply': [14, undefined],
  'address-mask-request': [17, undefined], 'address-mask-reply': [18, undefined],
}
/** ICMPv6 type names (libip6t_icmp6.c). */
const ICMP6_TYPES: Readonly<Record<string, readonly [number, number | undefined]>> = {
  'destination-unreachable': [1, undefined], 'no-route': [1, 0], 'communication-prohibited': [1, 1],
  'beyond-scope': [1, 2], 'address-unreachable': [1, 3], 'port-unreachable': [1, 4], 'failed-policy': [1, 5],
  'reject-route': [1, 6],
  'packet-too-big': [2, undefined],
  'time-exceeded': [3, undefined], 'ttl-exceeded': [3, undefined], 'ttl-zero-during-transit': [3, 0],
  'ttl-zero-during-reassembly': [3, 1],
  'parameter-problem': [4, undefined], 'bad-header': [4, 0], 'unknown-header-type': [4, 1], 'unknown-option': [4, 2],
  'echo-request': [128, undefined], ping: [128, undefined], 'echo-reply': [129, undefined], pong: [129, undefined],
  'mld-listener-query': [130, undefined], 'mld-listener-report': [131, undefined],
  'mld-listener-done': [132, undefined], 'mld-listener-reduction': [132, undefined],
  'router-solicitation': [133, undefined], 'router-advertisement': [134, undefined],
  'neighbour-solicitation': [135, undefined], 'neighbor-solicitation': [135, undefined],
  'neighbour-advertisement': [136, undefined], 'neighbor-advertisement': [136, undefined],
  redirect: [137, undefined],
}

/** Targets with a typed model. */
const TYPED_TARGETS: ReadonlyMap<string, string> = interned([
  'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'REJECT', 'LOG', 'DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'MARK', 'CONNMARK',
  'CT', 'NOTRACK', 'TRACE',
])
/**
 * Target extensions of iptables and xtables-addons that are valid but not modelled. A `-j NAME` that is neither
 * a chain of the table nor one of these (nor a typed target) is what iptables-restore rejects ("Chain 'NAME'
 * does not exist").
 */
const EXTENSION_TARGETS: ReadonlySet<string> = new Set([
  'AUDIT', 'CHECKSUM', 'CLASSIFY', 'CLUSTERIP', 'CONNSECMARK', 'DNPT', 'DSCP', 'ECN', 'HL', 'HMARK', 'IDLETIMER', 'LED',
  'MIRROR', 'NETMAP', 'NFLOG', 'NFQUEUE', 'RATEEST', 'SAME', 'SECMARK', 'SET', 'SNPT', 'SYNPROXY', 'TCPMSS',
  'TCPOPTSTRIP', 'TEE', 'TOS', 'TPROXY', 'TTL', 'ULOG', 'ERROR', 'STANDARD', 'BALANCE', 'IPV4OPTSSTRIP', 'ROUTE',
  'IMQ', 'XOR', 'ACCOUNT', 'CHAOS', 'DELUDE', 'DHCPMAC', 'DNETMAP', 'ECHO', 'IPMARK', 'LOGMARK', 'PROTO', 'RAWDNAT',
  'RAWSNAT', 'STEAL', 'SYSRQ', 'TARPIT', 'FULLCONENAT', 'FLOWOFFLOAD', 'ULOG2',
])

/**
 * The letter of a core option, long or short (`--source` and `-s` → 's'), as a character code: the parser dispatches
 * on small integers (a jump table even before the code is optimised) rather than comparing strings one case at a time.
 */
const CORE_LONG: ReadonlyMap<string, number> = new Map(Object.entries({
  '--source': 's', '--src': 's', '--destination': 'd', '--dst': 'd', '--in-interface': 'i', '--out-interface': 'o',
  '--protocol': 'p', '--fragment': 'f', '--fragments': 'f', '--match': 'm', '--jump': 'j', '--goto': 'g',
  '--set-counters': 'c', '--ipv4': '4', '--ipv6': '6',
}).map(([k, v]) => [k, v.charCodeAt(0)]))
/** CORE_SHAPES[length] has bit (third character - 'a') set for the core long options of that length */
const CORE_SHAPES = new Int32Array(32)
for (const k of CORE_LONG.keys()) CORE_SHAPES[k.length]! |= 1 << (k.charCodeAt(2) - 97)
const C_S = 115
const C_D = 100
const C_I = 105
const C_O = 111
const C_P = 112
const C_F = 102
const C_M = 109
const C_J = 106
const C_G = 103
const C_C = 99
const C_4 = 52
const C_6 = 54

// ---------------------------------------------------------------------------------------------------------------
// Tokeniser
//
// The parser never splits a line into strings: a line's arguments are ranges of the text, and only those the model
// keeps or a lookup needs become strings (the common words below are shared constants, not fresh copies).

/** Words of iptables-save output that the parser compares or keeps: returned as shared constants. */
const VOCAB_WORDS: readonly string[] = [
  '!', '-A', '-N', '-P', '-s', '-d', '-i', '-o', '-p', '-f', '-m', '-j', '-g', '-c', '-4', '-6', '--append',
  '--new-chain', '--policy', '--source', '--src', '--destination', '--dst', '--in-interface', '--out-interface',
  '--protocol', '--fragment', '--fragments', '--match', '--jump', '--goto', '--set-counters', '--ipv4', '--ipv6',
  '--sport', '--dport', '--source-port', '--destination-port', '--tcp-flags', '--syn', '--dports', '--sports', '--ports',
  '--destination-ports', '--source-ports', '--state', '--ctstate', '--ctstatus', '--ctproto', '--ctdir', '--ctorigsrc',
  '--ctorigdst', '--ctreplsrc', '--ctrepldst', '--ctorigsrcport', '--ctorigdstport', '--ctreplsrcport', '--ctrepldstport',
  '--mark', '--mode', '--probability', '--every', '--packet', '--comment', '--src-type', '--dst-type',
  '--limit-iface-in', '--limit-iface-out', '--src-range', '--dst-range', '--icmp-type', '--icmpv6-type', '--mac-source',
  '--match-set', '--set', '--limit', '--limit-burst', '--name', '--rcheck', '--update', '--remove', '--seconds',
  '--reap', '--hitcount', '--rttl', '--rsource', '--rdest', '--mask', '--ipvs', '--vproto', '--vaddr', '--vport',
  '--vdir', '--vmethod', '--vportctl', '--reject-with', '--log-prefix', '--log-level', '--log-tcp-sequence',
  '--log-tcp-options', '--log-ip-options', '--log-uid', '--log-macdecode', '--to-destination', '--to-source',
  '--random', '--persistent', '--random-fully', '--to-ports', '--set-xmark', '--set-mark', '--and-mark', '--or-mark',
  '--xor-mark', '--save-mark', '--restore-mark', '--nfmask', '--ctmask', '--notrack', '--helper', '--ctevents',
  '--expevents', '--zone', '--zone-orig', '--zone-reply', '--timeout',
  'random', 'nth', 'src', 'dst', 'src,dst', 'dst,src', 'ORIGINAL', 'REPLY', '[0:0]', 'NEW', 'ESTABLISHED', 'RELATED',
  'INVALID', 'UNTRACKED', 'RELATED,ESTABLISHED', 'ESTABLISHED,RELATED', 'NEW,ESTABLISHED', 'LOCAL', 'UNICAST',
  'icmp-port-unreachable', 'icmp-host-prohibited', 'icmp-admin-prohibited', 'tcp-reset',
]

/** the common words `-X` by the character code of X (split() finds them without comparing strings) */
const DASH_WORDS: (string | undefined)[] = new Array<string | undefined>(128).fill(undefined)

/** slot of (length, first and last character) → the words that have them */
const VOCAB_SLOTS = 2048
const VOCAB: (string | string[] | undefined)[] = new Array<string | string[] | undefined>(VOCAB_SLOTS).fill(undefined)
function vocabSlot(len: number, first: number, last: number): number {
  return (len * 67 + first * 13 + last * 3) & (VOCAB_SLOTS - 1)
}

/** src[a, b) as a string: a shared constant when it is a common word, else a copy (or undefined with onlyCommon). */
function word(src: string, a: number, b: number, onlyCommon: true): string | undefined
function word(src: string, a: number, b: number): string
function word(src: string, a: number, b: number, onlyCommon = false): string | undefined {
  const len = b - a
  if (len > 0 && len <= 24) {
    const cand = VOCAB[(len * 67 + src.charCodeAt(a) * 13 + src.charCodeAt(b - 1) * 3) & (VOCAB_SLOTS - 1)]
    if (cand !== undefined) {
      if (typeof cand === 'string') {
        if (cand.length === len && src.startsWith(cand, a)) return cand
      } else {
        for (let k = 0; k < cand.length; k++) {
          const c = cand[k]!
          if (c.length === len && src.startsWith(c, a)) return c
        }
      }
    }
  }
  return onlyCommon ? undefined : src.slice(a, b)
}

/** true for the characters that separate arguments outside quotes (iptables-restore's add_param_to_argv) */
function isBlank(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13
}

/**
 * The arguments of one line, as ranges of `src`; `str[i]` holds the argument's text when it had quotes (or once it
 * was asked for). Reused from line to line.
 */
class Tokens {
  src = ''
  n = 0
  a = new Int32Array(64)
  b = new Int32Array(64)
  /** 1 when the argument had quotes (its text is str[i], not src[a, b)) */
  q = new Uint8Array(64)
  str: (string | undefined)[] = []
  /** where the next `"` and tab of `text` are (so that each line does not search the rest of the file) */
  private quoteAt = -1
  private tabAt = -1
  private scanned: string | undefined

  private grow(): void {
    const n = this.a.length
    {
      const na = new Int32Array(n * 2)
      na.set(this.a)
      this.a = na
      const nb = new Int32Array(n * 2)
      nb.set(this.b)
      this.b = nb
      const nq = new Uint8Array(n * 2)
      nq.set(this.q)
      this.q = nq
    }
  }

  private push(a: number, b: number, s: string | undefined): void {
    const n = this.n
    if (n === this.a.length) this.grow()
    this.a[n] = a
    this.b[n] = b
    this.q[n] = s === undefined ? 0 : 1
    this.str[n] = s
    this.n = n + 1
  }

  /** Tokenises src[a, b) the way iptables-restore does; false when a quote is left open. */
  split(src: string, a: number, b: number): boolean {
    this.src = src
    this.n = 0
    let special: boolean
    if (src === this.scanned) {
      // positions only move forward (lines are read in order): each search runs once over the text
      if (this.quoteAt < a && this.quoteAt !== Infinity) this.quoteAt = indexOrInf(src, '"', a)
      if (this.tabAt < a && this.tabAt !== Infinity) this.tabAt = indexOrInf(src, '\t', a)
      special = this.quoteAt < b || this.tabAt < b
    } else {
      special = hasWithin(src, '"', a, b) || hasWithin(src, '\t', a, b)
    }
    if (!special) {
      // blanks only separate: runs of them, or leading/trailing ones, make no argument
      let p = a
      let n = 0
      let ta = this.a
      let tb = this.b
      let tq = this.q
      const str = this.str
      while (p < b) {
        let q = src.indexOf(' ', p)
        if (q < 0 || q > b) q = b
        if (q > p) {
          if (n === ta.length) {
            this.grow()
            ta = this.a
            tb = this.b
            tq = this.q
          }
          ta[n] = p
          tb[n] = q
          tq[n] = 0
          // common words are known from the start: comparing them needs no call (word()'s lookup, written out
          // here: as a function of its own it was compiled on its own first, then again inside split and command).
          // No common word starts with a digit: addresses, ports and numbers are not looked up.
          let w: string | undefined
          const len = q - p
          const c0 = src.charCodeAt(p)
          if (len === 2 && c0 === 45 /* - */) {
            // -A, -m, -j, -p, -s, -d...: half of the common words a rule has, known by their second character
            const c1 = src.charCodeAt(p + 1)
            w = c1 < 128 ? DASH_WORDS[c1] : undefined
          } else if (len <= 24 && (c0 < 48 || c0 > 57)) {
            const cand = VOCAB[(len * 67 + c0 * 13 + src.charCodeAt(q - 1) * 3) & (VOCAB_SLOTS - 1)]
            if (cand !== undefined) {
              if (typeof cand === 'string') {
                if (cand.length === len && src.startsWith(cand, p)) w = cand
              } else {
                for (let k = 0; k < cand.length; k++) {
                  const c = cand[k]!
                  if (c.length === len && src.startsWith(c, p)) {
                    w = c
                    break
                  }
                }
              }
            }
          }
          str[n] = w
          n++
        }
        p = q + 1
      }
      this.n = n
      return true
    }
    return this.splitQuoted(src, a, b)
  }

  /** split() of a line with quotes or tabs (kept apart: the common case stays small for the optimiser). */
  private splitQuoted(src: string, a: number, b: number): boolean {
    let i = a
    for (;;) {
      while (i < b && isBlank(src.charCodeAt(i))) i++
      if (i >= b) return true
      const start = i
      let cur: string | undefined
      let run = i
      let quote = false
      for (; i < b; i++) {
        const c = src.charCodeAt(i)
        if (quote) {
          if (c === 92 /* \ */ && i + 1 < b) {
            // the next character is literal: it starts the next run
            cur = (cur ?? '') + src.slice(run, i)
            run = ++i
          } else if (c === 34 /* " */) {
            cur = (cur ?? '') + src.slice(run, i)
            quote = false
            run = i + 1
          }
        } else if (c === 34) {
          cur = (cur ?? '') + src.slice(run, i)
          quote = true
          run = i + 1
        } else if (isBlank(c)) {
          break
        }
      }
      if (quote) return false
      if (cur === undefined) {
        this.push(start, i, undefined)
        this.q[this.n - 1] = 0
        this.str[this.n - 1] = word(src, start, i, true)
      } else {
        this.push(start, i, cur + src.slice(run, i))
      }
    }
  }

  /** Makes split() search `text` for quotes and tabs incrementally (lines of `text` are split in order). */
  follow(text: string): void {
    this.scanned = text
    this.quoteAt = -1
    this.tabAt = -1
  }

  /** The text of argument i. */
  get(i: number): string {
    let s = this.str[i]
    if (s === undefined) {
      // not a common word (split() looked): a copy
      s = this.src.slice(this.a[i]!, this.b[i]!)
      this.str[i] = s
    }
    return s
  }

  /** The text of argument i when it is a common word (a shared constant) or had quotes, else undefined (no copy). */
  word(i: number): string | undefined {
    return this.str[i]
  }

  /** Whether argument i is empty (`""`). */
  empty(i: number): boolean {
    const s = this.str[i]
    return s !== undefined ? s === '' : this.b[i] === this.a[i]
  }

  /** Whether argument i is `lit` (without making a string of it). */
  is(i: number, lit: string): boolean {
    const s = this.str[i]
    if (s !== undefined) return s === lit
    const a = this.a[i]!
    const n = lit.length
    const b = this.b[i]!
    // names that differ mostly differ at the end (KUBE-SEP-A... and KUBE-SEP-B...): the last character first
    return b - a === n && (n === 0 || this.src.charCodeAt(b - 1) === lit.charCodeAt(n - 1)) && this.src.startsWith(lit, a)
  }

  /** The first character code of argument i (NaN when it is empty). */
  first(i: number): number {
    const s = this.str[i]
    if (s !== undefined) return s.charCodeAt(0)
    return this.src.charCodeAt(this.a[i]!)
  }

  /** Whether argument i is exactly `!` (a common word: split() set its text). */
  bang(i: number): boolean {
    return this.str[i] === '!'
  }

  /** Whether argument i is a plain range of src (no quotes): then a[i], b[i] are its text. */
  plain(i: number): boolean {
    return this.q[i] === 0
  }
}

function indexOrInf(s: string, ch: string, from: number): number {
  const i = s.indexOf(ch, from)
  return i < 0 ? Infinity : i
}

function hasWithin(s: string, ch: string, a: number, b: number): boolean {
  const i = s.indexOf(ch, a)
  return i >= 0 && i < b
}

/** Splits one line into arguments the way iptables-restore does; undefined when a quote is left open. */
export function tokenizeIptablesLine(line: string): string[] | undefined {
  const t = new Tokens()
  if (!t.split(line, 0, line.length)) return undefined
  const out: string[] = []
  for (let i = 0; i < t.n; i++) out.push(t.get(i))
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// The model's chains and rules: their Loc is made on first use (from the line's place in the text), and a rule's
// table and chain are read from its chain. Both are stable (the same Loc object on every access) and toJSON prints
// them as plain objects, with the fields in the order of the model's interfaces.
//
// Memory: a kube-proxy dump has a third of its lines declaring chains and the rest rules, and the whole model lives
// to the end of a check, so every field of a Chain or a Rule is paid for ~35,000 or ~100,000 times (and copied twice
// by the young generation's GC). A line's start offset is kept once, in the text's line table (off the JS heap),
// and the chains and rules keep only their line number until their Loc is asked for.

/** The text being parsed, for the Locs of its chains and rules. */
class Source {
  /** starts[n]: where line n (1-based) starts in the text; filled as the lines are read */
  starts: Int32Array

  constructor(
    readonly file: string,
    readonly text: string,
  ) {
    // a first guess from the text's size (a rule line is rarely shorter than 64 characters; line() grows it)
    this.starts = new Int32Array((text.length >>> 6) + 64)
  }

  /** Records where line n starts (lines are read in order). */
  line(n: number, start: number): void {
    if (n >= this.starts.length) {
      const bigger = new Int32Array(this.starts.length * 2)
      bigger.set(this.starts)
      this.starts = bigger
    }
    this.starts[n] = start
  }

  /** The Loc of line n. */
  loc(n: number): Loc {
    const text = this.text
    const start = this.starts[n]!
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    if (end > start && text.charCodeAt(end - 1) === 13) end--
    return {file: this.file, line: n, text: text.slice(start, end)}
  }
}

/** What the chains of one table share: its name, its text, and the goto targets of its chains (rare). */
class TableInfo {
  gotos: Map<Chain, Target> | undefined = undefined

  constructor(
    readonly name: string,
    readonly src: Source,
  ) {}
}

class Chain implements IptChain {
  // declared, not defined as class fields: the constructor's assignments make them (in this order), once
  declare readonly name: string
  declare readonly builtin: boolean
  declare policy: 'ACCEPT' | 'DROP' | undefined
  declare readonly counters: Counters | undefined
  declare rules: IptRule[]
  readonly #t: TableInfo
  /** the line number until the Loc is made */
  #loc: Loc | number
  #jump: Target | undefined
  /** position among its table's chains */
  readonly #ord: number

  constructor(t: TableInfo, name: string, builtin: boolean, policy: 'ACCEPT' | 'DROP' | undefined, counters: Counters | undefined, line: number, ord: number) {
    this.name = name
    this.builtin = builtin
    this.policy = policy
    this.counters = counters
    this.rules = EMPTY_RULES
    this.#t = t
    this.#loc = line
    this.#jump = undefined
    this.#ord = ord
  }

  get table(): string {
    return this.#t.name
  }

  /** Its position among its table's chains (in the order they were declared). */
  ordinal(): number {
    return this.#ord
  }

  get loc(): Loc {
    const l = this.#loc
    if (typeof l !== 'number') return l
    return (this.#loc = this.#t.src.loc(l))
  }

  /** The Loc of a line of this chain's file. */
  locAt(line: number): Loc {
    return this.#t.src.loc(line)
  }

  /** The jump (or goto) target naming this chain, shared by every rule that jumps to it. */
  target(goto: boolean): Target {
    if (goto) {
      const gotos = (this.#t.gotos ??= new Map())
      let g = gotos.get(this)
      if (g === undefined) {
        g = {kind: 'goto', chain: this.name}
        gotos.set(this, g)
      }
      return g
    }
    return (this.#jump ??= {kind: 'jump', chain: this.name})
  }

  toJSON(): unknown {
    return {name: this.name, table: this.table, builtin: this.builtin, policy: this.policy, counters: this.counters, loc: this.loc, rules: this.rules}
  }
}

/** a chain without rules shares this empty list until its first rule (flushRun gives it its own array) */
const EMPTY_RULES: IptRule[] = []

class Rule implements IptRule {
  declare readonly index: number
  declare readonly matches: readonly Match[]
  declare readonly target?: Target
  declare readonly counters?: Counters
  readonly #chain: Chain
  /** the line number until the Loc is made */
  #loc: Loc | number

  constructor(chain: Chain, index: number, line: number, matches: readonly Match[], target: Target | undefined, counters: Counters | undefined) {
    this.index = index
    this.matches = matches
    if (target !== undefined) (this as {target?: Target}).target = target
    if (counters !== undefined) (this as {counters?: Counters}).counters = counters
    this.#chain = chain
    this.#loc = line
  }

  get table(): string {
    return this.#chain.table
  }

  get chain(): string {
    return this.#chain.name
  }

  get loc(): Loc {
    const l = this.#loc
    if (typeof l !== 'number') return l
    return (this.#loc = this.#chain.locAt(l))
  }

  toJSON(): unknown {
    const out: Record<string, unknown> = {table: this.table, chain: this.chain, index: this.index, loc: this.loc, matches: this.matches}
    if (this.target !== undefined) out['target'] = this.target
    if (this.counters !== undefined) out['counters'] = this.counters
    return out
  }
}

/**
 * A table's chains by name, in the order they were declared. Looked up from a range of the text without making a
 * string of it: an open-addressing table of (hash, ordinal + 1) pairs, each hit checked against the name.
 * (A Map of 34,000 names costs several cache misses a lookup; this one about two.)
 */
class ChainIndex {
  readonly order: Chain[] = []
  private slots = new Int32Array(2 * 64)
  private mask = 63
  /** the hash of the name the last find() looked for (add() after a find() that failed does not hash it again) */
  private lastHash = 0
  private lastName: string | undefined = undefined

  /** FNV-1 over pairs of characters, then mixed (a pair only reaches the low bits through the mix) */
  static hash(s: string, a: number, b: number): number {
    let h = 0x811c9dc5 ^ (b - a)
    let i = a
    for (; i + 1 < b; i += 2) h = Math.imul(h ^ (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)), 0x01000193)
    if (i < b) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    return h ^ (h >>> 13)
  }

  /** The chain named s[a, b). */
  find(s: string, a: number, b: number): Chain | undefined {
    // hash() written out: as a small function of its own it was optimised on its own first (then again inside find)
    let h = 0x811c9dc5 ^ (b - a)
    let i = a
    for (; i + 1 < b; i += 2) h = Math.imul(h ^ (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)), 0x01000193)
    if (i < b) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    this.lastHash = h
    this.lastName = undefined
    const len = b - a
    const slots = this.slots
    let slot = (h ^ (h >>> 15)) & this.mask
    for (;;) {
      const e = slots[2 * slot + 1]!
      if (e === 0) return undefined
      if (slots[2 * slot] === h) {
        const c = this.order[e - 1]!
        if (c.name.length === len && s.startsWith(c.name, a)) return c
      }
      slot = (slot + 1) & this.mask
    }
  }

  get(name: string): Chain | undefined {
    const c = this.find(name, 0, name.length)
    this.lastName = name
    return c
  }

  /** Adds c; its name is the one the last find() looked for when `found` says so (its hash is known then). */
  add(c: Chain, found = false): void {
    const h = found || this.lastName === c.name ? this.lastHash : ChainIndex.hash(c.name, 0, c.name.length)
    this.order.push(c)
    if (this.order.length * 2 > this.mask + 1) {
      // grow: twice the slots, every entry again (with the hash it has: no name is hashed twice)
      const old = this.slots
      this.mask = this.mask * 2 + 1
      this.slots = new Int32Array(2 * (this.mask + 1))
      for (let k = 0; k < old.length; k += 2) if (old[k + 1] !== 0) this.put(old[k]!, old[k + 1]!)
    }
    this.put(h, this.order.length)
  }

  private put(h: number, e: number): void {
    const slots = this.slots
    let slot = (h ^ (h >>> 15)) & this.mask
    while (slots[2 * slot + 1] !== 0) slot = (slot + 1) & this.mask
    slots[2 * slot] = h
    slots[2 * slot + 1] = e
  }
}

/**
 * IptTable.chains: a Map (for everything that reads the model) whose entries are the table's ChainIndex, so that
 * 35,000 chains are not put in a second hash table. Read-only: the parser adds chains through the index.
 */
class ChainMap extends Map<string, IptChain> {
  readonly #idx: ChainIndex

  constructor(idx: ChainIndex) {
    super()
    this.#idx = idx
  }

  override get size(): number {
    return this.#idx.order.length
  }

  override get(name: string): IptChain | undefined {
    return typeof name === 'string' ? this.#idx.get(name) : undefined
  }

  override has(name: string): boolean {
    return typeof name === 'string' && this.#idx.get(name) !== undefined
  }

  override forEach(fn: (value: IptChain, key: string, map: Map<string, IptChain>) => void, thisArg?: unknown): void {
    const order = this.#idx.order
    for (let i = 0; i < order.length; i++) fn.call(thisArg, order[i]!, order[i]!.name, this)
  }

  override values(): MapIterator<IptChain> {
    return this.#idx.order.values()
  }

  override keys(): MapIterator<string> {
    return this.#idx.order.map((c) => c.name).values()
  }

  override entries(): MapIterator<[string, IptChain]> {
    return this.#idx.order.map((c): [string, IptChain] => [c.name, c]).values()
  }

  override [Symbol.iterator](): MapIterator<[string, IptChain]> {
    return this.entries()
  }

  override set(): this {
    throw new TypeError('the chains of a parsed table are read-only')
  }

  override delete(): boolean {
    throw new TypeError('the chains of a parsed table are read-only')
  }

  override clear(): void {
    throw new TypeError('the chains of a parsed table are read-only')
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The parser's per-rule state (reused from rule to rule)

interface MTable {
  name: string
  loc: Loc
  chains: ChainMap
}

/** A `-j NAME` that names no chain yet; resolved at COMMIT. */
interface Pending {
  /** set once the rule is built */
  rule?: Rule
  name: string
  goto: boolean
  args: string[]
}

/** One `-m NAME` (or an implicit protocol module) of the rule being parsed. */
interface ModInst {
  name: string
  /** MODULE_IDS of a known module, 0 for an unknown one */
  id: number
  known: boolean
  /** the module's matches so far: out[0, nOut) (the array is reused, never shortened: no garbage per rule) */
  out: Match[]
  nOut: number
  /** the arguments of an unknown module */
  args: string[]
  /** module-specific state of addrtype, limit, recent and ipvs: the match itself, finished at the end of the rule */
  st: Record<string, unknown> | undefined
  /** statistic: an option was given; its mode, negation, probability, every and packet */
  stat: boolean
  statMode: string | undefined
  statNeg: boolean
  statProb: number | undefined
  statEvery: number | undefined
  statPacket: number | undefined
}

/** The `-j` target of the rule being parsed. */
interface TgtInst {
  name: string
  typed: boolean
  /** an untyped target's arguments (kept in the model) */
  args: string[]
  /** a typed target's arguments, as indices of the line's arguments (made strings only if the model keeps them) */
  argIdx: Int32Array
  nArg: number
  pending: boolean
  /** an option this parser does not know: the target becomes unknown */
  unknownOpt: string | undefined
  rejectWith: string | undefined
  logPrefix: string | undefined
  logLevel: string | undefined
  logFlags: string[] | undefined
  /** DNAT/SNAT ranges: to[0, nTo) */
  to: NatRange[]
  nTo: number
  random: boolean
  persistent: boolean
  randomFully: boolean
  ports: [number, number] | undefined
  op: string | undefined
  value: number
  mask: number
  nfmask: number | undefined
  ctmask: number | undefined
  notrack: boolean
}

function newMod(): ModInst {
  return {name: '', id: 0, known: false, out: [], nOut: 0, args: EMPTY_ARGS, st: undefined, stat: false, statMode: undefined, statNeg: false, statProb: undefined, statEvery: undefined, statPacket: undefined}
}

const MAX32 = 0xffffffff
// ids of the known match modules (MODULE_IDS)
const M_TCP = 1
const M_UDP = 2
const M_SCTP = 3
const M_UDPLITE = 4
const M_DCCP = 5
const M_MULTIPORT = 6
const M_STATE = 7
const M_CONNTRACK = 8
const M_MARK = 9
const M_CONNMARK = 10
const M_STATISTIC = 11
const M_COMMENT = 12
const M_ADDRTYPE = 13
const M_IPRANGE = 14
const M_ICMP = 15
const M_ICMP6 = 16
const M_MAC = 17
const M_SET = 18
const M_LIMIT = 19
const M_RECENT = 20
const M_IPVS = 21
const M_RPFILTER = 22
/** addresses remembered per kind of address match (see Parser.addrMatches) */
const ADDR_CACHE = 2048
/** slots per kind of the IPv4 address cache (see Parser.addrV) */
const ADDR_SLOTS = 1024
/** name → the same name as a constant, so that the model shares one string instead of one per line */
function interned(names: readonly string[]): ReadonlyMap<string, string> {
  return new Map(names.map((n) => [n, n]))
}
const ZERO_COUNTERS: Counters = {packets: 0, bytes: 0}
const EMPTY: Match[] = []
const EMPTY_ARGS: string[] = []
const EMPTY_MATCHES: readonly Match[] = []
const SYN_MASK: readonly string[] = ['SYN', 'RST', 'ACK', 'FIN']
const SYN_COMP: readonly string[] = ['SYN']
const SIMPLE_TARGETS: Readonly<Record<string, Target>> = {
  ACCEPT: {kind: 'ACCEPT'}, DROP: {kind: 'DROP'}, RETURN: {kind: 'RETURN'}, QUEUE: {kind: 'QUEUE'},
  NOTRACK: {kind: 'NOTRACK'}, TRACE: {kind: 'TRACE'},
}

// ---------------------------------------------------------------------------------------------------------------

class Parser {
  private readonly tables = new Map<string, MTable>()
  private readonly notModelled: NotModelled[] = []
  private readonly src: Source
  private ruleCount = 0
  private backend: 'legacy' | 'nf_tables' | undefined
  private readonly incompatible: string[] = []
  private readonly tainted: string[] = []
  private legacyPresent = false
  private table: MTable | undefined
  /** the builtin chain names of the open table */
  private builtins: readonly string[] = []
  private pending: Pending[] = []
  // the current line: number, where it starts and ends in the text (without its CR), its text once asked for
  private lineNo = 0
  private lineStart = 0
  private lineEnd = 0
  private lineStr: string | undefined
  // per-rule state
  private readonly tk = new Tokens()
  private pos = 0
  private rTarget: Target | undefined
  private rCounters: Counters | undefined
  private rPending: Pending | undefined
  /** the rule carries -4/-6 of the other family (`-6` in an IPv4 parse): iptables-restore ignores it */
  private otherFamily: '-4' | '-6' | undefined
  private proto: string | undefined
  private tgt: TgtInst | undefined
  private negUsed = false
  /** the matches of the rule being parsed: scratch[0, nm) (reused, never shortened) */
  private readonly scratch: Match[] = []
  private nm = 0
  private readonly mods: ModInst[] = []
  private nMods = 0
  private readonly tgtInst: TgtInst = {
    name: '', typed: false, args: EMPTY_ARGS, argIdx: new Int32Array(16), nArg: 0, pending: false, unknownOpt: undefined,
    rejectWith: undefined, logPrefix: undefined, logLevel: undefined, logFlags: undefined, to: [], nTo: 0, random: false, persistent: false,
    randomFully: false, ports: undefined, op: undefined, value: 0, mask: 0, nfmask: undefined, ctmask: undefined,
    notrack: false,
  }
  /**
   * The rules of the chain being filled, not yet in its rules array: iptables-save prints a chain's rules
   * together, so each chain gets one array of the right size.
   */
  private runChain: Chain | undefined
  /** the open table's chains by name and in the order they were declared */
  private idx = new ChainIndex()
  /** the open table's name and text, shared by its chains */
  private tinfo: TableInfo | undefined
  private readonly runRules: Rule[] = []
  /** chains of the open table that have rules */
  private filled = 0
  private runN = 0
  /** the chain of the last `-j CHAIN` (kube-proxy jumps to KUBE-MARK-MASQ again and again) */
  private lastJump: Chain | undefined
  // Immutable values shared between rules: most rules of a big dump jump to a handful of chains, match the same
  // protocol or the same statistic probabilities. Sharing them keeps the model small (and the GC quiet).
  private readonly protoMatches = new Map<string, Match>()
  private readonly randomMatches = new Map<number, Match>()
  /** one-element match lists of shared matches, shared too (`[-p tcp]`, `[statistic 0.5]`) */
  private readonly singles = new Map<Match, Match[]>()
  private readonly rejects = new Map<string, Target>()
  /**
   * `-s/-d TEXT` matches by their text: [src, dst, ! src, ! dst] (a firewall names the same networks again and
   * again). Each map holds at most ADDR_CACHE texts: a kube-proxy dump names ~35,000 addresses once each, and
   * growing a map that big costs more than it saves. IPv4 addresses in the usual form are looked up by value
   * (value * 64 + prefix length) in addrByValue, without making a string of them.
   */
  private readonly addrMatches: Map<string, Match>[] = [new Map(), new Map(), new Map(), new Map()]
  /**
   * IPv4 `-s/-d` in the usual form are looked up by value instead, without making a string of them: a direct-mapped
   * cache of ADDR_SLOTS slots per kind (value, length, match), which costs nothing when every address is new.
   */
  private readonly addrV = new Int32Array(4 * ADDR_SLOTS)
  private readonly addrL = new Int32Array(4 * ADDR_SLOTS).fill(-1)
  private readonly addrM: (Match | undefined)[] = new Array<Match | undefined>(4 * ADDR_SLOTS).fill(undefined)
  /** `--sport/--dport TEXT` matches per module by their text: [src, dst, ! src, ! dst] (and by number) */
  private readonly portMatches = new Map<string, Map<string, Match>[]>()
  /** by module id (the protocol modules: tcp, udp, sctp, udplite, dccp) */
  private readonly portByNumber: (Map<number, Match>[] | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined]
  private readonly commentMatches = new Map<string, Match>()
  /** `--state/--ctstate TEXT` matches by module, negation and text */
  private readonly ctMatches = new Map<string, Match>()
  /** `--tcp-flags MASK COMP` lists by their text (checked once), and the matches by negation and both texts */
  private readonly flagLists = new Map<string, string[]>()
  private readonly flagMatches = new Map<string, Match>()
  /** the BigInt of the last IPv4 address parsed (a rule's -s is often the next rule's DNAT address) */
  private lastV4 = 0
  private haveV4 = false
  private lastV4Big = 0n

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly family: Family,
  ) {
    this.src = new Source(file, text)
  }

  run(): IptablesRuleset {
    const text = this.text
    const n = text.length
    const tk = this.tk
    tk.follow(text)
    let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0
    let lastContent = 0
    while (pos < n) {
      let end = text.indexOf('\n', pos)
      if (end < 0) end = n
      const start = pos
      pos = end + 1
      this.src.line(++this.lineNo, start)
      if (end > start && text.charCodeAt(end - 1) === 13) end--
      this.lineStart = start
      this.lineEnd = end
      this.lineStr = undefined
      if (end === start) continue
      // the line as the commands read it: without leading and trailing blanks when it starts with one
      let src = text
      let a = start
      let b = end
      let c = text.charCodeAt(start)
      if (c === 32 || c === 9) {
        src = text.slice(start, end).trim()
        a = 0
        b = src.length
        if (b === 0) continue
        c = src.charCodeAt(0)
      }
      lastContent = this.lineNo
      if (c === 35 /* # */) {
        if (this.backend === undefined && src.startsWith('# Generated by ', a)) this.header(src.slice(a, b))
        else if (src.startsWith('# Warning: ', a) || src.startsWith('# Table ', a)) this.notice(src.slice(a, b))
        continue
      }
      if (c === 45 /* - */ || c === 91 /* [ */) this.command(src, a, b)
      else if (c === 58 /* : */) this.chainLine(src, a, b)
      else {
        const line = src.slice(a, b)
        if (c === 42 /* * */) this.tableLine(line)
        else if (line === 'COMMIT' || (line.startsWith('COMMIT') && line.slice(6).trim() === '')) this.commit()
        else throw this.err(this.table ? 'a rule (-A), a chain (:NAME POLICY) or COMMIT' : 'a table (*filter, *nat, ...) or a # comment', line)
      }
    }
    if (this.table) {
      // truncated: point at the last line with content, where the missing COMMIT should follow
      throw new ParseError(this.file, lastContent, `COMMIT to end table ${this.table.name} (the file looks truncated)`, 'end of file')
    }
    const tables = new Map<string, IptTable>()
    for (const [k, t] of this.tables) tables.set(k, t as IptTable)
    const out: {-readonly [K in keyof IptablesRuleset]: IptablesRuleset[K]} = {
      family: this.family,
      file: this.file,
      tables,
      notModelled: this.notModelled,
      ruleCount: this.ruleCount,
    }
    if (this.backend) out.backend = this.backend
    if (this.incompatible.length > 0) out.incompatibleTables = this.incompatible
    if (this.tainted.length > 0) out.taintedTables = this.tainted
    if (this.legacyPresent) out.legacyTablesPresent = true
    return out
  }

  /**
   * What iptables-nft-save says about rules it does not print (iptables/nft.c, xtables-save.c): the legacy
   * backend's tables (`nft_check_xt_legacy`, on stderr, which `2>&1` puts at the start, the end or, with stdout
   * buffered, in the middle of a line: see parseIptablesSave) and nf_tables tables it cannot express.
   */
  private notice(line: string): void {
    const legacy = LEGACY_WARNING.exec(line)
    if (legacy) {
      this.legacyPresent = true
      const p = legacy[1]!
      const save = p === 'ip' ? 'save `iptables-legacy-save` as iptables-legacy-save.txt beside it' : `see them with \`${p}tables-legacy-save\` (not read by lvsdoctor)`
      this.report(`${p}tables-legacy tables are present on this host and are not in this dump (rules of the legacy backend, which the kernel runs too): ${save}`)
      return
    }
    // iptables 1.8.10+: the table is printed, but base chains nft added to it (another name or priority) are not
    const tainted = /^# Table `([^']+)' contains incompatible base-chains, use 'nft' tool to list them\.?\s*$/.exec(line)
    if (tainted) {
      if (!this.tainted.includes(tainted[1]!)) this.tainted.push(tainted[1]!)
      this.report(`table ${tainted[1]}: iptables-nft-save left out base chains of it that iptables cannot express (added with nft), so their rules are not in this dump: \`nft -j list ruleset\` lists them`)
      return
    }
    const incompatible = /^# Table `([^']+)' is incompatible, use 'nft' tool\.?\s*$/.exec(line)
    if (incompatible) {
      const name = incompatible[1]!
      if (!this.incompatible.includes(name)) this.incompatible.push(name)
      this.report(`table ${name}: iptables-nft-save could not print it (it holds nf_tables rules iptables cannot express), so none of its rules are in this dump: give \`nft -j list ruleset\` (nft-ruleset.json) beside it`)
    }
  }

  /** The raw text of the current line (without its CR). */
  private get lineText(): string {
    return (this.lineStr ??= this.text.slice(this.lineStart, this.lineEnd))
  }

  private err(expected: string, found?: string): ParseError {
    return new ParseError(this.file, this.lineNo, expected, found)
  }

  private loc(): Loc {
    return {file: this.file, line: this.lineNo, text: this.lineText}
  }

  private report(what: string): void {
    this.notModelled.push({file: this.file, line: this.lineNo, what})
  }

  private header(line: string): void {
    if (line.includes('(nf_tables)') || /# Generated by (ip6?tables-nft-save|xtables-save|ip6?tables-compat-save)/.test(line)) {
      this.backend = 'nf_tables'
    } else if (line.includes('(legacy)') || /# Generated by ip6?tables-(legacy-)?save\b/.test(line)) {
      // iptables-save before 1.8 had only the legacy backend; 1.8's legacy variant prints the plain name too,
      // while its nft variant adds "(nf_tables)".
      this.backend = 'legacy'
    }
  }

  // --- structure -----------------------------------------------------------------------------------------------

  private tableLine(line: string): void {
    const name = line.slice(1).trim()
    if (this.table) throw this.err(`COMMIT to end table ${this.table.name} before a new table`, line)
    if (name === '' || /\s/.test(name)) throw this.err('a table name after *', line)
    if (this.tables.has(name)) throw this.err(`each table once (table ${name} appeared before)`, line)
    this.idx = new ChainIndex()
    this.tinfo = new TableInfo(name, this.src)
    const t: MTable = {name, loc: this.loc(), chains: new ChainMap(this.idx)}
    this.tables.set(name, t)
    this.table = t
    this.builtins = BUILTIN_CHAINS[name] ?? []
    this.runChain = undefined
    this.runN = 0
    this.lastJump = undefined
  }

  private commit(): void {
    const t = this.table
    if (!t) throw this.err('a table (*filter, *nat, ...) before COMMIT', 'COMMIT')
    this.flushRun()
    this.runChain = undefined
    for (const p of this.pending) this.resolvePending(t, p)
    this.pending = []
    this.table = undefined
    this.lastJump = undefined
    this.runRules.length = 0
    // a chain without rules gets an array of its own (the model's arrays are the caller's); when every chain has
    // rules (flushRun counts them) there is none to look for
    const order = this.idx.order
    if (this.filled < order.length) this.ownEmptyRules(order)
    this.filled = 0
    this.idx = new ChainIndex()
  }

  private ownEmptyRules(order: readonly Chain[]): void {
    for (let k = 0; k < order.length; k++) if (order[k]!.rules === EMPTY_RULES) order[k]!.rules = []
  }

  /** Moves the rules of the chain being filled into its rules array. */
  private flushRun(): void {
    const c = this.runChain
    const k = this.runN
    if (!c || k === 0) return
    if (c.rules === EMPTY_RULES) {
      c.rules = this.runRules.slice(0, k)
      this.filled++
    } else {
      for (let i = 0; i < k; i++) c.rules.push(this.runRules[i]!)
    }
    this.runN = 0
  }

  private resolvePending(t: MTable, p: Pending): void {
    const c = this.idx.get(p.name)
    if (c) {
      if (p.args.length > 0) throw this.pendingErr(p, `no options after a jump to chain ${p.name}`)
      ;(p.rule as {target?: Target}).target = c.target(p.goto)
      return
    }
    if (p.goto) throw this.pendingErr(p, `a chain declared in table ${t.name} after -g (no chain ${p.name})`)
    throw this.pendingErr(p, `a chain declared in table ${t.name} or a target extension after -j (no chain or target ${p.name})`)
  }

  private pendingErr(p: Pending, expected: string): ParseError {
    const loc = p.rule!.loc
    return new ParseError(this.file, loc.line, expected, loc.text)
  }

  /** A new chain of the open table; `found` when the last lookup in the index was for its name (and failed). */
  private newChain(name: string, builtin: boolean, policy: 'ACCEPT' | 'DROP' | undefined, counters: Counters | undefined, found = false): Chain {
    const idx = this.idx
    const c = new Chain(this.tinfo!, name, builtin, policy, counters, this.lineNo, idx.order.length)
    idx.add(c, found)
    return c
  }

  private chainLine(src: string, a: number, b: number): void {
    const t = this.table
    if (!t) throw this.err('a table (*filter, *nat, ...) before a chain declaration', src.slice(a, b))
    // the usual user chain `:NAME - [0:0]` (a third of a kube-proxy dump's lines), read without the tokeniser
    let sp = a + 1
    for (; sp < b; sp++) {
      const c = src.charCodeAt(sp)
      if (c === 32 || c === 34 /* " */ || c === 9) break
    }
    if (sp > a + 1 && b - sp === 8 && src.charCodeAt(sp) === 32 && src.startsWith(' - [0:0]', sp)) {
      // looked up in place: the name is hashed once, for the lookup and the index
      const had = this.idx.find(src, a + 1, sp)
      const name = src.slice(a + 1, sp)
      if (had) throw this.err(`each chain declared once (chain ${name} was declared before)`, src.slice(a, b))
      this.newChain(name, this.builtins.includes(name), undefined, ZERO_COUNTERS, true)
      return
    }
    const tk = this.tk
    if (!tk.split(src, a + 1, b) || tk.n < 2 || tk.n > 3 || tk.get(0) === '') {
      throw this.err(':CHAIN POLICY [packets:bytes]', src.slice(a, b))
    }
    const name = tk.get(0)
    const counters = tk.n === 3 ? this.counters(tk.get(2)) : undefined
    if (this.idx.get(name)) throw this.err(`each chain declared once (chain ${name} was declared before)`, src.slice(a, b))
    const builtin = this.builtins.includes(name)
    let policy: 'ACCEPT' | 'DROP' | undefined
    if (tk.is(1, '-')) {
      // a user chain (or a builtin one without policy)
    } else {
      const pol = tk.get(1)
      if (pol === 'ACCEPT' || pol === 'DROP') {
        if (builtin) policy = pol
        else this.report(`policy ${pol} on user chain ${name} (ignored: user chains have no policy)`)
      } else {
        throw this.err('a chain policy ACCEPT, DROP or -', pol)
      }
    }
    this.newChain(name, builtin, policy, counters)
  }

  private counters(tok: string): Counters {
    if (tok === '[0:0]') return ZERO_COUNTERS
    const colon = tok.indexOf(':')
    const last = tok.length - 1
    if (tok.charCodeAt(0) === 91 && tok.charCodeAt(last) === 93 && colon > 0) {
      const p = tok.slice(1, colon)
      const b = tok.slice(colon + 1, last)
      if (p === '0' && b === '0') return ZERO_COUNTERS
      if (isDigits(p) && isDigits(b)) return {packets: Number(p), bytes: Number(b)}
    }
    throw this.err('counters [packets:bytes]', tok)
  }

  private command(src: string, a: number, b: number): void {
    const t = this.table
    const tk = this.tk
    if (!tk.split(src, a, b)) throw this.err('a closing double quote', src.slice(a, b))
    let i = 0
    let counters: Counters | undefined
    if (tk.first(0) === 91 /* [ */) {
      counters = this.counters(tk.get(0))
      i = 1
    }
    if (!t) throw this.err('a table (*filter, *nat, ...) before the first rule', src.slice(a, b))
    // (common words are shared constants: split() set them, quoted or not, as is() would compare them)
    const cmd0 = i < tk.n ? tk.str[i] : undefined
    if (cmd0 === '-A' || cmd0 === '--append') {
      // iptables-save groups rules by chain: most lines name the chain of the line before
      let chain: Chain | undefined
      const rc = this.runChain
      if (i + 1 < tk.n && rc !== undefined && rc.name !== '' && tk.is(i + 1, rc.name)) {
        chain = rc
      } else if (i + 1 < tk.n && (chain = this.nextInOrder(i + 1)) !== undefined) {
        // the chain declared after the last one (iptables-save prints the rules in the order of the chains)
      } else {
        if (i + 1 >= tk.n || tk.empty(i + 1)) throw this.err('a chain name after -A', src.slice(a, b))
        chain = tk.plain(i + 1) ? this.idx.find(tk.src, tk.a[i + 1]!, tk.b[i + 1]!) : this.idx.get(tk.get(i + 1))
        if (!chain) {
          const chainName = tk.get(i + 1)
          if (!this.builtins.includes(chainName)) {
            throw this.err(`a chain declared in table ${t.name} before its rules (no chain ${chainName})`, src.slice(a, b))
          }
          // builtin chains exist without a declaration; their policy stays unknown
          chain = this.newChain(chainName, true, undefined, undefined)
        }
      }
      this.ruleCount++
      this.rTarget = undefined
      this.rCounters = counters
      this.rPending = undefined
      this.otherFamily = undefined
      // -4/-6 of the other family anywhere in the rule: iptables(8) ignores the whole rule, its addresses are not
      // even parsed (xtables parses them after the options), so the rule is looked at no further
      // (those words are common words: split() made them shared constants, compared here as such)
      const o0 = this.family === 4 ? '-6' : '-4'
      const o1 = this.family === 4 ? '--ipv6' : '--ipv4'
      const str = tk.str
      for (let k = i + 2; k < tk.n; k++) {
        const w = str[k]
        if ((w === o0 || w === o1) && tk.plain(k)) {
          this.otherFamily = o0
          break
        }
      }
      const matches = this.otherFamily === undefined ? this.parseRule(i + 2) : EMPTY_MATCHES
      if (this.otherFamily !== undefined) {
        this.otherFamilyRule()
        return
      }
      if (chain !== this.runChain) {
        this.flushRun()
        this.runChain = chain
      }
      const index = chain.rules.length + this.runN + 1
      const rule = new Rule(chain, index, this.lineNo, matches, this.rTarget, this.rCounters)
      const pending = this.rPending as Pending | undefined
      if (pending) pending.rule = rule
      this.runRules[this.runN++] = rule
      return
    }
    this.otherCommand(t, i, counters !== undefined, src, a, b)
  }

  /** A rule with -4/-6 of the other family. */
  private otherFamilyRule(): void {
    // (a shared rules file for both iptables-restore and ip6tables-restore): the kernel never gets this rule
    const flag = this.otherFamily
    this.report(`${flag}: iptables-restore leaves out a rule for the other address family (iptables(8) -4/-6: ignored, not an error), so it is not in the ruleset`)
    this.ruleCount--
  }

  /** A command other than -A (argument i): -N, -P or an error. */
  private otherCommand(t: MTable, i: number, counters: boolean, src: string, a: number, b: number): void {
    const tk = this.tk
    const cmd = i < tk.n ? tk.get(i) : undefined
    if (counters) throw this.err('-A after a [packets:bytes] prefix', cmd)
    if (cmd === '-N' || cmd === '--new-chain') {
      const name = i + 1 < tk.n ? tk.get(i + 1) : undefined
      if (name === undefined || tk.n !== i + 2) throw this.err('-N CHAIN', src.slice(a, b))
      if (this.idx.get(name)) throw this.err(`each chain declared once (chain ${name} was declared before)`, src.slice(a, b))
      this.newChain(name, this.builtins.includes(name), undefined, undefined)
      return
    }
    if (cmd === '-P' || cmd === '--policy') {
      const name = i + 1 < tk.n ? tk.get(i + 1) : undefined
      const pol = i + 2 < tk.n ? tk.get(i + 2) : undefined
      if (name === undefined || pol === undefined || tk.n !== i + 3) throw this.err('-P CHAIN POLICY', src.slice(a, b))
      if (!this.builtins.includes(name)) throw this.err(`a builtin chain of table ${t.name} after -P`, name)
      if (pol !== 'ACCEPT' && pol !== 'DROP') throw this.err('a chain policy ACCEPT or DROP', pol)
      const c = this.idx.get(name)
      if (c) c.policy = pol
      else this.newChain(name, true, pol, undefined)
      return
    }
    throw this.err('-A CHAIN (iptables-save prints only -A rules; -N and -P are accepted)', src.slice(a, b))
  }

  /** The chain named by argument i when it is one of the next few declared after the chain being filled. */
  private nextInOrder(i: number): Chain | undefined {
    const order = this.idx.order
    const from = this.runChain === undefined ? 0 : this.runChain.ordinal() + 1
    const to = Math.min(order.length, from + 3)
    for (let k = from; k < to; k++) {
      const name = order[k]!.name
      // (an empty name is refused after -A, even for a chain -N made with it)
      if (name !== '' && this.tk.is(i, name)) return order[k]
    }
    return undefined
  }

  // --- one rule ------------------------------------------------------------------------------------------------

  /** The index of the value after option `opt` (an error when the line ends). */
  private nextIdx(opt: string): number {
    if (this.pos >= this.tk.n) throw this.err(`a value after ${opt}`, this.lineText)
    return this.pos++
  }

  private next(opt: string): string {
    return this.tk.get(this.nextIdx(opt))
  }

  /** Old syntax `--opt ! value`: a `!` right after the option inverts it. */
  private postNeg(neg: boolean): boolean {
    if (this.pos < this.tk.n && this.tk.str[this.pos] === '!') {
      if (neg) throw this.err('a single ! per option', this.lineText)
      this.pos++
      return true
    }
    return neg
  }

  private parseRule(start: number): Match[] {
    const tk = this.tk
    const nt = tk.n
    this.pos = start
    this.nMods = 0
    this.proto = undefined
    this.tgt = undefined
    this.nm = 0
    let mod: ModInst | undefined
    let inTarget = false
    const str = tk.str
    while (this.pos < nt) {
      let i = this.pos++
      let neg = false
      let s = str[i]
      if (s === '!') {
        neg = true
        if (this.pos >= nt) throw this.err('an option after !', this.lineText)
        i = this.pos++
        s = str[i]
        if (s === '!') throw this.err('a single ! per option', this.lineText)
      }
      if ((s !== undefined ? s.charCodeAt(0) : tk.src.charCodeAt(tk.a[i]!)) !== 45 /* - */) {
        if (mod && !mod.known && !inTarget) {
          if (neg) mod.args.push('!')
          mod.args.push(tk.get(i))
          continue
        }
        const tg = this.tgt as TgtInst | undefined
        if (inTarget && tg && !tg.typed) {
          if (neg) tg.args.push('!')
          tg.args.push(tk.get(i))
          continue
        }
        throw this.err('an option (-s, -p, -m, -j, --dport, ...)', tk.get(i))
      }
      const tok = s !== undefined ? s : tk.get(i)
      const len = tok.length
      // a long option is looked up only when its length and third character are those of a core option's: the
      // others (--dport, --mode, --to-destination, ...) are none of them
      const core = len === 2 ? tok.charCodeAt(1)
        : len < 32 && (CORE_SHAPES[len]! & (1 << (tok.charCodeAt(2) - 97))) !== 0 ? CORE_LONG.get(tok) ?? 0 : 0
      switch (core) {
        case C_S:
        case C_D: {
          neg = this.postNeg(neg)
          this.addM(this.addrMatch(core === C_S ? 'src' : 'dst', neg, this.nextIdx(tok), tok))
          continue
        }
        case C_I:
        case C_O: {
          neg = this.postNeg(neg)
          const name = this.next(tok)
          this.addM({kind: 'iface', dir: core === C_I ? 'in' : 'out', neg, name})
          continue
        }
        case C_P: {
          neg = this.postNeg(neg)
          const v = this.next(tok)
          let pm = neg ? undefined : this.protoMatches.get(v)
          if (pm) {
            this.proto = (pm as {name: string}).name.toLowerCase()
            this.addM(pm)
            continue
          }
          const lower = v.toLowerCase()
          let proto: number | 'all'
          if (lower === 'all') proto = 'all'
          else if (isDigits(v) && Number(v) <= 255) proto = Number(v) === 0 ? 'all' : Number(v)
          else if (Object.hasOwn(PROTOCOLS, lower)) proto = PROTOCOLS[lower]! === 0 ? 'all' : PROTOCOLS[lower]!
          else throw this.err('a protocol name or number after -p', v)
          this.proto = neg ? undefined : lower
          pm = {kind: 'proto', neg, proto, name: v}
          if (!neg) {
            this.protoMatches.set(v, pm)
            this.singles.set(pm, [pm])
          }
          this.addM(pm)
          continue
        }
        case C_F: {
          neg = this.postNeg(neg)
          this.addM({kind: 'fragment', neg})
          continue
        }
        case C_M: {
          if (neg) throw this.err('no ! before -m', this.lineText)
          const name = this.next(tok)
          mod = this.openModule(name)
          inTarget = false
          continue
        }
        case C_J:
        case C_G: {
          if (neg) throw this.err(`no ! before ${tok}`, this.lineText)
          if (this.tgt || this.rTarget) throw this.err('a single -j or -g per rule', this.lineText)
          this.openTarget(this.nextIdx(tok), core === C_G)
          inTarget = true
          mod = undefined
          continue
        }
        case C_C: {
          const p = this.next(tok)
          if (tok === '--set-counters' && p.includes(':')) {
            this.rCounters = this.counters(`[${p}]`)
          } else {
            const b = this.next(tok)
            if (!isDigits(p) || !isDigits(b)) throw this.err('-c PACKETS BYTES', `${p} ${b}`)
            this.rCounters = {packets: Number(p), bytes: Number(b)}
          }
          continue
        }
        case C_4:
        case C_6:
          // iptables(8): a rule with -6 given to iptables-restore (-4 to ip6tables-restore) is silently ignored
          if ((core === C_4 ? 4 : 6) !== this.family) this.otherFamily = core === C_4 ? '-4' : '-6'
          continue
      }
      if (tok.length === 2) throw this.err('an iptables option (-s, -d, -i, -o, -p, -f, -m, -j, -g)', tok)
      // an extension option: the target's, the current module's, an earlier module's, or an implicit protocol's
      this.negUsed = false
      const tg = this.tgt as TgtInst | undefined
      if (inTarget) {
        if (!tg) {
          const t = this.rTarget
          throw this.err(`no options after a jump to chain ${t && 'chain' in t ? t.chain : ''}`, tok)
        }
        this.targetOption(tg, tok, i, neg)
        continue
      }
      if (mod && !mod.known) {
        if (neg) mod.args.push('!')
        mod.args.push(tok)
        continue
      }
      let handled = false
      if (mod) handled = this.moduleOption(mod, tok, neg)
      if (!handled) {
        for (let k = this.nMods - 1; k >= 0 && !handled; k--) {
          const other = this.mods[k]!
          if (other !== mod && other.known) handled = this.moduleOption(other, tok, neg)
        }
      }
      if (!handled && this.proto !== undefined) {
        const implicit = Object.hasOwn(IMPLICIT, this.proto) ? IMPLICIT[this.proto] : undefined
        if (implicit && !this.hasModule(implicit)) {
          const inst = this.openModule(implicit)
          handled = this.moduleOption(inst, tok, neg)
        }
      }
      if (!handled) {
        if (!mod) throw this.err('-m MODULE before a match option (or -p for a protocol option)', tok)
        this.unknownModuleOption(mod, tok, neg)
        continue
      }
      if (neg && !this.negUsed) throw this.err(`an option that can be negated after ! (${tok} cannot)`, this.lineText)
    }
    // finish: modules in order, then the target
    for (let k = 0; k < this.nMods; k++) this.closeModule(this.mods[k]!)
    const tg = this.tgt as TgtInst | undefined
    if (tg) this.closeTarget(tg)
    const nm = this.nm
    if (nm === 0) return EMPTY
    if (nm === 1) {
      const one = this.singles.get(this.scratch[0]!)
      if (one) return one
    }
    return this.scratch.slice(0, nm)
  }

  private addM(x: Match): void {
    this.scratch[this.nm++] = x
  }

  private out(mod: ModInst, x: Match): void {
    mod.out[mod.nOut++] = x
  }

  private hasModule(name: string): boolean {
    for (let k = 0; k < this.nMods; k++) if (this.mods[k]!.name === name) return true
    return false
  }

  // --- addresses -------------------------------------------------------------------------------------------------

  private prefix(text: string, opt: string): Prefix {
    const p = this.family === 4 ? fastPrefix4(text) ?? parsePrefix(text) : parsePrefix(text)
    if (!p || p.family !== this.family) {
      throw this.err(`an IPv${this.family} address or prefix after ${opt}`, text)
    }
    return p
  }

  /** The BigInt of an IPv4 address value given as an int32 (the last one is remembered). */
  private big4(v: number): bigint {
    if (v !== this.lastV4 || !this.haveV4) {
      this.lastV4 = v
      this.haveV4 = true
      this.lastV4Big = BigInt(v >>> 0)
    }
    return this.lastV4Big
  }

  /** The `-s`/`-d` match of argument i. */
  private addrMatch(dir: 'src' | 'dst', neg: boolean, i: number, opt: string): Match {
    const kind = (dir === 'dst' ? 1 : 0) + (neg ? 2 : 0)
    const tk = this.tk
    if (this.family === 4 && tk.plain(i)) {
      // prefix4At() written out (it is the hot part of every address; as a function of its own it was optimised on
      // its own first, then again inside addrMatch): v, len as it returns them, len -1 when the text is not its form
      const src = tk.src
      const n = tk.b[i]!
      let j = tk.a[i]!
      let v = 0
      let len = -1
      {
        let octet = 0
        let digits = 0
        let dots = 0
        let ok = true
        for (; j < n; j++) {
          const c = src.charCodeAt(j)
          if (c >= 48 && c <= 57) {
            octet = octet * 10 + (c - 48)
            if (++digits > 3 || octet > 255) {
              ok = false
              break
            }
          } else if (c === 46 /* . */) {
            if (digits === 0 || ++dots > 3) {
              ok = false
              break
            }
            v = (v << 8) | octet
            octet = 0
            digits = 0
          } else {
            break
          }
        }
        if (ok && dots === 3 && digits !== 0) {
          v = (v << 8) | octet
          len = 32
          if (j < n) {
            if (src.charCodeAt(j) !== 47 /* / */ || n - j - 1 < 1 || n - j - 1 > 2) {
              len = -1
            } else {
              let l = 0
              for (j++; j < n; j++) {
                const c = src.charCodeAt(j)
                if (c < 48 || c > 57) {
                  l = 99
                  break
                }
                l = l * 10 + (c - 48)
              }
              len = l > 32 ? -1 : l
            }
          }
          if (len >= 0 && len < 32) v = len === 0 ? 0 : v & ~((1 << (32 - len)) - 1)
        }
      }
      if (len >= 0) {
        const slot = kind * ADDR_SLOTS + ((Math.imul(v, 0x9e3779b1) >>> 22) ^ len)
        let m = this.addrM[slot]
        if (m === undefined || this.addrV[slot] !== v || this.addrL[slot] !== len) {
          m = {kind: 'addr', dir, neg, prefix: {family: 4, value: this.big4(v), len}}
          this.addrV[slot] = v
          this.addrL[slot] = len
          this.addrM[slot] = m
        }
        return m
      }
    }
    return this.addrMatchText(dir, neg, kind, i, opt)
  }

  /** addrMatch() of an address not in the usual IPv4 form (apart: the usual case stays small to compile). */
  private addrMatchText(dir: 'src' | 'dst', neg: boolean, kind: number, i: number, opt: string): Match {
    const text = this.tk.get(i)
    const known = this.addrMatches[kind]!
    const shared = known.get(text)
    if (shared) return shared
    const p = this.family === 4 ? fastPrefix4(text) ?? parsePrefix(text) : parsePrefix(text)
    if (p && p.family === this.family) {
      const m: Match = {kind: 'addr', dir, neg, prefix: p}
      if (known.size >= ADDR_CACHE) known.clear()
      known.set(text, m)
      return m
    }
    if (nonContiguous(text, this.family)) {
      this.report(`${opt} with a non-contiguous mask`)
      return {kind: 'unknown', module: '', args: neg ? ['!', opt, text] : [opt, text]}
    }
    throw this.err(`an IPv${this.family} address or prefix after ${opt}`, text)
  }

  private ip(text: string, opt: string): IpAddr {
    const a = this.family === 4 ? fastIp4(text) ?? parseIp(text) : parseIp(text)
    if (!a || a.family !== this.family) throw this.err(`an IPv${this.family} address after ${opt}`, text)
    return a
  }

  // --- numbers ---------------------------------------------------------------------------------------------------

  private port(text: string, opt: string): number {
    if (isDigits(text)) {
      const n = Number(text)
      if (n <= 65535) return n
    } else if (Object.hasOwn(SERVICES, text)) {
      return SERVICES[text]!
    }
    throw this.err(`a port number after ${opt}`, text)
  }

  private portRange(text: string, opt: string, sep = ':'): PortRange {
    const i = text.indexOf(sep)
    if (i < 0) {
      const p = this.port(text, opt)
      return [p, p]
    }
    const a = text.slice(0, i)
    const b = text.slice(i + 1)
    return [a === '' ? 0 : this.port(a, opt), b === '' ? 65535 : this.port(b, opt)]
  }

  private u32(text: string, opt: string): number {
    if (/^(0x[0-9a-f]+|\d+)$/i.test(text)) {
      const n = Number(text)
      if (n <= MAX32) return n
    }
    throw this.err(`a 32-bit number after ${opt}`, text)
  }

  private uint(text: string, opt: string): number {
    if (isDigits(text)) return Number(text)
    throw this.err(`a number after ${opt}`, text)
  }

  /** `value[/mask]` with mask defaulting to 0xffffffff. */
  private valueMask(text: string, opt: string): [number, number, boolean] {
    const i = text.indexOf('/')
    if (i < 0) return [this.u32(text, opt), MAX32, false]
    return [this.u32(text.slice(0, i), opt), this.u32(text.slice(i + 1), opt), true]
  }

  private list<T extends string>(text: string, allowed: ReadonlySet<string>, what: string, opt: string): T[] {
    const out = text.split(',')
    for (let i = 0; i < out.length; i++) {
      const raw = out[i]!
      const v = raw.toUpperCase()
      if (!allowed.has(v)) throw this.err(`${what} after ${opt}`, raw)
      out[i] = v
    }
    return out as T[]
  }

  private protoNumber(text: string, opt: string): number {
    if (isDigits(text) && Number(text) <= 255) return Number(text)
    const p = Object.hasOwn(PROTOCOLS, text.toLowerCase()) ? PROTOCOLS[text.toLowerCase()] : undefined
    if (p === undefined) throw this.err(`a protocol name or number after ${opt}`, text)
    return p
  }

  // --- match modules -----------------------------------------------------------------------------------------------

  private openModule(name: string): ModInst {
    // known names are interned: the token may be a fresh string, and matches keep it
    const id = MODULE_IDS.get(name) ?? 0
    const known = id !== 0
    const canon = known ? KNOWN_MODULE_LIST[id - 1] : undefined
    let inst = this.mods[this.nMods]
    if (inst === undefined) {
      inst = newMod()
      this.mods.push(inst)
    }
    this.nMods++
    inst.name = canon ?? name
    inst.id = id
    inst.known = known
    inst.nOut = 0
    inst.args = known ? EMPTY_ARGS : []
    inst.st = undefined
    inst.stat = false
    inst.statMode = undefined
    inst.statNeg = false
    inst.statProb = undefined
    inst.statEvery = undefined
    inst.statPacket = undefined
    return inst
  }

  private closeModule(inst: ModInst): void {
    if (!inst.known) {
      this.addM({kind: 'unknown', module: inst.name, args: inst.args})
      this.report(`-m ${inst.name}`)
      return
    }
    const name = inst.name
    if (name === 'statistic') {
      if (!inst.stat) throw this.err('an option of -m statistic', this.lineText)
      // the module's unmodelled options come first, then the statistic match
      for (let k = 0; k < inst.nOut; k++) this.addM(inst.out[k]!)
      const neg = inst.statNeg
      if (inst.statMode === 'random') {
        if (inst.statProb === undefined) throw this.err('--probability with statistic --mode random', this.lineText)
        const p = inst.statProb
        let sm = neg ? undefined : this.randomMatches.get(p)
        if (!sm) {
          sm = {kind: 'statistic', neg, mode: 'random', probability: p}
          if (!neg) {
            this.randomMatches.set(p, sm)
            this.singles.set(sm, [sm])
          }
        }
        this.addM(sm)
      } else if (inst.statMode === 'nth') {
        if (inst.statEvery === undefined) throw this.err('--every with statistic --mode nth', this.lineText)
        this.addM({kind: 'statistic', neg, mode: 'nth', every: inst.statEvery, packet: inst.statPacket ?? 0})
      } else {
        throw this.err('--mode random or --mode nth with -m statistic', this.lineText)
      }
      return
    }
    if (!inst.st) {
      if (name === 'addrtype' || name === 'limit') inst.st = {kind: name}
      else if (name === 'recent') inst.st = {kind: 'recent', args: []}
      else if (name === 'rpfilter') inst.st = {kind: 'rpfilter'}
      else if (name === 'ipvs') throw this.err(`an option of -m ${name}`, this.lineText)
    }
    const st = inst.st
    if (st) {
      switch (name) {
        case 'addrtype':
          this.out(inst, st as Match)
          break
        case 'limit':
          if (st['rate'] === undefined) st['rate'] = '3/hour' // libxt_limit's default
          this.out(inst, st as Match)
          break
        case 'recent':
        case 'ipvs':
          this.out(inst, st as Match)
          break
        case 'rpfilter':
          this.out(inst, {kind: 'rpfilter', loose: st['loose'] === true, validMark: st['validMark'] === true, acceptLocal: st['acceptLocal'] === true, invert: st['invert'] === true})
          break
      }
    }
    for (let k = 0; k < inst.nOut; k++) this.addM(inst.out[k]!)
  }

  /** A known module's option this parser does not model: kept with its values and reported. */
  private unknownModuleOption(mod: ModInst, opt: string, neg: boolean): void {
    const args: string[] = neg ? ['!', opt] : [opt]
    const tk = this.tk
    while (this.pos < tk.n) {
      if (tk.first(this.pos) === 45 || tk.bang(this.pos)) break
      args.push(tk.get(this.pos))
      this.pos++
    }
    this.out(mod, {kind: 'unknown', module: mod.name, args})
    this.report(`-m ${mod.name} ${opt}`)
  }
  /** Returns false when `opt` is not an option of this module. */
  private moduleOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    const name = mod.name
    switch (mod.id) {
      case M_TCP:
      case M_UDP:
      case M_SCTP:
      case M_UDPLITE:
      case M_DCCP:
        return this.protoOption(mod, opt, neg0)
      case M_MULTIPORT:
        return this.multiportOption(mod, opt, neg0)
      case M_STATE:
      case M_CONNTRACK:
        return this.ctOption(mod, opt, neg0)
      case M_MARK:
      case M_CONNMARK: {
        if (opt !== '--mark') return false
        const neg = this.use(neg0)
        const [value, mask] = this.valueMask(this.next(opt), opt)
        this.out(mod, {kind: 'mark', module: name as 'mark' | 'connmark', neg, value, mask})
        return true
      }
      case M_STATISTIC: {
        // any option offered to the module (even one it refuses) counts as "an option of -m statistic"
        mod.stat = true
        if (opt === '--mode') {
          const v = this.next(opt)
          if (v !== 'random' && v !== 'nth') throw this.err('random or nth after --mode', v)
          mod.statMode = v
        } else if (opt === '--probability') {
          if (this.use(neg0)) mod.statNeg = true
          const v = this.next(opt)
          const p = Number(v)
          if (v === '' || !Number.isFinite(p) || p < 0 || p > 1) throw this.err('a probability between 0 and 1 after --probability', v)
          mod.statProb = p
        } else if (opt === '--every') {
          if (this.use(neg0)) mod.statNeg = true
          const v = this.uint(this.next(opt), opt)
          if (v < 1) throw this.err('a number of at least 1 after --every', String(v))
          mod.statEvery = v
        } else if (opt === '--packet') {
          mod.statPacket = this.uint(this.next(opt), opt)
        } else {
          return false
        }
        return true
      }
      case M_COMMENT: {
        if (opt !== '--comment') return false
        const text = this.next(opt)
        let m = this.commentMatches.get(text)
        if (!m) {
          m = {kind: 'comment', text}
          this.commentMatches.set(text, m)
        }
        this.out(mod, m)
        return true
      }
      case M_ADDRTYPE: {
        const st = (mod.st ??= {kind: 'addrtype'})
        if (opt === '--src-type' || opt === '--dst-type') {
          const neg = this.use(neg0)
          const types = this.list<AddrType>(this.next(opt), ADDR_TYPES, 'address types (LOCAL, UNICAST, ...)', opt)
          st[opt === '--src-type' ? 'src' : 'dst'] = {neg, types}
        } else if (opt === '--limit-iface-in' || opt === '--limit-iface-out') {
          st['limitIface'] = opt === '--limit-iface-in' ? 'in' : 'out'
        } else {
          return false
        }
        return true
      }
      case M_IPRANGE: {
        if (opt !== '--src-range' && opt !== '--dst-range') return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        const i = v.indexOf('-')
        const from = this.ip(i < 0 ? v : v.slice(0, i), opt)
        const to = i < 0 ? from : this.ip(v.slice(i + 1), opt)
        this.out(mod, {kind: 'iprange', dir: opt === '--src-range' ? 'src' : 'dst', neg, from, to})
        return true
      }
      case M_ICMP:
      case M_ICMP6: {
        if (opt !== (name === 'icmp' ? '--icmp-type' : '--icmpv6-type')) return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        this.out(mod, this.icmpMatch(name === 'icmp' ? 4 : 6, neg, v, opt))
        return true
      }
      case M_MAC: {
        if (opt !== '--mac-source') return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        if (!/^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/i.test(v)) {
          // published dumps redact MACs as XX:XX:XX:XX:XX:XX: keep the rule, report the match
          if (!/^[0-9a-fx]{1,2}(:[0-9a-fx]{1,2}){5}$/i.test(v)) throw this.err('a MAC address after --mac-source', v)
          this.out(mod, {kind: 'unknown', module: 'mac', args: neg ? ['!', opt, v] : [opt, v]})
          this.report(`-m mac --mac-source ${v} (redacted, not a MAC address)`)
          return true
        }
        this.out(mod, {kind: 'mac', neg, mac: v.split(':').map((x) => x.padStart(2, '0')).join(':').toLowerCase()})
        return true
      }
      case M_SET: {
        if (opt !== '--match-set' && opt !== '--set') return false
        const neg = this.use(neg0)
        const setName = this.next(opt)
        const fl = this.next(opt)
        const flags = fl.split(',') as ('src' | 'dst')[]
        for (const f of flags) {
          if (f !== 'src' && f !== 'dst') throw this.err(`src/dst flags after ${opt} ${setName}`, fl)
        }
        this.out(mod, {kind: 'set', neg, name: setName, flags})
        return true
      }
      case M_LIMIT: {
        const st = (mod.st ??= {kind: 'limit'})
        if (opt === '--limit') {
          const v = this.next(opt)
          if (!/^\d+(\/[a-z]+)?$/.test(v)) throw this.err('a rate like 3/min after --limit', v)
          st['rate'] = v
        } else if (opt === '--limit-burst') {
          st['burst'] = this.uint(this.next(opt), opt)
        } else {
          return false
        }
        return true
      }
      case M_RECENT: {
        if (!RECENT_OPTS.has(opt)) return false
        const st = (mod.st ??= {kind: 'recent', args: [] as string[]})
        const args = st['args'] as string[]
        const takesValue = RECENT_VALUE_OPTS.has(opt)
        if (this.use(neg0, takesValue)) args.push('!')
        args.push(opt)
        if (takesValue) args.push(this.next(opt))
        return true
      }
      case M_IPVS:
        return this.ipvsOption(mod, opt, neg0)
      case M_RPFILTER: {
        // libxt_rpfilter: four flags, none invertible with `!` (--invert negates the match)
        const field = RPFILTER_FLAGS[opt]
        if (field === undefined) return false
        if (neg0) throw this.err(`${opt} without "!" (-m rpfilter negates with --invert)`, `! ${opt}`)
        ;(mod.st ??= {kind: 'rpfilter'})[field] = true
        return true
      }
    }
    return false
  }

  /**
   * `-m multiport`. Apart from moduleOption, and without a closure: a closure over `this` and `opt` anywhere in
   * moduleOption made every call of it allocate a context (kube-proxy 100k: ~70,000 calls).
   */
  private multiportOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    const dir = opt === '--dports' || opt === '--destination-ports' ? 'dst'
      : opt === '--sports' || opt === '--source-ports' ? 'src' : opt === '--ports' ? 'any' : undefined
    if (!dir) return false
    const neg = this.use(neg0)
    const v = this.next(opt)
    const parts = v.split(',')
    const ranges: PortRange[] = []
    for (let k = 0; k < parts.length; k++) ranges.push(this.portRange(parts[k]!, opt))
    this.out(mod, {kind: 'port', module: 'multiport', dir, neg, ranges})
    return true
  }

  /**
   * Marks a pending `!` as consumed by this option. Options with a value also take the old form `--opt ! value`;
   * a flag (`--syn`, `--ipvs`, ...) must not, or it would steal the `!` of the next option.
   */
  private use(neg0: boolean, takesValue = true): boolean {
    const neg = takesValue ? this.postNeg(neg0) : neg0
    if (neg0) this.negUsed = true
    return neg
  }

  private protoOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    let dir: 'src' | 'dst' | undefined
    if (opt === '--sport' || opt === '--source-port') dir = 'src'
    else if (opt === '--dport' || opt === '--destination-port') dir = 'dst'
    if (dir) {
      const neg = this.use(neg0)
      const i = this.nextIdx(opt)
      const kind = (dir === 'dst' ? 1 : 0) + (neg ? 2 : 0)
      const tk = this.tk
      if (tk.plain(i)) {
        // a plain number (the usual case) is looked up by value, without making a string of it
        const n = digitsAt(tk.src, tk.a[i]!, tk.b[i]!)
        if (n >= 0 && n <= 65535) {
          let byNumber = this.portByNumber[mod.id]
          if (!byNumber) {
            byNumber = [new Map(), new Map(), new Map(), new Map()]
            this.portByNumber[mod.id] = byNumber
          }
          const known = byNumber[kind]!
          let m = known.get(n)
          if (!m) {
            m = {kind: 'port', module: mod.name, dir, neg, ranges: [[n, n]]}
            known.set(n, m)
          }
          this.out(mod, m)
          return true
        }
      }
      const v = tk.get(i)
      let byText = this.portMatches.get(mod.name)
      if (!byText) {
        byText = [new Map(), new Map(), new Map(), new Map()]
        this.portMatches.set(mod.name, byText)
      }
      const known = byText[kind]!
      let m = known.get(v)
      if (!m) {
        m = {kind: 'port', module: mod.name, dir, neg, ranges: [this.portRange(v, opt)]}
        known.set(v, m)
      }
      this.out(mod, m)
      return true
    }
    if (mod.name !== 'tcp') return false
    if (opt === '--tcp-flags') {
      const neg = this.use(neg0)
      const m = this.flagsText(opt)
      const c = this.flagsText(opt)
      const key = `${neg ? '!' : ''}${m} ${c}`
      let fm = this.flagMatches.get(key)
      if (!fm) {
        fm = {kind: 'tcpflags', neg, mask: this.flagLists.get(m)!, comp: this.flagLists.get(c)!}
        this.flagMatches.set(key, fm)
      }
      this.out(mod, fm)
      return true
    }
    if (opt === '--syn') {
      const neg = this.use(neg0, false)
      this.out(mod, {kind: 'tcpflags', neg, mask: SYN_MASK, comp: SYN_COMP})
      return true
    }
    return false
  }

  /**
   * The next argument, a `--tcp-flags` list (checked, and its list shared, the first time this text is seen): a
   * firewall writes the same `FIN,SYN,RST,ACK SYN` on hundreds of rules (tum-net-2013: 652).
   */
  private flagsText(opt: string): string {
    const v = this.next(opt)
    if (!this.flagLists.has(v)) this.flagLists.set(v, this.list<string>(v, TCP_FLAGS, 'TCP flags (SYN,ACK,FIN,RST,URG,PSH,ALL,NONE)', opt))
    return v
  }

  private ctOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    if (opt === (mod.name === 'state' ? '--state' : '--ctstate')) {
      const neg = this.use(neg0)
      const v = this.next(opt)
      // a firewall repeats the same few state lists: one shared match per module, negation and text
      const key = `${mod.name}${neg ? '!' : ' '}${v}`
      let m = this.ctMatches.get(key)
      if (!m) {
        const states = this.list<CtState>(v, CT_STATES, 'connection states (NEW,ESTABLISHED,...)', opt)
        m = {kind: 'ctstate', module: mod.name as 'state' | 'conntrack', neg, states}
        this.ctMatches.set(key, m)
      }
      this.out(mod, m)
      return true
    }
    if (mod.name !== 'conntrack') return false
    switch (opt) {
      case '--ctorigsrc':
      case '--ctorigdst':
      case '--ctreplsrc':
      case '--ctrepldst': {
        const neg = this.use(neg0)
        const prefix = this.prefix(this.next(opt), opt)
        this.out(mod, {kind: 'ctaddr', which: opt.slice(4) as 'origsrc', neg, prefix})
        return true
      }
      case '--ctorigsrcport':
      case '--ctorigdstport':
      case '--ctreplsrcport':
      case '--ctrepldstport': {
        const neg = this.use(neg0)
        const range = this.portRange(this.next(opt), opt)
        this.out(mod, {kind: 'ctport', which: opt.slice(4, -4) as 'origsrc', neg, range})
        return true
      }
      case '--ctstatus': {
        const neg = this.use(neg0)
        const statuses = this.list<string>(this.next(opt), CT_STATUSES, 'connection statuses (ASSURED,SEEN_REPLY,...)', opt)
        this.out(mod, {kind: 'ctstatus', neg, statuses})
        return true
      }
      case '--ctproto': {
        const neg = this.use(neg0)
        this.out(mod, {kind: 'ctproto', neg, proto: this.protoNumber(this.next(opt), opt)})
        return true
      }
      case '--ctdir': {
        const v = this.next(opt)
        if (v !== 'ORIGINAL' && v !== 'REPLY') throw this.err('ORIGINAL or REPLY after --ctdir', v)
        this.out(mod, {kind: 'ctdir', dir: v})
        return true
      }
    }
    return false
  }

  private icmpMatch(fam: 4 | 6, neg: boolean, v: string, opt: string): Match {
    if (v === 'any') return {kind: 'icmp', family: fam, neg, type: 'any', name: v}
    const slash = v.indexOf('/')
    const t = slash < 0 ? v : v.slice(0, slash)
    if (isDigits(t) && Number(t) <= 255) {
      const type = Number(t)
      if (slash < 0) return {kind: 'icmp', family: fam, neg, type, name: v}
      const c = v.slice(slash + 1)
      if (!isDigits(c) || Number(c) > 255) throw this.err(`an ICMP code after ${opt} ${t}/`, v)
      return {kind: 'icmp', family: fam, neg, type, code: Number(c), name: v}
    }
    const table = fam === 4 ? ICMP4_TYPES : ICMP6_TYPES
    const known = Object.hasOwn(table, v) ? table[v] : undefined
    if (!known) throw this.err(`an ICMP${fam === 6 ? 'v6' : ''} type name or number after ${opt}`, v)
    const [type, code] = known
    return code === undefined ? {kind: 'icmp', family: fam, neg, type, name: v} : {kind: 'icmp', family: fam, neg, type, code, name: v}
  }

  private ipvsOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    const st = (mod.st ??= {kind: 'ipvs', neg: false, ipvs: true})
    switch (opt) {
      case '--ipvs':
        st['neg'] = this.use(neg0, false)
        return true
      case '--vproto': {
        const neg = this.use(neg0)
        st['vproto'] = this.protoNumber(this.next(opt), opt)
        if (neg) st['vprotoNeg'] = true
        return true
      }
      case '--vaddr': {
        const neg = this.use(neg0)
        st['vaddr'] = {neg, prefix: this.prefix(this.next(opt), opt)}
        return true
      }
      case '--vport': {
        const neg = this.use(neg0)
        st['vport'] = {neg, port: this.port(this.next(opt), opt)}
        return true
      }
      case '--vdir': {
        const v = this.next(opt)
        if (v !== 'ORIGINAL' && v !== 'REPLY') throw this.err('ORIGINAL or REPLY after --vdir', v)
        st['vdir'] = v
        return true
      }
      case '--vmethod': {
        const neg = this.use(neg0)
        const v = this.next(opt).toUpperCase()
        if (v !== 'GATE' && v !== 'IPIP' && v !== 'MASQ') throw this.err('GATE, IPIP or MASQ after --vmethod', v)
        st['vmethod'] = {neg, method: v}
        return true
      }
      case '--vportctl': {
        const neg = this.use(neg0)
        st['vportctl'] = this.port(this.next(opt), opt)
        if (neg) st['vportctlNeg'] = true
        return true
      }
    }
    return false
  }

  // --- targets -----------------------------------------------------------------------------------------------------

  /** `-j`/`-g` with the name in argument i. */
  private openTarget(i: number, goto: boolean): void {
    const tk = this.tk
    // kube-proxy jumps to the same chain (KUBE-MARK-MASQ) again and again: compare with the last one first (a chain
    // -j found after the typed targets, so its name is none of theirs)
    const lj = this.lastJump
    if (lj !== undefined && tk.is(i, lj.name)) {
      this.rTarget = lj.target(goto)
      return
    }
    if (goto) {
      const c = this.chainAt(i)
      if (c) this.rTarget = c.target(true)
      else this.addPending({name: tk.get(i), goto: true, args: []})
      return
    }
    // typed targets first (all of them are common words: a token that is none is not one), then chains
    const w = tk.word(i)
    const typed = w === undefined ? undefined : TYPED_TARGETS.get(w)
    if (typed) {
      if (i === tk.n - 1 && (typed === 'ACCEPT' || typed === 'DROP' || typed === 'RETURN')) {
        // the rule's last word: no option can follow, closeTarget would pick the same shared target
        this.rTarget = SIMPLE_TARGETS[typed]
        return
      }
      const tg = this.tgtInst
      tg.name = typed
      tg.typed = true
      tg.args = EMPTY_ARGS
      tg.nArg = 0
      tg.pending = false
      tg.unknownOpt = undefined
      tg.rejectWith = undefined
      tg.logPrefix = undefined
      tg.logLevel = undefined
      tg.logFlags = undefined
      tg.nTo = 0
      tg.random = false
      tg.persistent = false
      tg.randomFully = false
      tg.ports = undefined
      tg.op = undefined
      tg.value = 0
      tg.mask = 0
      tg.nfmask = undefined
      tg.ctmask = undefined
      tg.notrack = false
      this.tgt = tg
      return
    }
    const c = this.chainAt(i)
    if (c) {
      this.lastJump = c
      this.rTarget = c.target(false)
      return
    }
    const name = tk.get(i)
    if (EXTENSION_TARGETS.has(name)) {
      this.untypedTarget(name, [], false)
      return
    }
    // maybe a chain declared later with -N; checked at COMMIT
    const p: Pending = {name, goto: false, args: []}
    this.addPending(p)
    this.untypedTarget(name, p.args, true)
  }

  /** The chain of the open table named by argument i. */
  private chainAt(i: number): Chain | undefined {
    const tk = this.tk
    return tk.plain(i) ? this.idx.find(tk.src, tk.a[i]!, tk.b[i]!) : this.idx.get(tk.get(i))
  }

  private untypedTarget(name: string, args: string[], pending: boolean): void {
    const tg = this.tgtInst
    tg.name = name
    tg.typed = false
    tg.args = args
    tg.nArg = 0
    tg.pending = pending
    tg.unknownOpt = undefined
    this.tgt = tg
  }

  private addPending(p: Pending): void {
    this.pending.push(p)
    this.rPending = p
  }

  /** Records argument i as one of a typed target's. */
  private arg(tg: TgtInst, i: number): void {
    if (tg.nArg === tg.argIdx.length) {
      const a = new Int32Array(tg.nArg * 2)
      a.set(tg.argIdx)
      tg.argIdx = a
    }
    tg.argIdx[tg.nArg++] = i
  }

  /** The value after a typed target's option `opt` (kept among the target's arguments). */
  private take(tg: TgtInst, opt: string): string {
    const i = this.nextIdx(opt)
    this.arg(tg, i)
    return this.tk.get(i)
  }

  /** Option `opt` (argument i) of the target. */
  private targetOption(tg: TgtInst, opt: string, i: number, neg: boolean): void {
    if (!tg.typed) {
      if (neg) tg.args.push('!')
      tg.args.push(opt)
      return
    }
    if (neg) throw this.err(`no ! before the target option ${opt}`, this.lineText)
    this.arg(tg, i)
    switch (tg.name) {
      case 'REJECT':
        if (opt === '--reject-with') {
          const v = this.take(tg, opt)
          const names = this.family === 4 ? REJECT_WITH_4 : REJECT_WITH_6
          const canon = Object.hasOwn(names, v) ? names[v] : undefined
          if (!canon) throw this.err(`an ICMP${this.family === 6 ? 'v6' : ''} reject type after --reject-with`, v)
          tg.rejectWith = canon
          return
        }
        break
      case 'LOG':
        switch (opt) {
          case '--log-prefix':
            tg.logPrefix = this.take(tg, opt)
            return
          case '--log-level': {
            const v = this.take(tg, opt)
            if (!/^([0-7]|emerg|alert|crit|err|error|warn|warning|notice|info|debug|panic)$/.test(v)) {
              throw this.err('a syslog level (0-7 or a name) after --log-level', v)
            }
            tg.logLevel = v
            return
          }
          case '--log-tcp-sequence':
          case '--log-tcp-options':
          case '--log-ip-options':
          case '--log-uid':
          case '--log-macdecode':
            ;(tg.logFlags ??= []).push(opt.slice(6))
            return
        }
        break
      case 'DNAT':
      case 'SNAT':
        if (opt === (tg.name === 'DNAT' ? '--to-destination' : '--to-source')) {
          const vi = this.nextIdx(opt)
          this.arg(tg, vi)
          const r = this.natRangeAt(vi, opt)
          if (r) tg.to[tg.nTo++] = r
          else tg.unknownOpt ??= `${opt} with a base port`
          return
        }
        if (opt === '--random' || opt === '--persistent' || opt === '--random-fully') {
          if (opt === '--random') tg.random = true
          else if (opt === '--persistent') tg.persistent = true
          else tg.randomFully = true
          return
        }
        break
      case 'MASQUERADE':
      case 'REDIRECT':
        if (opt === '--to-ports') {
          const v = this.take(tg, opt)
          tg.ports = this.portRange(v, opt, v.includes('-') ? '-' : ':') as [number, number]
          return
        }
        if (opt === '--random' || (tg.name === 'MASQUERADE' && opt === '--random-fully')) {
          if (opt === '--random') tg.random = true
          else tg.randomFully = true
          return
        }
        break
      case 'MARK':
      case 'CONNMARK':
        if (this.markOption(tg, opt)) return
        break
      case 'CT':
        if (opt === '--notrack') {
          tg.notrack = true
          return
        }
        if (CT_VALUE_OPTS.has(opt)) {
          const v = this.take(tg, opt)
          // a conntrack zone keeps the connection's entries apart from zone 0's (Proxmox's `-i fwbr+ -j CT --zone 1`,
          // OpenStack's per-port zones): the trace has one conntrack table and the checks no zones
          if (opt.startsWith('--zone')) this.report(`-j CT ${opt} ${v}: conntrack zones are not modelled (every entry is taken as zone 0's)`)
          return
        }
        break
    }
    // a known target with an option this parser does not know: keep it whole as an unknown target
    tg.unknownOpt ??= opt
    const tk = this.tk
    while (this.pos < tk.n) {
      if (tk.first(this.pos) === 45 || tk.bang(this.pos)) break
      this.arg(tg, this.pos)
      this.pos++
    }
  }

  private setOp(tg: TgtInst, op: string, value: number, mask: number): true {
    if (tg.op !== undefined) throw this.err(`a single ${tg.name} operation`, this.lineText)
    tg.op = op
    tg.value = value >>> 0
    tg.mask = mask >>> 0
    return true
  }

  private markOption(tg: TgtInst, opt: string): boolean {
    switch (opt) {
      case '--set-xmark': {
        const [v, m] = this.valueMask(this.take(tg, opt), opt)
        return this.setOp(tg, 'xset', v, m)
      }
      case '--set-mark': {
        const [v, m] = this.valueMask(this.take(tg, opt), opt)
        return this.setOp(tg, 'set', v, v | m)
      }
      case '--and-mark': {
        // the operand, as the dataplane's applyMark reads it (new = old & value); mask is the kernel's ~value
        const v = this.u32(this.take(tg, opt), opt)
        return this.setOp(tg, 'and', v, ~v)
      }
      case '--or-mark': {
        const v = this.u32(this.take(tg, opt), opt)
        return this.setOp(tg, 'or', v, v)
      }
      case '--xor-mark':
        return this.setOp(tg, 'xor', this.u32(this.take(tg, opt), opt), 0)
    }
    if (tg.name !== 'CONNMARK') return false
    switch (opt) {
      case '--save-mark':
      case '--restore-mark':
        if (tg.op !== undefined) throw this.err('a single CONNMARK operation', this.lineText)
        tg.op = opt === '--save-mark' ? 'save' : 'restore'
        return true
      case '--nfmask':
        tg.nfmask = this.u32(this.take(tg, opt), opt)
        return true
      case '--ctmask':
        tg.ctmask = this.u32(this.take(tg, opt), opt)
        return true
      case '--mask': {
        const v = this.u32(this.take(tg, opt), opt)
        tg.nfmask = v
        tg.ctmask = v
        return true
      }
    }
    return false
  }

  /** The NAT range of argument i: `a.b.c.d[:port]` read in place, anything else by natRange. */
  private natRangeAt(i: number, opt: string): NatRange | undefined {
    const tk = this.tk
    if (this.family === 4 && tk.plain(i)) {
      const src = tk.src
      const a = tk.a[i]!
      const b = tk.b[i]!
      let colon = a
      while (colon < b && src.charCodeAt(colon) !== 58 /* : */) colon++
      const v = prefix4At(src, a, colon)
      // an address without /len (fastIp4's form; a range `a-b` is not prefix4At's form either)
      if (p4Len === 32 && !p4Slash) {
        const ip: IpAddr = {family: 4, value: this.big4(v)}
        if (colon === b) return {from: ip, to: ip}
        const port = digitsAt(src, colon + 1, b)
        if (port >= 0 && port <= 65535) return {from: ip, to: ip, portFrom: port, portTo: port}
      }
    }
    return this.natRange(tk.get(i), opt)
  }

  private natRange(text: string, opt: string): NatRange | undefined {
    let addr = text
    let ports = ''
    if (text.startsWith('[')) {
      const close = text.indexOf(']')
      if (close < 0) throw this.err(`[address]:port after ${opt}`, text)
      addr = text.slice(1, close)
      const rest = text.slice(close + 1)
      if (rest !== '') {
        if (rest[0] !== ':') throw this.err(`[address]:port after ${opt}`, text)
        ports = rest.slice(1)
      }
    } else if (this.family === 4 || text.startsWith(':')) {
      const colon = text.indexOf(':')
      if (colon >= 0) {
        addr = text.slice(0, colon)
        ports = text.slice(colon + 1)
      }
    }
    const r: {-readonly [K in keyof NatRange]: NatRange[K]} = {}
    if (addr !== '') {
      const dash = addr.indexOf('-')
      r.from = this.ip(dash < 0 ? addr : addr.slice(0, dash), opt)
      r.to = dash < 0 ? r.from : this.ip(addr.slice(dash + 1), opt)
    }
    if (ports !== '') {
      if (ports.includes('/')) return undefined
      const [a, b] = this.portRange(ports, opt, '-')
      r.portFrom = a
      r.portTo = b
    } else if (addr === '') {
      throw this.err(`an address or :port after ${opt}`, text)
    }
    return r
  }

  private closeTarget(tg: TgtInst): void {
    if (tg.pending) return // resolved at COMMIT (args shared with the Pending entry)
    if (!tg.typed || tg.unknownOpt !== undefined) {
      this.rTarget = {kind: 'unknown', name: tg.name, args: tg.typed ? this.targetArgs(tg) : tg.args}
      this.report(tg.unknownOpt !== undefined ? `-j ${tg.name} ${tg.unknownOpt}` : `-j ${tg.name}`)
      return
    }
    switch (tg.name) {
      case 'ACCEPT':
      case 'DROP':
      case 'RETURN':
      case 'QUEUE':
      case 'NOTRACK':
      case 'TRACE':
        this.rTarget = SIMPLE_TARGETS[tg.name]!
        return
      case 'REJECT': {
        const w = tg.rejectWith ?? (this.family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable')
        let r = this.rejects.get(w)
        if (!r) {
          r = {kind: 'REJECT', with: w}
          this.rejects.set(w, r)
        }
        this.rTarget = r
        return
      }
      case 'LOG': {
        const t: {kind: 'LOG'; prefix?: string; level?: string; flags?: string[]} = {kind: 'LOG'}
        if (tg.logPrefix !== undefined) t.prefix = tg.logPrefix
        if (tg.logLevel !== undefined) t.level = tg.logLevel
        if (tg.logFlags !== undefined) t.flags = tg.logFlags
        this.rTarget = t
        return
      }
      case 'DNAT':
      case 'SNAT': {
        if (tg.nTo === 0) throw this.err(`${tg.name === 'DNAT' ? '--to-destination' : '--to-source'} with -j ${tg.name}`, this.lineText)
        const to = tg.to.slice(0, tg.nTo)
        this.rTarget = tg.randomFully
          ? {kind: tg.name, to, random: tg.random, persistent: tg.persistent, randomFully: true}
          : {kind: tg.name, to, random: tg.random, persistent: tg.persistent}
        return
      }
      case 'MASQUERADE':
      case 'REDIRECT': {
        const t: {kind: 'MASQUERADE' | 'REDIRECT'; ports?: [number, number]; random: boolean; randomFully?: boolean} = {
          kind: tg.name, random: tg.random,
        }
        if (tg.ports !== undefined) t.ports = tg.ports
        if (tg.randomFully) t.randomFully = true
        this.rTarget = t as Target
        return
      }
      case 'MARK':
      case 'CONNMARK': {
        const op = tg.op
        if (op === undefined) throw this.err(`an operation (--set-xmark, --set-mark, ...) with -j ${tg.name}`, this.lineText)
        if (op === 'save' || op === 'restore') {
          this.rTarget = {kind: 'CONNMARK', op, nfmask: (tg.nfmask ?? MAX32) >>> 0, ctmask: (tg.ctmask ?? MAX32) >>> 0}
        } else {
          if (tg.nfmask !== undefined || tg.ctmask !== undefined) throw this.err(`--nfmask/--ctmask only with --save-mark or --restore-mark`, this.lineText)
          this.rTarget = {kind: tg.name, op: op as 'set', value: tg.value, mask: tg.mask}
        }
        return
      }
      case 'CT':
        this.rTarget = {kind: 'CT', notrack: tg.notrack, args: this.targetArgs(tg)}
        return
    }
  }

  /** A typed target's arguments as strings. */
  private targetArgs(tg: TgtInst): string[] {
    const out: string[] = []
    for (let k = 0; k < tg.nArg; k++) out.push(this.tk.get(tg.argIdx[k]!))
    return out
  }
}

const IMPLICIT: Readonly<Record<string, string>> = {
  tcp: 'tcp', udp: 'udp', sctp: 'sctp', udplite: 'udplite', dccp: 'dccp', icmp: 'icmp', '1': 'icmp',
  'ipv6-icmp': 'icmp6', icmpv6: 'icmp6', '58': 'icmp6', '6': 'tcp', '17': 'udp', '132': 'sctp',
}

const KNOWN_MODULE_LIST = [
  'tcp', 'udp', 'sctp', 'udplite', 'dccp', 'multiport', 'state', 'conntrack', 'mark', 'connmark', 'statistic',
  'comment', 'addrtype', 'iprange', 'icmp', 'icmp6', 'mac', 'set', 'limit', 'recent', 'ipvs', 'rpfilter',
] as const
const KNOWN_MODULES: ReadonlyMap<string, string> = interned(KNOWN_MODULE_LIST)
/** module name → its id (1-based position in KNOWN_MODULE_LIST; the M_ constants): moduleOption switches on it */
const MODULE_IDS: ReadonlyMap<string, number> = new Map(KNOWN_MODULE_LIST.map((n, i) => [n, i + 1]))

/** libxt_rpfilter's options and the model field each sets */
const RPFILTER_FLAGS: Readonly<Record<string, 'loose' | 'validMark' | 'acceptLocal' | 'invert'>> = {
  '--loose': 'loose',
  '--validmark': 'validMark',
  '--accept-local': 'acceptLocal',
  '--invert': 'invert',
}
const RECENT_OPTS: ReadonlySet<string> = new Set([
  '--name', '--set', '--rcheck', '--update', '--remove', '--seconds', '--reap', '--hitcount', '--rttl', '--rsource',
  '--rdest', '--mask',
])
const RECENT_VALUE_OPTS: ReadonlySet<string> = new Set(['--name', '--seconds', '--hitcount', '--mask'])
const CT_VALUE_OPTS: ReadonlySet<string> = new Set([
  '--helper', '--ctevents', '--expevents', '--zone', '--zone-orig', '--zone-reply', '--timeout',
])

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 15) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

function fastIp4(s: string): IpAddr | undefined {
  const p = fastPrefix4(s)
  return p && p.len === 32 && s.indexOf('/') < 0 ? {family: 4, value: p.value} : undefined
}

/** Fast path for `a.b.c.d` and `a.b.c.d/len`; undefined means "ask parsePrefix". */
function fastPrefix4(s: string): Prefix | undefined {
  const v = prefix4At(s, 0, s.length)
  if (p4Len < 0) return undefined
  return {family: 4, value: BigInt(v >>> 0), len: p4Len}
}

/** the prefix length prefix4At read, or -1 when the text was not in its form; whether it was written (`/len`) */
let p4Len = -1
let p4Slash = false

/**
 * `a.b.c.d` or `a.b.c.d/len` in s[i, n): returns the value with the host bits cleared (as an int32: `>>> 0` for the
 * unsigned value) and sets p4Len. p4Len -1 means "ask parsePrefix" (anything else, including octets with more
 * than three digits). No heap numbers: this runs for every address of a dump.
 */
function prefix4At(s: string, i: number, n: number): number {
  p4Len = -1
  p4Slash = false
  let v = 0
  let octet = 0
  let digits = 0
  let dots = 0
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48)
      if (++digits > 3 || octet > 255) return 0
    } else if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return 0
      v = (v << 8) | octet
      octet = 0
      digits = 0
    } else {
      break
    }
  }
  if (dots !== 3 || digits === 0) return 0
  v = (v << 8) | octet
  let len = 32
  if (i < n) {
    if (s.charCodeAt(i) !== 47 /* / */ || n - i - 1 < 1 || n - i - 1 > 2) return 0
    len = 0
    for (i++; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c < 48 || c > 57) return 0
      len = len * 10 + (c - 48)
    }
    if (len > 32) return 0
    p4Slash = true
  }
  if (len < 32) v = len === 0 ? 0 : v & ~((1 << (32 - len)) - 1)
  p4Len = len
  return v
}

/** s[a, b) as a number when it is 1 to 15 decimal digits (what isDigits accepts), else -1. */
function digitsAt(s: string, a: number, b: number): number {
  if (b <= a || b - a > 15) return -1
  let n = 0
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return -1
    n = n * 10 + (c - 48)
  }
  return n
}

/** True when `text` is a valid address with a mask that is not contiguous (which Prefix cannot express). */
function nonContiguous(text: string, family: Family): boolean {
  const slash = text.indexOf('/')
  if (slash < 0) return false
  const a = parseIp(text.slice(0, slash))
  const m = parseIp(text.slice(slash + 1))
  return !!a && !!m && a.family === family && m.family === family
}

for (const w of [...VOCAB_WORDS, ...Object.keys(PROTOCOLS), ...TYPED_TARGETS.keys(), ...EXTENSION_TARGETS, ...KNOWN_MODULES.keys()]) {
  // split() does not look up words that start with a digit
  if (w.charCodeAt(0) >= 48 && w.charCodeAt(0) <= 57) throw new Error(`iptables-save parser: common word ${w} starts with a digit`)
  if (w.length === 2 && w.charCodeAt(0) === 45 && w.charCodeAt(1) < 128) DASH_WORDS[w.charCodeAt(1)] = w
  const k = vocabSlot(w.length, w.charCodeAt(0), w.charCodeAt(w.length - 1))
  const had = VOCAB[k]
  if (had === undefined) VOCAB[k] = w
  else if (typeof had === 'string') {
    if (had !== w) VOCAB[k] = [had, w]
  } else if (!had.includes(w)) had.push(w)
}

/** `# Warning: iptables-legacy tables present, use iptables-legacy-save to see them` (ip6tables-, arptables-, ebtables- too) */
const LEGACY_WARNING = /^# Warning: (ip6?|arp|eb)tables-legacy tables present, use [\w -]+? to see them\s*$/
/** the same warning where stderr landed inside a line of the buffered stdout, and the rest of that line after it */
const LEGACY_WARNING_INSIDE = /(?<=[^\n])(# Warning: (?:ip6?|arp|eb)tables-legacy tables present, use [\w -]+? to see them)\r?\n([^\n\r]*)/g

export function parseIptablesSave(text: string, file: string, family: Family): IptablesRuleset {
  // `iptables-save > f 2>&1` on a host with legacy tables: stderr is written at once, stdout when its buffer fills,
  // so the warning can cut a line in two (puppetlabs/puppetlabs-firewall#1266, k3s hosts). The two halves are
  // joined and the warning put on the next line instead: every line keeps its number.
  if (text.includes('tables-legacy tables present')) text = text.replace(LEGACY_WARNING_INSIDE, '$2\n$1')
  return new Parser(text, file, family).run()
}
