// The iptables-save parser as it was before the performance rewrite (commit 656582f), kept unchanged as the
// reference of iptables-differential.test.ts: the rewrite must build the same model and throw the same errors.

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
import {type Family, type IpAddr, type Prefix, parseIp, parsePrefix} from '../../src/model/ip.js'
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
} from '../../src/model/iptables.js'
import {type Loc, type NotModelled, ParseError} from '../../src/model/source.js'

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

/** The short form of a long core option (`--source` → `-s`); a switch, cheaper than hashing every option. */
function longCore(tok: string): string | undefined {
  switch (tok) {
    case '--source':
    case '--src':
      return '-s'
    case '--destination':
    case '--dst':
      return '-d'
    case '--in-interface':
      return '-i'
    case '--out-interface':
      return '-o'
    case '--protocol':
      return '-p'
    case '--fragment':
    case '--fragments':
      return '-f'
    case '--match':
      return '-m'
    case '--jump':
      return '-j'
    case '--goto':
      return '-g'
    case '--set-counters':
      return '-c'
    case '--ipv4':
      return '-4'
    case '--ipv6':
      return '-6'
  }
  return undefined
}


// ---------------------------------------------------------------------------------------------------------------
// Tokeniser

/** Splits one line into arguments the way iptables-restore does; undefined when a quote is left open. */
export function tokenizeIptablesLineReference(line: string): string[] | undefined {
  if (line.indexOf('"') < 0 && line.indexOf('\t') < 0) {
    const parts = line.split(' ')
    // blanks only separate: runs of them, or leading/trailing ones, leave empty strings behind
    if (line.indexOf('  ') >= 0 || parts[0] === '' || parts[parts.length - 1] === '') return parts.filter((p) => p !== '')
    return parts
  }
  const out: string[] = []
  let cur = ''
  let have = false
  let quote = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (quote) {
      if (ch === '\\' && i + 1 < line.length) {
        cur += line[++i]
      } else if (ch === '"') {
        quote = false
      } else {
        cur += ch
      }
    } else if (ch === '"') {
      quote = true
      have = true
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (have || cur.length > 0) out.push(cur)
      cur = ''
      have = false
    } else {
      cur += ch
    }
  }
  if (quote) return undefined
  if (have || cur.length > 0) out.push(cur)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Mutable building blocks (the model's types are readonly views of these)

interface MTable {
  name: string
  loc: Loc
  chains: Map<string, MChain>
}

interface MChain {
  name: string
  table: string
  builtin: boolean
  policy?: 'ACCEPT' | 'DROP'
  counters?: Counters
  loc: Loc
  rules: IptRule[]
}

interface MRule {
  table: string
  chain: string
  index: number
  loc: Loc
  matches: Match[]
  target?: Target
  counters?: Counters
}

/** The parser's own record of a chain of the open table, with the jump/goto targets that name it (shared). */
interface ChainRec {
  chain: MChain
  jump: Target | undefined
  goto: Target | undefined
}

/** What parseRule finds besides the matches; the rule object is built once, with all its fields. */
interface Draft {
  target: Target | undefined
  counters: Counters | undefined
  pending: Pending | undefined
  otherFamily?: '-4' | '-6'
}

/** A `-j NAME` that names no chain yet; resolved at COMMIT. */
interface Pending {
  /** set once the rule is built */
  rule?: MRule
  name: string
  goto: boolean
  args: string[]
}

/** One `-m NAME` (or an implicit protocol module) of the rule being parsed. */
interface ModInst {
  name: string
  known: boolean
  out: Match[]
  /** module-specific state, finished at the end of the rule */
  st: Record<string, unknown> | undefined
}

/** The `-j` target of the rule being parsed. */
interface TgtInst {
  name: string
  typed: boolean
  args: string[]
  st: Record<string, unknown>
  /** an option this parser does not know: the target becomes unknown */
  unknownOpt?: string
}

const MAX32 = 0xffffffff
/** addresses remembered per kind of address match (see Parser.addrMatches) */
const ADDR_CACHE = 2048
/** name → the same name as a constant, so that the model shares one string instead of one per line */
function interned(names: readonly string[]): ReadonlyMap<string, string> {
  return new Map(names.map((n) => [n, n]))
}
const ZERO_COUNTERS: Counters = {packets: 0, bytes: 0}
const EMPTY: Match[] = []
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
  private ruleCount = 0
  private backend: 'legacy' | 'nf_tables' | undefined
  private readonly incompatible: string[] = []
  private readonly tainted: string[] = []
  private legacyPresent = false
  private table: MTable | undefined
  private pending: Pending[] = []
  private lineNo = 0
  private lineText = ''
  // per-rule state
  private toks: string[] = []
  private pos = 0
  private rule: Draft = {target: undefined, counters: undefined, pending: undefined}
  private proto: string | undefined
  private tgt: TgtInst | undefined
  private negUsed = false
  private readonly scratch: Match[] = []
  // Immutable values shared between rules: most rules of a big dump jump to a handful of chains, match the same
  // protocol or the same statistic probabilities. Sharing them keeps the model small (and the GC quiet).
  private recs = new Map<string, ChainRec>()
  private lastChain: MChain | undefined
  private readonly mods: ModInst[] = []
  private readonly protoMatches = new Map<string, Match>()
  private readonly randomMatches = new Map<number, Match>()
  /** one-element match lists of shared matches, shared too (`[-p tcp]`, `[statistic 0.5]`) */
  private readonly singles = new Map<Match, Match[]>()
  private readonly rejects = new Map<string, Target>()
  /**
   * `-s/-d TEXT` matches by their text: [src, dst, ! src, ! dst] (a firewall names the same networks again and
   * again). Each map holds at most ADDR_CACHE texts: a kube-proxy dump names ~35,000 addresses once each, and
   * growing a map that big costs more than it saves.
   */
  private readonly addrMatches: Map<string, Match>[] = [new Map(), new Map(), new Map(), new Map()]
  /** `--sport/--dport TEXT` matches per module by their text: [src, dst, ! src, ! dst] */
  private readonly portMatches = new Map<string, Map<string, Match>[]>()
  private readonly commentMatches = new Map<string, Match>()

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly family: Family,
  ) {}

  run(): IptablesRuleset {
    const text = this.text
    const n = text.length
    let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0
    let lastContent = 0
    while (pos < n) {
      let end = text.indexOf('\n', pos)
      if (end < 0) end = n
      let line = text.slice(pos, end)
      pos = end + 1
      this.lineNo++
      if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1)
      this.lineText = line
      let c = line.charCodeAt(0)
      if (c === 32 || c === 9) {
        line = line.trim()
        c = line.charCodeAt(0)
      }
      if (line.length === 0) continue
      lastContent = this.lineNo
      if (c === 35 /* # */) {
        if (this.backend === undefined && line.startsWith('# Generated by ')) this.header(line)
        else if (line.startsWith('# Warning: ') || line.startsWith('# Table ')) this.notice(line)
        continue
      }
      if (c === 45 /* - */ || c === 91 /* [ */) this.command(line)
      else if (c === 58 /* : */) this.chainLine(line)
      else if (c === 42 /* * */) this.tableLine(line)
      else if (line === 'COMMIT' || (line.startsWith('COMMIT') && line.slice(6).trim() === '')) this.commit()
      else throw this.err(this.table ? 'a rule (-A), a chain (:NAME POLICY) or COMMIT' : 'a table (*filter, *nat, ...) or a # comment', line)
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

  private notice(line: string): void {
    const legacy = /^# Warning: (ip6?|arp|eb)tables-legacy tables present, use [\w -]+? to see them\s*$/.exec(line)
    if (legacy) {
      this.legacyPresent = true
      const p = legacy[1]!
      const save = p === 'ip' ? 'save `iptables-legacy-save` as iptables-legacy-save.txt beside it' : `see them with \`${p}tables-legacy-save\` (not read by lvsdoctor)`
      this.report(`${p}tables-legacy tables are present on this host and are not in this dump (rules of the legacy backend, which the kernel runs too): ${save}`)
      return
    }
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
    const t: MTable = {name, loc: this.loc(), chains: new Map()}
    this.tables.set(name, t)
    this.table = t
    this.recs = new Map()
    this.lastChain = undefined
  }

  private commit(): void {
    const t = this.table
    if (!t) throw this.err('a table (*filter, *nat, ...) before COMMIT', 'COMMIT')
    for (const p of this.pending) this.resolvePending(t, p)
    this.pending = []
    // arrays grown by push keep spare capacity (at least 17 slots); most chains of a big dump hold 1 to 3 rules
    for (const c of t.chains.values()) if (c.rules.length < 16) c.rules = c.rules.slice()
    this.table = undefined
  }

  private resolvePending(t: MTable, p: Pending): void {
    const where = (expected: string): ParseError =>
      new ParseError(this.file, p.rule!.loc.line, expected, p.rule!.loc.text)
    if (this.recs.has(p.name)) {
      if (p.args.length > 0) throw where(`no options after a jump to chain ${p.name}`)
      p.rule!.target = this.jumpTo(p.name, p.goto)
      return
    }
    if (p.goto) throw where(`a chain declared in table ${t.name} after -g (no chain ${p.name})`)
    throw where(`a chain declared in table ${t.name} or a target extension after -j (no chain or target ${p.name})`)
  }

  /** The shared jump/goto target for a chain of the open table (undefined when there is no such chain). */
  private jumpTo(chain: string, goto: boolean): Target | undefined {
    const rec = this.recs.get(chain)
    if (!rec) return undefined
    if (goto) return (rec.goto ??= {kind: 'goto', chain: rec.chain.name})
    return (rec.jump ??= {kind: 'jump', chain: rec.chain.name})
  }

  private addChain(t: MTable, c: MChain): void {
    t.chains.set(c.name, c)
    this.recs.set(c.name, {chain: c, jump: undefined, goto: undefined})
  }

  private chainLine(line: string): void {
    const t = this.table
    if (!t) throw this.err('a table (*filter, *nat, ...) before a chain declaration', line)
    const parts = tokenizeIptablesLineReference(line.slice(1))
    if (!parts || parts.length < 2 || parts.length > 3 || parts[0] === '') {
      throw this.err(':CHAIN POLICY [packets:bytes]', line)
    }
    const name = parts[0]!
    const pol = parts[1]!
    const counters = parts.length === 3 ? this.counters(parts[2]!) : undefined
    if (this.recs.has(name)) throw this.err(`each chain declared once (chain ${name} was declared before)`, line)
    const builtin = (BUILTIN_CHAINS[t.name] ?? []).includes(name)
    let policy: 'ACCEPT' | 'DROP' | undefined
    if (pol === 'ACCEPT' || pol === 'DROP') {
      if (builtin) policy = pol
      else this.report(`policy ${pol} on user chain ${name} (ignored: user chains have no policy)`)
    } else if (pol !== '-') {
      throw this.err('a chain policy ACCEPT, DROP or -', pol)
    }
    this.addChain(t, newChain(name, t.name, builtin, policy, counters, this.loc()))
  }

  private counters(tok: string): Counters {
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

  private command(line: string): void {
    const t = this.table
    const toks = tokenizeIptablesLineReference(line)
    if (!toks) throw this.err('a closing double quote', line)
    let i = 0
    let counters: Counters | undefined
    if (toks[0]!.charCodeAt(0) === 91 /* [ */) {
      counters = this.counters(toks[0]!)
      i = 1
    }
    const cmd = toks[i]
    if (!t) throw this.err('a table (*filter, *nat, ...) before the first rule', line)
    if (cmd === '-A' || cmd === '--append') {
      const chainName = toks[i + 1]
      if (chainName === undefined || chainName === '') throw this.err('a chain name after -A', line)
      // iptables-save groups rules by chain: most lines name the chain of the line before
      let chain = chainName === this.lastChain?.name ? this.lastChain : this.recs.get(chainName)?.chain
      if (!chain) {
        if (!(BUILTIN_CHAINS[t.name] ?? []).includes(chainName)) {
          throw this.err(`a chain declared in table ${t.name} before its rules (no chain ${chainName})`, line)
        }
        // builtin chains exist without a declaration; their policy stays unknown
        chain = newChain(chainName, t.name, true, undefined, undefined, this.loc())
        this.addChain(t, chain)
      }
      this.ruleCount++
      const d: Draft = {target: undefined, counters, pending: undefined}
      const other = this.family === 4 ? ['-6', '--ipv6'] : ['-4', '--ipv4']
      if (toks.slice(i + 2).some((x) => x === other[0] || x === other[1])) d.otherFamily = other[0] as '-4' | '-6'
      const matches = d.otherFamily === undefined ? this.parseRule(d, toks, i + 2) : []
      if (d.otherFamily !== undefined) {
        const flag = d.otherFamily
        this.report(`${flag}: iptables-restore leaves out a rule for the other address family (iptables(8) -4/-6: ignored, not an error), so it is not in the ruleset`)
        this.ruleCount--
        return
      }
      const index = chain.rules.length + 1
      const loc = this.loc()
      let rule: MRule
      // object literals with exactly the fields present keep every rule compact (no added properties)
      if (d.target !== undefined) {
        rule = d.counters === undefined
          ? {table: t.name, chain: chain.name, index, loc, matches, target: d.target}
          : {table: t.name, chain: chain.name, index, loc, matches, target: d.target, counters: d.counters}
      } else {
        rule = d.counters === undefined
          ? {table: t.name, chain: chain.name, index, loc, matches}
          : {table: t.name, chain: chain.name, index, loc, matches, counters: d.counters}
      }
      if (d.pending) d.pending.rule = rule
      chain.rules.push(rule as IptRule)
      this.lastChain = chain
      return
    }
    if (counters) throw this.err('-A after a [packets:bytes] prefix', cmd)
    if (cmd === '-N' || cmd === '--new-chain') {
      const name = toks[i + 1]
      if (name === undefined || toks.length !== i + 2) throw this.err('-N CHAIN', line)
      if (this.recs.has(name)) throw this.err(`each chain declared once (chain ${name} was declared before)`, line)
      const builtin = (BUILTIN_CHAINS[t.name] ?? []).includes(name)
      this.addChain(t, newChain(name, t.name, builtin, undefined, undefined, this.loc()))
      return
    }
    if (cmd === '-P' || cmd === '--policy') {
      const name = toks[i + 1]
      const pol = toks[i + 2]
      if (name === undefined || pol === undefined || toks.length !== i + 3) throw this.err('-P CHAIN POLICY', line)
      if (!(BUILTIN_CHAINS[t.name] ?? []).includes(name)) throw this.err(`a builtin chain of table ${t.name} after -P`, name)
      if (pol !== 'ACCEPT' && pol !== 'DROP') throw this.err('a chain policy ACCEPT or DROP', pol)
      const c = this.recs.get(name)?.chain
      if (c) c.policy = pol
      else this.addChain(t, newChain(name, t.name, true, pol, undefined, this.loc()))
      return
    }
    throw this.err('-A CHAIN (iptables-save prints only -A rules; -N and -P are accepted)', line)
  }

  // --- one rule ------------------------------------------------------------------------------------------------

  private next(opt: string): string {
    const v = this.toks[this.pos]
    if (v === undefined) throw this.err(`a value after ${opt}`, this.lineText)
    this.pos++
    return v
  }

  /** Old syntax `--opt ! value`: a `!` right after the option inverts it. */
  private postNeg(neg: boolean): boolean {
    if (this.toks[this.pos] === '!') {
      if (neg) throw this.err('a single ! per option', this.lineText)
      this.pos++
      return true
    }
    return neg
  }

  private parseRule(rule: Draft, toks: string[], start: number): Match[] {
    this.rule = rule
    this.toks = toks
    this.pos = start
    this.mods.length = 0
    this.proto = undefined
    this.tgt = undefined
    const m = this.scratch
    m.length = 0
    let mod: ModInst | undefined
    let inTarget = false
    while (this.pos < toks.length) {
      let tok = toks[this.pos++]!
      let neg = false
      if (tok === '!') {
        neg = true
        tok = toks[this.pos++]!
        if (tok === undefined) throw this.err('an option after !', this.lineText)
        if (tok === '!') throw this.err('a single ! per option', this.lineText)
      }
      if (tok.charCodeAt(0) !== 45 /* - */) {
        if (mod && !mod.known && !inTarget) {
          const args = mod.st!['args'] as string[]
          if (neg) args.push('!')
          args.push(tok)
          continue
        }
        const tg = this.curTarget()
        if (inTarget && tg && !tg.typed) {
          if (neg) tg.args.push('!')
          tg.args.push(tok)
          continue
        }
        throw this.err('an option (-s, -p, -m, -j, --dport, ...)', tok)
      }
      const core = tok.length === 2 ? tok : longCore(tok)
      switch (core) {
        case '-s':
        case '-d': {
          neg = this.postNeg(neg)
          m.push(this.addrMatch(core === '-s' ? 'src' : 'dst', neg, this.next(tok), tok))
          continue
        }
        case '-i':
        case '-o': {
          neg = this.postNeg(neg)
          const name = this.next(tok)
          m.push({kind: 'iface', dir: core === '-i' ? 'in' : 'out', neg, name})
          continue
        }
        case '-p': {
          neg = this.postNeg(neg)
          const v = this.next(tok)
          let pm = neg ? undefined : this.protoMatches.get(v)
          if (pm) {
            this.proto = (pm as {name: string}).name.toLowerCase()
            m.push(pm)
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
          m.push(pm)
          continue
        }
        case '-f': {
          neg = this.postNeg(neg)
          m.push({kind: 'fragment', neg})
          continue
        }
        case '-m': {
          if (neg) throw this.err('no ! before -m', this.lineText)
          const name = this.next(tok)
          mod = this.openModule(name)
          inTarget = false
          continue
        }
        case '-j':
        case '-g': {
          if (neg) throw this.err(`no ! before ${tok}`, this.lineText)
          if (this.curTarget() || rule.target) throw this.err('a single -j or -g per rule', this.lineText)
          const name = this.next(tok)
          this.openTarget(name, core === '-g')
          inTarget = true
          mod = undefined
          continue
        }
        case '-c': {
          const p = this.next(tok)
          if (tok === '--set-counters' && p.includes(':')) {
            rule.counters = this.counters(`[${p}]`)
          } else {
            const b = this.next(tok)
            if (!isDigits(p) || !isDigits(b)) throw this.err('-c PACKETS BYTES', `${p} ${b}`)
            rule.counters = {packets: Number(p), bytes: Number(b)}
          }
          continue
        }
        case '-4':
        case '-6':
          if ((core === '-4' ? 4 : 6) !== this.family) rule.otherFamily = core
          continue
      }
      if (tok.length === 2) throw this.err('an iptables option (-s, -d, -i, -o, -p, -f, -m, -j, -g)', tok)
      // an extension option: the target's, the current module's, an earlier module's, or an implicit protocol's
      this.negUsed = false
      const tg = this.curTarget()
      if (inTarget) {
        if (!tg) {
          const t = rule.target
          throw this.err(`no options after a jump to chain ${t && 'chain' in t ? t.chain : ''}`, tok)
        }
        this.targetOption(tg, tok, neg)
        continue
      }
      if (mod && !mod.known) {
        const args = mod.st!['args'] as string[]
        if (neg) args.push('!')
        args.push(tok)
        continue
      }
      let handled = false
      if (mod) handled = this.moduleOption(mod, tok, neg)
      if (!handled) {
        for (let k = this.mods.length - 1; k >= 0 && !handled; k--) {
          const other = this.mods[k]!
          if (other !== mod && other.known) handled = this.moduleOption(other, tok, neg)
        }
      }
      if (!handled && this.proto !== undefined) {
        const implicit = Object.hasOwn(IMPLICIT, this.proto) ? IMPLICIT[this.proto] : undefined
        if (implicit && !this.mods.some((x) => x.name === implicit)) {
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
    for (const inst of this.mods) this.closeModule(inst, m)
    const tg = this.curTarget()
    if (tg) this.closeTarget(tg)
    if (m.length === 0) return EMPTY
    if (m.length === 1) {
      const one = this.singles.get(m[0]!)
      if (one) return one
    }
    return m.slice()
  }

  private curTarget(): TgtInst | undefined {
    return this.tgt
  }

  // --- addresses -------------------------------------------------------------------------------------------------

  private prefix(text: string, opt: string): Prefix {
    const p = this.family === 4 ? fastPrefix4(text) ?? parsePrefix(text) : parsePrefix(text)
    if (!p || p.family !== this.family) {
      throw this.err(`an IPv${this.family} address or prefix after ${opt}`, text)
    }
    return p
  }

  private addrMatch(dir: 'src' | 'dst', neg: boolean, text: string, opt: string): Match {
    const known = this.addrMatches[(dir === 'dst' ? 1 : 0) + (neg ? 2 : 0)]!
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
    // known names are interned: the token is a fresh string on every line, and matches keep it
    const canon = KNOWN_MODULES.get(name)
    const known = canon !== undefined
    const inst: ModInst = {name: canon ?? name, known, out: [], st: known ? undefined : {args: [] as string[]}}
    this.mods.push(inst)
    return inst
  }

  private closeModule(inst: ModInst, m: Match[]): void {
    if (!inst.known) {
      m.push({kind: 'unknown', module: inst.name, args: inst.st!['args'] as string[]})
      this.report(`-m ${inst.name}`)
      return
    }
    if (!inst.st) {
      if (inst.name === 'addrtype' || inst.name === 'limit') inst.st = {kind: inst.name}
      else if (inst.name === 'recent') inst.st = {kind: 'recent', args: []}
      else if (inst.name === 'rpfilter') inst.st = {kind: 'rpfilter'}
      else if (inst.name === 'statistic' || inst.name === 'ipvs') throw this.err(`an option of -m ${inst.name}`, this.lineText)
    }
    const st = inst.st
    if (st) {
      switch (inst.name) {
        case 'statistic': {
          const neg = st['neg'] === true
          if (st['mode'] === 'random') {
            if (st['probability'] === undefined) throw this.err('--probability with statistic --mode random', this.lineText)
            const p = st['probability'] as number
            let sm = neg ? undefined : this.randomMatches.get(p)
            if (!sm) {
              sm = {kind: 'statistic', neg, mode: 'random', probability: p}
              if (!neg) {
                this.randomMatches.set(p, sm)
                this.singles.set(sm, [sm])
              }
            }
            inst.out.push(sm)
          } else if (st['mode'] === 'nth') {
            if (st['every'] === undefined) throw this.err('--every with statistic --mode nth', this.lineText)
            inst.out.push({kind: 'statistic', neg, mode: 'nth', every: st['every'] as number, packet: (st['packet'] as number | undefined) ?? 0})
          } else {
            throw this.err('--mode random or --mode nth with -m statistic', this.lineText)
          }
          break
        }
        case 'addrtype':
          inst.out.push(st as Match)
          break
        case 'limit':
          if (st['rate'] === undefined) st['rate'] = '3/hour' // libxt_limit's default
          inst.out.push(st as Match)
          break
        case 'recent':
        case 'ipvs':
          inst.out.push(st as Match)
          break
        case 'rpfilter':
          inst.out.push({kind: 'rpfilter', loose: st['loose'] === true, validMark: st['validMark'] === true, acceptLocal: st['acceptLocal'] === true, invert: st['invert'] === true})
          break
      }
    }
    for (const x of inst.out) m.push(x)
  }

  /** A known module's option this parser does not model: kept with its values and reported. */
  private unknownModuleOption(mod: ModInst, opt: string, neg: boolean): void {
    const args: string[] = neg ? ['!', opt] : [opt]
    while (this.pos < this.toks.length) {
      const v = this.toks[this.pos]!
      if (v.charCodeAt(0) === 45 || v === '!') break
      args.push(v)
      this.pos++
    }
    mod.out.push({kind: 'unknown', module: mod.name, args})
    this.report(`-m ${mod.name} ${opt}`)
  }

  /** Returns false when `opt` is not an option of this module. */
  private moduleOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    const name = mod.name
    switch (name) {
      case 'tcp':
      case 'udp':
      case 'sctp':
      case 'udplite':
      case 'dccp':
        return this.protoOption(mod, opt, neg0)
      case 'multiport': {
        const dir = opt === '--dports' || opt === '--destination-ports' ? 'dst'
          : opt === '--sports' || opt === '--source-ports' ? 'src' : opt === '--ports' ? 'any' : undefined
        if (!dir) return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        const ranges = v.split(',').map((part) => this.portRange(part, opt))
        mod.out.push({kind: 'port', module: 'multiport', dir, neg, ranges})
        return true
      }
      case 'state':
      case 'conntrack':
        return this.ctOption(mod, opt, neg0)
      case 'mark':
      case 'connmark': {
        if (opt !== '--mark') return false
        const neg = this.use(neg0)
        const [value, mask] = this.valueMask(this.next(opt), opt)
        mod.out.push({kind: 'mark', module: name, neg, value, mask})
        return true
      }
      case 'statistic': {
        const st = (mod.st ??= {})
        if (opt === '--mode') {
          const v = this.next(opt)
          if (v !== 'random' && v !== 'nth') throw this.err('random or nth after --mode', v)
          st['mode'] = v
        } else if (opt === '--probability') {
          if (this.use(neg0)) st['neg'] = true
          const v = this.next(opt)
          const p = Number(v)
          if (v === '' || !Number.isFinite(p) || p < 0 || p > 1) throw this.err('a probability between 0 and 1 after --probability', v)
          st['probability'] = p
        } else if (opt === '--every') {
          if (this.use(neg0)) st['neg'] = true
          const v = this.uint(this.next(opt), opt)
          if (v < 1) throw this.err('a number of at least 1 after --every', String(v))
          st['every'] = v
        } else if (opt === '--packet') {
          st['packet'] = this.uint(this.next(opt), opt)
        } else {
          return false
        }
        return true
      }
      case 'comment': {
        if (opt !== '--comment') return false
        const text = this.next(opt)
        let m = this.commentMatches.get(text)
        if (!m) {
          m = {kind: 'comment', text}
          this.commentMatches.set(text, m)
        }
        mod.out.push(m)
        return true
      }
      case 'addrtype': {
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
      case 'iprange': {
        if (opt !== '--src-range' && opt !== '--dst-range') return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        const i = v.indexOf('-')
        const from = this.ip(i < 0 ? v : v.slice(0, i), opt)
        const to = i < 0 ? from : this.ip(v.slice(i + 1), opt)
        mod.out.push({kind: 'iprange', dir: opt === '--src-range' ? 'src' : 'dst', neg, from, to})
        return true
      }
      case 'icmp':
      case 'icmp6': {
        if (opt !== (name === 'icmp' ? '--icmp-type' : '--icmpv6-type')) return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        mod.out.push(this.icmpMatch(name === 'icmp' ? 4 : 6, neg, v, opt))
        return true
      }
      case 'mac': {
        if (opt !== '--mac-source') return false
        const neg = this.use(neg0)
        const v = this.next(opt)
        if (!/^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$/i.test(v)) {
          // published dumps redact MACs as XX:XX:XX:XX:XX:XX: keep the rule, report the match
          if (!/^[0-9a-fx]{1,2}(:[0-9a-fx]{1,2}){5}$/i.test(v)) throw this.err('a MAC address after --mac-source', v)
          mod.out.push({kind: 'unknown', module: 'mac', args: neg ? ['!', opt, v] : [opt, v]})
          this.report(`-m mac --mac-source ${v} (redacted, not a MAC address)`)
          return true
        }
        mod.out.push({kind: 'mac', neg, mac: v.split(':').map((x) => x.padStart(2, '0')).join(':').toLowerCase()})
        return true
      }
      case 'set': {
        if (opt !== '--match-set' && opt !== '--set') return false
        const neg = this.use(neg0)
        const setName = this.next(opt)
        const fl = this.next(opt)
        const flags = fl.split(',') as ('src' | 'dst')[]
        for (const f of flags) {
          if (f !== 'src' && f !== 'dst') throw this.err(`src/dst flags after ${opt} ${setName}`, fl)
        }
        mod.out.push({kind: 'set', neg, name: setName, flags})
        return true
      }
      case 'limit': {
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
      case 'recent': {
        if (!RECENT_OPTS.has(opt)) return false
        const st = (mod.st ??= {kind: 'recent', args: [] as string[]})
        const args = st['args'] as string[]
        const takesValue = RECENT_VALUE_OPTS.has(opt)
        if (this.use(neg0, takesValue)) args.push('!')
        args.push(opt)
        if (takesValue) args.push(this.next(opt))
        return true
      }
      case 'ipvs':
        return this.ipvsOption(mod, opt, neg0)
      case 'rpfilter': {
        const field = ({'--loose': 'loose', '--validmark': 'validMark', '--accept-local': 'acceptLocal', '--invert': 'invert'} as Record<string, string>)[opt]
        if (field === undefined) return false
        if (neg0) throw this.err(`${opt} without "!" (-m rpfilter negates with --invert)`, `! ${opt}`)
        ;(mod.st ??= {kind: 'rpfilter'})[field] = true
        return true
      }
    }
    return false
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
      const v = this.next(opt)
      let byText = this.portMatches.get(mod.name)
      if (!byText) {
        byText = [new Map(), new Map(), new Map(), new Map()]
        this.portMatches.set(mod.name, byText)
      }
      const known = byText[(dir === 'dst' ? 1 : 0) + (neg ? 2 : 0)]!
      let m = known.get(v)
      if (!m) {
        m = {kind: 'port', module: mod.name, dir, neg, ranges: [this.portRange(v, opt)]}
        known.set(v, m)
      }
      mod.out.push(m)
      return true
    }
    if (mod.name !== 'tcp') return false
    if (opt === '--tcp-flags') {
      const neg = this.use(neg0)
      const mask = this.list<string>(this.next(opt), TCP_FLAGS, 'TCP flags (SYN,ACK,FIN,RST,URG,PSH,ALL,NONE)', opt)
      const comp = this.list<string>(this.next(opt), TCP_FLAGS, 'TCP flags (SYN,ACK,FIN,RST,URG,PSH,ALL,NONE)', opt)
      mod.out.push({kind: 'tcpflags', neg, mask, comp})
      return true
    }
    if (opt === '--syn') {
      const neg = this.use(neg0, false)
      mod.out.push({kind: 'tcpflags', neg, mask: SYN_MASK, comp: SYN_COMP})
      return true
    }
    return false
  }

  private ctOption(mod: ModInst, opt: string, neg0: boolean): boolean {
    if (opt === (mod.name === 'state' ? '--state' : '--ctstate')) {
      const neg = this.use(neg0)
      const states = this.list<CtState>(this.next(opt), CT_STATES, 'connection states (NEW,ESTABLISHED,...)', opt)
      mod.out.push({kind: 'ctstate', module: mod.name as 'state' | 'conntrack', neg, states})
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
        mod.out.push({kind: 'ctaddr', which: opt.slice(4) as 'origsrc', neg, prefix})
        return true
      }
      case '--ctorigsrcport':
      case '--ctorigdstport':
      case '--ctreplsrcport':
      case '--ctrepldstport': {
        const neg = this.use(neg0)
        const range = this.portRange(this.next(opt), opt)
        mod.out.push({kind: 'ctport', which: opt.slice(4, -4) as 'origsrc', neg, range})
        return true
      }
      case '--ctstatus': {
        const neg = this.use(neg0)
        const statuses = this.list<string>(this.next(opt), CT_STATUSES, 'connection statuses (ASSURED,SEEN_REPLY,...)', opt)
        mod.out.push({kind: 'ctstatus', neg, statuses})
        return true
      }
      case '--ctproto': {
        const neg = this.use(neg0)
        mod.out.push({kind: 'ctproto', neg, proto: this.protoNumber(this.next(opt), opt)})
        return true
      }
      case '--ctdir': {
        const v = this.next(opt)
        if (v !== 'ORIGINAL' && v !== 'REPLY') throw this.err('ORIGINAL or REPLY after --ctdir', v)
        mod.out.push({kind: 'ctdir', dir: v})
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

  private openTarget(name: string, goto: boolean): void {
    if (goto) {
      const g = this.jumpTo(name, true)
      if (g) this.rule.target = g
      else this.addPending({name, goto: true, args: []})
      return
    }
    const typed = TYPED_TARGETS.get(name)
    if (typed) {
      this.tgt = {name: typed, typed: true, args: [], st: {}}
      return
    }
    const j = this.jumpTo(name, false)
    if (j) {
      this.rule.target = j
      return
    }
    if (EXTENSION_TARGETS.has(name)) {
      this.tgt = {name, typed: false, args: [], st: {}}
      return
    }
    // maybe a chain declared later with -N; checked at COMMIT
    const p: Pending = {name, goto: false, args: []}
    this.addPending(p)
    this.tgt = {name, typed: false, args: p.args, st: {pending: true}}
  }

  private addPending(p: Pending): void {
    this.pending.push(p)
    this.rule.pending = p
  }

  private targetOption(tg: TgtInst, opt: string, neg: boolean): void {
    if (!tg.typed) {
      if (neg) tg.args.push('!')
      tg.args.push(opt)
      return
    }
    if (neg) throw this.err(`no ! before the target option ${opt}`, this.lineText)
    tg.args.push(opt)
    const st = tg.st
    const take = (): string => {
      const v = this.next(opt)
      tg.args.push(v)
      return v
    }
    switch (tg.name) {
      case 'REJECT':
        if (opt === '--reject-with') {
          const v = take()
          const names = this.family === 4 ? REJECT_WITH_4 : REJECT_WITH_6
          const canon = Object.hasOwn(names, v) ? names[v] : undefined
          if (!canon) throw this.err(`an ICMP${this.family === 6 ? 'v6' : ''} reject type after --reject-with`, v)
          st['with'] = canon
          return
        }
        break
      case 'LOG':
        switch (opt) {
          case '--log-prefix':
            st['prefix'] = take()
            return
          case '--log-level': {
            const v = take()
            if (!/^([0-7]|emerg|alert|crit|err|error|warn|warning|notice|info|debug|panic)$/.test(v)) {
              throw this.err('a syslog level (0-7 or a name) after --log-level', v)
            }
            st['level'] = v
            return
          }
          case '--log-tcp-sequence':
          case '--log-tcp-options':
          case '--log-ip-options':
          case '--log-uid':
          case '--log-macdecode':
            ;((st['flags'] ??= []) as string[]).push(opt.slice(6))
            return
        }
        break
      case 'DNAT':
      case 'SNAT':
        if (opt === (tg.name === 'DNAT' ? '--to-destination' : '--to-source')) {
          const r = this.natRange(take(), opt)
          if (r) ((st['to'] ??= []) as NatRange[]).push(r)
          else tg.unknownOpt ??= `${opt} with a base port`
          return
        }
        if (opt === '--random' || opt === '--persistent' || opt === '--random-fully') {
          st[opt.slice(2)] = true
          return
        }
        break
      case 'MASQUERADE':
      case 'REDIRECT':
        if (opt === '--to-ports') {
          const v = take()
          st['ports'] = this.portRange(v, opt, v.includes('-') ? '-' : ':')
          return
        }
        if (opt === '--random' || (tg.name === 'MASQUERADE' && opt === '--random-fully')) {
          st[opt.slice(2)] = true
          return
        }
        break
      case 'MARK':
      case 'CONNMARK':
        if (this.markOption(tg, opt, take)) return
        break
      case 'CT':
        if (opt === '--notrack') {
          st['notrack'] = true
          return
        }
        if (CT_VALUE_OPTS.has(opt)) {
          const v = take()
          if (opt.startsWith('--zone')) this.report(`-j CT ${opt} ${v}: conntrack zones are not modelled (every entry is taken as zone 0's)`)
          return
        }
        break
    }
    // a known target with an option this parser does not know: keep it whole as an unknown target
    tg.unknownOpt ??= opt
    while (this.pos < this.toks.length) {
      const v = this.toks[this.pos]!
      if (v.charCodeAt(0) === 45 || v === '!') break
      tg.args.push(v)
      this.pos++
    }
  }

  private markOption(tg: TgtInst, opt: string, take: () => string): boolean {
    const st = tg.st
    const setOp = (op: string, value: number, mask: number): true => {
      if (st['op'] !== undefined) throw this.err(`a single ${tg.name} operation`, this.lineText)
      st['op'] = op
      st['value'] = value >>> 0
      st['mask'] = mask >>> 0
      return true
    }
    switch (opt) {
      case '--set-xmark': {
        const [v, m] = this.valueMask(take(), opt)
        return setOp('xset', v, m)
      }
      case '--set-mark': {
        const [v, m] = this.valueMask(take(), opt)
        return setOp('set', v, v | m)
      }
      case '--and-mark': {
        // the operand, as the dataplane's applyMark reads it (new = old & value); mask is the kernel's ~value
        const v = this.u32(take(), opt)
        return setOp('and', v, ~v)
      }
      case '--or-mark': {
        const v = this.u32(take(), opt)
        return setOp('or', v, v)
      }
      case '--xor-mark':
        return setOp('xor', this.u32(take(), opt), 0)
    }
    if (tg.name !== 'CONNMARK') return false
    switch (opt) {
      case '--save-mark':
      case '--restore-mark':
        if (st['op'] !== undefined) throw this.err('a single CONNMARK operation', this.lineText)
        st['op'] = opt === '--save-mark' ? 'save' : 'restore'
        return true
      case '--nfmask':
        st['nfmask'] = this.u32(take(), opt)
        return true
      case '--ctmask':
        st['ctmask'] = this.u32(take(), opt)
        return true
      case '--mask': {
        const v = this.u32(take(), opt)
        st['nfmask'] = v
        st['ctmask'] = v
        return true
      }
    }
    return false
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
    const rule = this.rule
    if (tg.st['pending']) return // resolved at COMMIT (args shared with the Pending entry)
    if (!tg.typed || tg.unknownOpt !== undefined) {
      rule.target = {kind: 'unknown', name: tg.name, args: tg.args}
      this.report(tg.unknownOpt !== undefined ? `-j ${tg.name} ${tg.unknownOpt}` : `-j ${tg.name}`)
      return
    }
    const st = tg.st
    switch (tg.name) {
      case 'ACCEPT':
      case 'DROP':
      case 'RETURN':
      case 'QUEUE':
      case 'NOTRACK':
      case 'TRACE':
        rule.target = SIMPLE_TARGETS[tg.name]!
        return
      case 'REJECT': {
        const w = (st['with'] as string | undefined) ?? (this.family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable')
        let r = this.rejects.get(w)
        if (!r) {
          r = {kind: 'REJECT', with: w}
          this.rejects.set(w, r)
        }
        rule.target = r
        return
      }
      case 'LOG': {
        const t: {kind: 'LOG'; prefix?: string; level?: string; flags?: string[]} = {kind: 'LOG'}
        if (st['prefix'] !== undefined) t.prefix = st['prefix'] as string
        if (st['level'] !== undefined) t.level = st['level'] as string
        if (st['flags'] !== undefined) t.flags = st['flags'] as string[]
        rule.target = t
        return
      }
      case 'DNAT':
      case 'SNAT': {
        const to = ((st['to'] as NatRange[] | undefined) ?? []).slice()
        if (to.length === 0) throw this.err(`${tg.name === 'DNAT' ? '--to-destination' : '--to-source'} with -j ${tg.name}`, this.lineText)
        const t: {kind: 'DNAT' | 'SNAT'; to: NatRange[]; random: boolean; persistent: boolean; randomFully?: boolean} = {
          kind: tg.name, to, random: st['random'] === true, persistent: st['persistent'] === true,
        }
        if (st['random-fully'] === true) t.randomFully = true
        rule.target = t
        return
      }
      case 'MASQUERADE':
      case 'REDIRECT': {
        const t: {kind: 'MASQUERADE' | 'REDIRECT'; ports?: [number, number]; random: boolean; randomFully?: boolean} = {
          kind: tg.name, random: st['random'] === true,
        }
        if (st['ports'] !== undefined) t.ports = st['ports'] as [number, number]
        if (st['random-fully'] === true) t.randomFully = true
        rule.target = t as Target
        return
      }
      case 'MARK':
      case 'CONNMARK': {
        const op = st['op'] as string | undefined
        if (op === undefined) throw this.err(`an operation (--set-xmark, --set-mark, ...) with -j ${tg.name}`, this.lineText)
        if (op === 'save' || op === 'restore') {
          rule.target = {kind: 'CONNMARK', op, nfmask: ((st['nfmask'] as number | undefined) ?? MAX32) >>> 0, ctmask: ((st['ctmask'] as number | undefined) ?? MAX32) >>> 0}
        } else {
          if (st['nfmask'] !== undefined || st['ctmask'] !== undefined) throw this.err(`--nfmask/--ctmask only with --save-mark or --restore-mark`, this.lineText)
          rule.target = {kind: tg.name, op: op as 'set', value: st['value'] as number, mask: st['mask'] as number}
        }
        return
      }
      case 'CT':
        rule.target = {kind: 'CT', notrack: st['notrack'] === true, args: tg.args}
        return
    }
  }
}

const IMPLICIT: Readonly<Record<string, string>> = {
  tcp: 'tcp', udp: 'udp', sctp: 'sctp', udplite: 'udplite', dccp: 'dccp', icmp: 'icmp', '1': 'icmp',
  'ipv6-icmp': 'icmp6', icmpv6: 'icmp6', '58': 'icmp6', '6': 'tcp', '17': 'udp', '132': 'sctp',
}

const KNOWN_MODULES: ReadonlyMap<string, string> = interned([
  'tcp', 'udp', 'sctp', 'udplite', 'dccp', 'multiport', 'state', 'conntrack', 'mark', 'connmark', 'statistic',
  'comment', 'addrtype', 'iprange', 'icmp', 'icmp6', 'mac', 'set', 'limit', 'recent', 'ipvs', 'rpfilter',
])

const RECENT_OPTS: ReadonlySet<string> = new Set([
  '--name', '--set', '--rcheck', '--update', '--remove', '--seconds', '--reap', '--hitcount', '--rttl', '--rsource',
  '--rdest', '--mask',
])
const RECENT_VALUE_OPTS: ReadonlySet<string> = new Set(['--name', '--seconds', '--hitcount', '--mask'])
const CT_VALUE_OPTS: ReadonlySet<string> = new Set([
  '--helper', '--ctevents', '--expevents', '--zone', '--zone-orig', '--zone-reply', '--timeout',
])

/**
 * Every chain has the same fields, in the same order (absent policy/counters are undefined): one object shape keeps
 * the hot paths that touch chains monomorphic.
 */
function newChain(name: string, table: string, builtin: boolean, policy: 'ACCEPT' | 'DROP' | undefined, counters: Counters | undefined, loc: Loc): MChain {
  return {name, table, builtin, policy, counters, loc, rules: []}
}

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
  let v = 0
  let octet = 0
  let digits = 0
  let dots = 0
  let i = 0
  const n = s.length
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48)
      if (++digits > 3 || octet > 255) return undefined
    } else if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return undefined
      v = v * 256 + octet
      octet = 0
      digits = 0
    } else {
      break
    }
  }
  if (dots !== 3 || digits === 0) return undefined
  v = v * 256 + octet
  let len = 32
  if (i < n) {
    if (s.charCodeAt(i) !== 47 /* / */ || n - i - 1 < 1 || n - i - 1 > 2) return undefined
    len = 0
    for (i++; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c < 48 || c > 57) return undefined
      len = len * 10 + (c - 48)
    }
    if (len > 32) return undefined
  }
  if (len < 32) v = len === 0 ? 0 : (v & ~((1 << (32 - len)) - 1)) >>> 0
  return {family: 4, value: BigInt(v), len}
}

/** True when `text` is a valid address with a mask that is not contiguous (which Prefix cannot express). */
function nonContiguous(text: string, family: Family): boolean {
  const slash = text.indexOf('/')
  if (slash < 0) return false
  const a = parseIp(text.slice(0, slash))
  const m = parseIp(text.slice(slash + 1))
  return !!a && !!m && a.family === family && m.family === family
}

export function parseIptablesSaveReference(text: string, file: string, family: Family): IptablesRuleset {
  if (text.includes('tables-legacy tables present')) {
    text = text.replace(/(?<=[^\n])(# Warning: (?:ip6?|arp|eb)tables-legacy tables present, use [\w -]+? to see them)\r?\n([^\n\r]*)/g, '$2\n$1')
  }
  return new Parser(text, file, family).run()
}
