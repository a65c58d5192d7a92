// Random kernel scenarios with native nftables rulesets: random-scenarios.ts's topology and roles (a DNAT director
// or a DR-shaped route, SNAT or not, the realserver answering through the director or around it via the router, a
// realserver firewall), written the way people write nft: `table ip`/`table inet`, several base chains on one hook
// at different priorities, policies accept/drop, ct state / ct status matches, anonymous and named sets, verdict
// maps, jumps and gotos to regular chains, meta/ct marks, nftlb-style service vmaps and numgen/jhash backend maps,
// snat/masquerade (also by mark), notrack in raw-priority chains, reject with tcp reset / icmp, counters and logs.
// Deterministic for a seed. Randomness the kernel would draw is avoided: `numgen inc` is deterministic (the first
// connection takes element 0), a `numgen random` map leads every element to the same backend, and a jhash map sends
// only the bucket lvsdoctor computes for the client to the live realserver (so a wrong hash shows as a failure).
//
// Addresses as scenarios.ts, interfaces with the prefix (default lnr):
//   c lnr-c0 203.0.113.10 ── lnr-d0 203.0.113.1  d  lnr-d1 10.1.0.1 ── lnr-r0 10.1.0.10  r
//   c lnr-c1 192.0.2.10   ── lnr-g1 192.0.2.1    g  lnr-g0 10.2.0.1 ── lnr-r1 10.2.0.10  r
import {mulberry32} from '../../bench/kube-common.js'
import {hashInput, jhash, reciprocalScale} from '../../src/dataplane/nft.js'
import {parseIp} from '../../src/model/ip.js'
import {CLIENT_PORT, type Scenario} from './harness.js'

const VIP = '198.51.100.100'
const LIVE = '10.1.0.10'
/** an address the director has no route to: a backend chosen there loses the SYN */
const DEAD = '10.9.9.9'
type Links = Scenario['links']

interface Chain {
  readonly name: string
  /** `type ... hook ... priority ...; policy ...;` for a base chain */
  readonly base?: string
  readonly rules: string[]
}
interface Table {
  readonly family: 'ip' | 'inet'
  readonly name: string
  readonly sets: string[]
  readonly chains: Chain[]
}

function render(tables: readonly Table[]): string {
  const out: string[] = []
  for (const t of tables) {
    out.push(`table ${t.family} ${t.name} {`)
    for (const s of t.sets) out.push(`\t${s}`)
    for (const c of t.chains) {
      out.push(`\tchain ${c.name} {`)
      if (c.base) out.push(`\t\t${c.base}`)
      for (const r of c.rules) out.push(`\t\t${r}`)
      out.push('\t}')
    }
    out.push('}')
  }
  return out.join('\n')
}

/** A setup command that loads a ruleset with `nft -f` (the heredoc keeps it verbatim). */
function nftLoad(tables: readonly Table[]): string[] {
  if (tables.length === 0) return []
  return [`nft -f - <<'LNR_EOF'\n${render(tables)}\nLNR_EOF`]
}

/** The jhash bucket of the client's connection as lvsdoctor computes it (see nft-scenarios.ts). */
function jhashBucket(seed: number, mod: number, fields: 'saddr' | 'saddr . sport'): number {
  const parts = [{expr: {kind: 'payload', protocol: 'ip', field: 'saddr'} as const, value: {t: 'addr', v: parseIp('203.0.113.10')!} as const}]
  if (fields === 'saddr . sport') parts.push({expr: {kind: 'payload', protocol: 'tcp', field: 'sport'}, value: {t: 'int', v: CLIENT_PORT}} as never)
  return reciprocalScale(jhash(hashInput(parts)!, seed), mod)
}

export function randomNftScenarios(seed: number, count: number, prefix = 'lnr'): Scenario[] {
  const dev = (s: string) => `${prefix}-${s}`
  const tn = (s: string) => `${prefix.replace(/[^A-Za-z0-9]/g, '_')}_${s}`
  const CD: Links[number] = ['c', dev('c0'), '203.0.113.10/24', 'd', dev('d0'), '203.0.113.1/24']
  const DR: Links[number] = ['d', dev('d1'), '10.1.0.1/24', 'r', dev('r0'), '10.1.0.10/24']
  const RG: Links[number] = ['r', dev('r1'), '10.2.0.10/24', 'g', dev('g0'), '10.2.0.1/24']
  const GC: Links[number] = ['g', dev('g1'), '192.0.2.1/24', 'c', dev('c1'), '192.0.2.10/24']
  const rnd = mulberry32(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const chance = (p: number) => rnd() < p
  /** 0..max items (1..max with atLeastOne), picked with repetition removed */
  const some = <T>(xs: readonly T[], max: number, atLeastOne = false): T[] => {
    const out: T[] = []
    for (let n = (atLeastOne ? 1 : 0) + Math.floor(rnd() * (max + (atLeastOne ? 0 : 1))); n > 0; n--) {
      const x = pick(xs)
      if (!out.includes(x)) out.push(x)
    }
    return out
  }
  // the rarer parts: their own stream, so that adding them leaves the first stream's draws unchanged
  const rnd2 = mulberry32((seed ^ 0x2c1b3c6d) >>> 0)
  const pick2 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd2() * xs.length)]!
  // a third stream (mark routing): LVSDOCTOR_KERNEL_EXTRA=0 leaves it out
  const rnd3 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x165667b1) >>> 0)
  const pick3 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd3() * xs.length)]!
  // a fourth stream (fib types limited to a device, the director's iif policy routing): EXTRA=0 leaves it out too
  const rnd4 = process.env.LVSDOCTOR_KERNEL_EXTRA === '0' ? () => 1 : mulberry32((seed ^ 0x27d4eb2f) >>> 0)
  const pick4 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd4() * xs.length)]!
  const out: Scenario[] = []
  for (let i = 0; i < count; i++) {
    const parts: string[] = []
    const mode = pick(['dnat', 'dnat', 'route'] as const)
    const viaG = chance(0.5)
    const port = mode === 'dnat' ? 8080 : 80
    const d: string[] = ['sysctl -qw net.ipv4.ip_forward=1']
    const r: string[] = [viaG ? 'ip route add default via 10.2.0.1' : 'ip route add default via 10.1.0.1']
    const g: string[] = ['sysctl -qw net.ipv4.ip_forward=1', 'ip route add 203.0.113.0/24 via 192.0.2.10']
    const dTables: Table[] = []
    const table = (family: 'ip' | 'inet', name: string): Table => {
      let t = dTables.find((x) => x.name === tn(name) && x.family === family)
      if (!t) dTables.push((t = {family, name: tn(name), sets: [], chains: []}))
      return t
    }

    // ---- the director's nat ----
    const natFam = pick(['ip', 'inet'] as const)
    const ipTo = natFam === 'inet' ? 'ip to' : 'to'
    const nat = table(natFam, 'nat')
    let ctMarkMasq = false
    let metaMarkMasq = false
    const snat = viaG && mode === 'dnat' ? pick(['none', 'snat', 'masq', 'ctmark', 'metamark'] as const) : pick(['none', 'none', 'snat', 'masq', 'ctmark', 'metamark'] as const)
    if (mode === 'dnat') {
      d.push(`ip addr add ${VIP}/32 dev ${dev('d0')}`)
      const style = pick(['plain', 'plain', 'anon', 'vmap', 'numgen', 'jhash', 'random', 'fib'] as const)
      const prio = pick(['dstnat', '-100', 'dstnat'])
      const pre: Chain = {name: 'prerouting', base: `type nat hook prerouting priority ${prio}; policy accept;`, rules: []}
      nat.chains.push(pre)
      const markStmt = snat === 'ctmark' ? 'ct mark set 0x1 ' : ''
      ctMarkMasq = snat === 'ctmark'
      // an earlier nat chain (another table) that binds first, accepts without binding, or matches nothing
      // or one at the same priority: of two, the chain registered later (later in the file) is called first
      const early = chance(0.25) ? pick(['accept', 'other', 'binds', 'tie-first', 'tie-second', 'late'] as const) : undefined
      const backend = early === 'binds' || early === 'tie-first' ? DEAD : LIVE
      switch (style) {
        case 'plain':
          pre.rules.push(`ip daddr ${VIP} tcp dport 80 ${markStmt}dnat ${ipTo} ${backend}:8080`)
          break
        case 'anon':
          pre.rules.push(`ip daddr { ${VIP}, 198.51.100.101 } tcp dport { 80, 443 } ${markStmt}dnat ${ipTo} ${backend}:8080`)
          break
        case 'vmap': {
          // nftlb's layout: a services map into one chain per farm
          nat.sets.push(`map ${tn('svc')} { type ipv4_addr . inet_service : verdict; elements = { ${VIP} . 80 : ${pick(['goto', 'jump'])} farm01 } }`)
          pre.rules.push(`ip daddr . tcp dport vmap @${tn('svc')}`)
          nat.chains.push({name: 'farm01', rules: [...(markStmt ? [markStmt.trim()] : []), `meta l4proto tcp dnat ${ipTo} ${backend}:8080`]})
          break
        }
        case 'numgen':
          // nft_ng_inc: the first connection takes element 0
          pre.rules.push(`ip daddr ${VIP} tcp dport 80 ${markStmt}dnat ${ipTo} numgen inc mod 2 map { 0 : ${backend}, 1 : ${DEAD} }:8080`)
          break
        case 'jhash': {
          const hseed = Math.floor(rnd() * 0xffffffff) >>> 0
          const mod = pick([2, 4])
          const fields = pick(['saddr', 'saddr . sport'] as const)
          const b = jhashBucket(hseed, mod, fields)
          const elems = Array.from({length: mod}, (_, k) => `${k} : ${k === b ? backend : DEAD}`).join(', ')
          pre.rules.push(`ip daddr ${VIP} tcp dport 80 ${markStmt}dnat ${ipTo} jhash ${fields === 'saddr' ? 'ip saddr' : 'ip saddr . tcp sport'} mod ${mod} seed 0x${hseed.toString(16)} map { ${elems} }:8080`)
          parts.push(`jhash bucket ${b} of ${mod}`)
          break
        }
        case 'fib':
          // kube-proxy's nft shape: services on the host's own addresses
          pre.rules.push(`fib daddr type local tcp dport 80 ${markStmt}dnat ${ipTo} ${backend}:8080`)
          break
        case 'random':
          pre.rules.push(`ip daddr ${VIP} tcp dport 80 ${markStmt}dnat ${ipTo} numgen random mod 2 map { 0 : ${backend}, 1 : ${backend} }:8080`)
          break
      }
      parts.push(`dnat ${style} (${natFam}, priority ${prio})`)
      if (early) {
        const efam = pick(['ip', 'inet'] as const)
        const et = table(efam, 'early')
        const to = efam === 'inet' ? 'ip to' : 'to'
        const rule =
          early === 'accept' ? `ip daddr ${VIP} tcp dport 80 counter accept`
          : early === 'other' ? `tcp dport 2222 dnat ${to} 10.1.0.11:22`
          : early === 'tie-second' || early === 'late' ? `ip daddr ${VIP} tcp dport 80 dnat ${to} ${DEAD}:8080`
          : `ip daddr ${VIP} tcp dport 80 dnat ${to} ${LIVE}:8080`
        const eprio = early === 'tie-first' || early === 'tie-second' ? pick(['dstnat', '-100']) : early === 'late' ? pick(['-90', 'dstnat + 10']) : pick(['-150', 'dstnat - 10'])
        // tie-first: this chain, later in the file, is called first and binds the live backend (the main chain
        // says dead); tie-second: this chain (dead) moves before the main one in the file, so the main chain is
        // called first and binds the live backend (nf_hook_entries_grow: a later entry goes before equal ones)
        if (early === 'tie-second') {
          dTables.splice(dTables.indexOf(et), 1)
          dTables.splice(dTables.indexOf(nat), 0, et)
        }
        et.chains.push({name: 'prerouting', base: `type nat hook prerouting priority ${eprio}; policy accept;`, rules: [rule]})
        parts.push(`other nat chain: ${early}`)
      }
    } else {
      d.push(`ip route add ${VIP}/32 via ${LIVE}`)
      r.unshift(`ip addr add ${VIP}/32 dev lo`)
      parts.push('route')
    }
    if (snat !== 'none' && (mode === 'dnat' || snat === 'masq')) {
      const post: Chain = {name: 'postrouting', base: `type nat hook postrouting priority ${pick(['srcnat', '100'])}; policy accept;`, rules: []}
      nat.chains.push(post)
      if (snat === 'snat') post.rules.push(`ip daddr ${LIVE} tcp dport ${port} snat ${ipTo} 10.1.0.1`)
      else if (snat === 'masq') post.rules.push(`oifname "${dev('d1')}" masquerade`)
      else if (snat === 'ctmark') post.rules.push('ct mark 0x1 masquerade')
      else {
        metaMarkMasq = true
        post.rules.push('meta mark 0x10 masquerade')
      }
      parts.push(`snat ${snat}`)
    }
    // ---- the director's mangle-priority marks ----
    if (metaMarkMasq || chance(0.25)) {
      const fam = pick(['ip', 'inet'] as const)
      const mark = metaMarkMasq || chance(0.5) ? 'meta mark set 0x10' : pick(['ct mark set 0x1', 'meta mark set 0x10 ct mark set meta mark'])
      if (mark.includes('ct mark')) ctMarkMasq = true
      table(fam, 'mangle').chains.push({name: 'prerouting', base: 'type filter hook prerouting priority mangle; policy accept;', rules: [`ip daddr ${VIP} tcp dport 80 ${mark}`]})
      parts.push(`mangle: ${mark}`)
    }
    // ---- the director's forward filter: a template (open, stateful as firewalld or a hand-written firewall
    // would be, or rules drawn at random), then at times one rule from the pool inserted anywhere ----
    const fwdFam = pick(['ip', 'inet', 'inet'] as const)
    const filter = table(fwdFam, 'filter')
    const fwdPool = [
      'ct state established,related accept',
      'ct state vmap { established : accept, related : accept, invalid : drop }',
      'ct state invalid drop',
      `ct state new tcp dport ${port} accept`,
      `tcp flags & (syn | ack) == syn ip daddr ${LIVE} accept`,
      `ip saddr ${LIVE} accept`,
      `ip daddr { ${LIVE}, 10.1.0.11 } accept`,
      'ip daddr @backends accept',
      `ip daddr . tcp dport @svcs accept`,
      `ip daddr ${VIP} tcp dport 80 accept`,
      `iifname "${dev('d0')}" accept`,
      `oifname "${dev('d0')}" accept`,
      `tcp sport ${port} accept`,
      'ct status dnat accept',
      'ct status snat accept',
      `ct original ip daddr ${VIP} accept`,
      'ct direction reply accept',
      `tcp dport != ${port} ct state new drop`,
      'ip daddr 10.1.0.0/24 accept',
      'tcp dport 8000-8100 accept',
      `meta l4proto tcp th dport ${port} accept`,
      'tcp flags fin drop',
      'reject with icmp type host-prohibited',
      'meta l4proto tcp reject with tcp reset',
      'jump fwd_allow',
      'goto fwd_allow',
      `ip daddr . tcp dport vmap { ${LIVE} . 8080 : accept, ${VIP} . 80 : accept }`,
      'ct mark 0x1 accept',
      'meta mark 0x10 accept',
      'counter',
      `log prefix "${prefix}-fwd "`,
    ]
    const fwdTemplate = pick(['open', 'stateful', 'stateful', 'hand'] as const)
    const fwdRules: string[] = []
    if (fwdTemplate === 'open') fwdRules.push(...some(fwdPool, 2))
    else if (fwdTemplate === 'stateful') {
      fwdRules.push(pick(['ct state established,related accept', 'ct state { established, related } accept', 'ct state vmap { established : accept, related : accept, invalid : drop }']))
      if (chance(0.5)) fwdRules.push('ct state invalid drop')
      fwdRules.push(
        pick([
          'ct status dnat accept',
          mode === 'dnat' ? `ip daddr ${LIVE} tcp dport 8080 accept` : `ip daddr ${VIP} tcp dport 80 accept`,
          'jump fwd_allow',
          'ip daddr . tcp dport @svcs accept',
          `ct original ip daddr ${VIP} meta l4proto tcp ct original proto-dst 80 accept`,
          `ct state new tcp dport ${port} accept`,
          `iifname "${dev('d0')}" ct state new accept`,
          'meta mark 0x10 accept',
        ]),
      )
      if (chance(0.4)) fwdRules.push(pick([fwdFam === 'inet' ? 'reject with icmpx type admin-prohibited' : 'reject with icmp type admin-prohibited', 'reject with icmp type host-prohibited', 'meta l4proto tcp reject with tcp reset', 'counter drop']))
    } else fwdRules.push(...some(fwdPool, 4))
    if (chance(0.35)) fwdRules.splice(Math.floor(rnd() * (fwdRules.length + 1)), 0, pick(fwdPool))
    const fwdPolicy = fwdTemplate === 'stateful' ? pick(['drop', 'drop', 'accept']) : pick(['accept', 'accept', 'drop'])
    filter.chains.push({name: 'forward', base: `type filter hook forward priority ${pick(['filter', '0', 'filter + 10'])}; policy ${fwdPolicy};`, rules: fwdRules})
    if (fwdRules.some((x) => x.includes('@backends'))) filter.sets.push(`set backends { type ipv4_addr; elements = { ${LIVE}, 10.1.0.11 } }`)
    if (fwdRules.some((x) => x.includes('@svcs'))) filter.sets.push(`set svcs { type ipv4_addr . inet_service; elements = { ${LIVE} . 8080, ${VIP} . 80, 10.1.0.11 . 22 } }`)
    if (fwdRules.some((x) => x.includes('fwd_allow'))) {
      filter.chains.push({
        name: 'fwd_allow',
        rules: some([`ip daddr ${LIVE} tcp dport 8080 counter accept`, `ip daddr ${VIP} tcp dport 80 accept`, 'ct state new return', `ip saddr ${LIVE} accept`, 'ct state established accept', 'tcp flags fin drop', 'ct status dnat accept'], 2, true),
      })
    }
    parts.push(`forward ${fwdFam} ${fwdTemplate} policy ${fwdPolicy}`)
    if (chance(0.3)) {
      // a second forward chain on the same hook (firewalld's table beside a hand-written one)
      const fam = pick(['ip', 'inet'] as const)
      const prio = pick(['filter - 10', '-150', 'filter + 20', '10'])
      table(fam, 'fw2').chains.push({name: 'forward', base: `type filter hook forward priority ${prio}; policy ${pick(['accept', 'accept', 'drop'])};`, rules: some(fwdPool.filter((x) => !x.includes('@') && !x.includes('fwd_allow')), 2)})
      parts.push(`second forward chain at ${prio}`)
    }
    if (chance(0.2)) {
      // the director's own output: what it sends itself (a reject's RST or ICMP error) goes out through it
      const fam = pick(['ip', 'inet'] as const)
      table(fam, 'local').chains.push({name: 'output', base: `type filter hook output priority filter; policy ${pick(['accept', 'drop'])};`, rules: some(['oifname "lo" accept', 'ct state established,related accept', 'meta l4proto icmp drop', 'tcp flags rst drop', `oifname "${dev('d0')}" accept`], 2, true)})
      parts.push('director output')
    }
    if (chance(0.15)) {
      // the service untracked on the director: no DNAT for it, and ct state sees untracked
      const fam = pick(['ip', 'inet'] as const)
      table(fam, 'raw').chains.push({name: 'prerouting', base: `type filter hook prerouting priority ${pick(['raw', '-300'])}; policy accept;`, rules: [`ip daddr ${VIP} tcp dport 80 notrack`]})
      parts.push('notrack on the director')
    }
    if (chance(0.12)) {
      // a prerouting filter chain after the nat chains (priority above -100): it sees the translated address
      const fam = pick(['ip', 'inet'] as const)
      table(fam, 'post_dnat').chains.push({name: 'prerouting', base: `type filter hook prerouting priority ${pick(['-90', 'dstnat + 10', '0'])}; policy accept;`, rules: [pick([`ip daddr ${VIP} tcp dport 80 counter drop`, `ip daddr ${LIVE} tcp dport 8080 meta mark set 0x10`])]})
      parts.push('prerouting filter after dnat')
    }
    if (chance(0.1)) {
      // a chain before conntrack (priority below -200): nft_ct_get_eval finds no conntrack entry there
      const fam = pick(['ip', 'inet'] as const)
      table(fam, 'early_raw').chains.push({name: 'prerouting', base: `type filter hook prerouting priority ${pick(['raw', '-250'])}; policy accept;`, rules: [pick(['ct state invalid drop', 'ct state untracked drop', `ip daddr ${VIP} ct state invalid counter drop`])]})
      parts.push('ct state before conntrack on the director')
    }
    d.push(...nftLoad(dTables))

    // ---- the realserver ----
    const rTables: Table[] = []
    const rs: Table = {family: pick(['ip', 'inet', 'inet'] as const), name: tn('rs'), sets: [], chains: []}
    const rsPool = [
      'ct state established,related accept',
      `ct state new tcp dport ${port} accept`,
      `tcp dport ${port} accept`,
      'ct state invalid drop',
      'ip saddr 203.0.113.10 accept',
      'ip saddr 10.1.0.1 accept',
      `iifname "${dev('r0')}" accept`,
      `ip saddr { 203.0.113.0/24, 10.1.0.0/24 } tcp dport ${port} accept`,
      `tcp dport vmap { ${port} : accept, 22 : accept }`,
      `ip daddr ${VIP} tcp dport 80 accept`,
      `ip saddr != 10.1.0.0/24 tcp dport ${port} drop`,
      `ip saddr . tcp dport { 203.0.113.0/24 . ${port}, 10.1.0.0/24 . ${port} } accept`,
      'reject',
      'meta l4proto tcp reject with tcp reset',
      `tcp dport ${port} drop`,
    ]
    const rsTemplate = pick(['none', 'stateful', 'stateful', 'hand'] as const)
    const rsRules: string[] = []
    if (rsTemplate === 'stateful') {
      rsRules.push(pick(['ct state established,related accept', 'ct state vmap { established : accept, related : accept, invalid : drop }']))
      if (chance(0.5)) rsRules.push('ct state invalid drop')
      rsRules.push(pick([`tcp dport ${port} accept`, `ip saddr { 203.0.113.0/24, 10.1.0.0/24 } tcp dport ${port} accept`, `tcp dport vmap { ${port} : accept, 22 : accept }`, `ct state new tcp dport ${port} accept`, `ip saddr 203.0.113.10 tcp dport ${port} accept`]))
      if (chance(0.4)) rsRules.push(pick(['reject', 'meta l4proto tcp reject with tcp reset', rs.family === 'inet' ? 'reject with icmpx type port-unreachable' : 'reject with icmp type port-unreachable']))
    } else if (rsTemplate === 'hand') rsRules.push(...some(rsPool, 3, true))
    if (rsTemplate !== 'none' && chance(0.3)) rsRules.splice(Math.floor(rnd() * (rsRules.length + 1)), 0, pick(rsPool))
    const rsPolicy = rsTemplate === 'stateful' ? pick(['drop', 'drop', 'accept']) : rsTemplate === 'hand' ? pick(['accept', 'accept', 'drop']) : 'accept'
    const input: Chain = {name: 'input', base: `type filter hook input priority ${pick(['filter', '0'])}; policy ${rsPolicy};`, rules: rsRules}
    parts.push(`realserver ${rsTemplate} policy ${rsPolicy}`)
    rs.chains.push(input)
    if (chance(0.3)) {
      rs.chains.push({
        name: 'output',
        base: `type filter hook output priority filter; policy ${pick(['accept', 'drop'])};`,
        rules: some(['ct state established accept', `tcp sport ${port} accept`, 'ct state invalid drop', `oifname "${dev('r1')}" drop`, `iifname != "lo" tcp sport ${port} accept`, 'iifname "lo" accept'], 2),
      })
      parts.push('realserver output')
    }
    if (input.rules.length > 0 || rs.chains.length > 1 || input.base!.includes('drop')) rTables.push(rs)
    if (chance(0.15)) {
      const rules = [`tcp dport ${port} notrack`]
      const chains: Chain[] = [{name: 'prerouting', base: 'type filter hook prerouting priority raw; policy accept;', rules}]
      if (chance(0.5)) chains.push({name: 'output', base: 'type filter hook output priority raw; policy accept;', rules: [`tcp sport ${port} notrack`]})
      rTables.push({family: pick(['ip', 'inet'] as const), name: tn('raw'), sets: [], chains})
      parts.push('notrack on the realserver')
    }
    r.push(...nftLoad(rTables))
    if (chance(0.1)) {
      // an iptables-nft rule beside the native tables (the host's iptables is the nf_tables backend)
      r.push(`iptables -A INPUT ${pick([`-p tcp --dport ${port} -j ACCEPT`, '-s 192.0.2.0/24 -j DROP', `-p tcp --dport ${port} -m conntrack --ctstate INVALID -j DROP`])}`)
      parts.push('iptables-nft on the realserver')
    }
    const rp = pick(['0', '0', '0', '0', '1', '2'])
    if (rp !== '0') {
      r.push(`sysctl -qw net.ipv4.conf.all.rp_filter=${rp}`)
      parts.push(`rp_filter ${rp} on the realserver`)
    }

    // ---- the router ----
    const gTables: Table[] = []
    if (viaG && chance(0.3)) {
      const fam = pick(['ip', 'inet'] as const)
      const rule = chance(0.5) ? `oifname "${dev('g1')}" masquerade` : `oifname "${dev('g1')}" meta l4proto tcp snat ${fam === 'inet' ? 'ip to' : 'to'} 192.0.2.1`
      gTables.push({family: fam, name: tn('nat'), sets: [], chains: [{name: 'postrouting', base: 'type nat hook postrouting priority srcnat; policy accept;', rules: [rule]}]})
      parts.push('snat on the router')
    }
    // (second stream) a reverse path filter written in nft, as firewalld's or a hand-written raw chain has it:
    // `fib saddr . iif oif missing drop` drops what arrives where the route back to its source does not leave
    if (rnd2() < 0.2) {
      const where = viaG ? pick2(['r', 'g', 'd'] as const) : pick2(['r', 'd'] as const)
      const rule = pick2(['fib saddr . iif oif missing drop', 'fib saddr . iif oif 0 drop', `iifname != "lo" fib saddr . iif oif missing counter drop`])
      const t: Table = {family: pick2(['ip', 'inet'] as const), name: tn('rpf'), sets: [], chains: [{name: 'prerouting', base: `type filter hook prerouting priority ${pick2(['raw', 'mangle', 'filter + 10'])}; policy accept;`, rules: [rule]}]}
      if (where === 'r') r.push(...nftLoad([t]))
      else if (where === 'g') gTables.push(t)
      else d.push(...nftLoad([t]))
      parts.push(`nft reverse path filter on ${where}`)
    }
    // (third stream) policy routing by marks set in nft chains: a chain of type route routes a local packet again
    // after changing its mark (nf_route_table_hook), one of type filter does not; the director's mark routed too
    if (rnd3() < 0.3) {
      const type = pick3(['route', 'filter'] as const)
      const via = pick3(viaG ? ['10.1.0.1', '10.2.0.1', 'unreachable'] : ['10.1.0.1', 'unreachable'])
      const set = pick3(['meta mark set ct mark', 'meta mark set 0x1', 'ct mark 0x1 meta mark set 0x1'])
      const chains: Chain[] = [{name: 'output', base: `type ${type} hook output priority mangle; policy accept;`, rules: [set]}]
      if (set.includes('ct mark')) chains.unshift({name: 'prerouting', base: 'type filter hook prerouting priority mangle; policy accept;', rules: [pick3([`iifname "${dev('r0')}" ct state new ct mark set 0x1`, `iifname "${dev('r0')}" ct mark set 0x1`])]})
      r.push(...nftLoad([{family: pick3(['ip', 'inet'] as const), name: tn('rt'), sets: [], chains}]))
      r.push('ip rule add fwmark 0x1 lookup 101 pref 101', via === 'unreachable' ? 'ip route add unreachable default table 101' : `ip route add default via ${via} table 101`)
      parts.push(`realserver mark routing (${type} chain: ${set}) -> ${via}`)
    }
    if (rnd3() < 0.2) {
      const mark = parts.some((x) => x.includes('meta mark set 0x10')) ? '0x10' : '0x7'
      if (mark === '0x7') d.push(...nftLoad([{family: pick3(['ip', 'inet'] as const), name: tn('dmark'), sets: [], chains: [{name: 'prerouting', base: `type filter hook prerouting priority ${pick3(['mangle', 'raw', 'filter'])}; policy accept;`, rules: [`ip daddr ${VIP} tcp dport 80 meta mark set 0x7`]}]}]))
      const to = pick3(['unreachable default', 'prohibit default', `default via ${LIVE}`, 'blackhole default'])
      d.push(`ip rule add fwmark ${mark} lookup 107 pref 107`, `ip route add ${to} table 107`)
      parts.push(`director fwmark ${mark} routing -> ${to}`)
    }
    // (fourth stream) `fib daddr . iif type local`: the address's type on the arrival device only (a VIP on lo is not
    // local "on" the uplink); an earlier nat chain that sends it to the dead backend when it does match
    if (mode === 'dnat' && rnd4() < 0.25) {
      const onLo = rnd4() < 0.5
      const fam = pick4(['ip', 'inet'] as const)
      const rule = pick4(['fib daddr . iif type local', 'fib daddr . iif type != local', 'fib daddr type local'])
      if (onLo) d.push(`ip addr del ${VIP}/32 dev ${dev('d0')}`, `ip addr add ${VIP}/32 dev lo`)
      const to = rule.includes('!=') ? `${fam === 'inet' ? 'ip to' : 'to'} ${LIVE}:8080` : `${fam === 'inet' ? 'ip to' : 'to'} ${DEAD}:8080`
      d.push(...nftLoad([{family: fam, name: tn('fibnat'), sets: [], chains: [{name: 'prerouting', base: 'type nat hook prerouting priority -110; policy accept;', rules: [`${rule} tcp dport 80 dnat ${to}`]}]}]))
      parts.push(`earlier '${rule}' dnat to ${to.split(' ').pop()}${onLo ? ', VIP on lo' : ''}`)
    }
    if (rnd4() < 0.15) {
      // the director routes what arrives from the backends' side by a table of its own, with rp_filter
      const to = pick4([`203.0.113.0/24 dev ${dev('d0')}`, `default via ${LIVE}`, 'unreachable default'])
      d.push(`ip rule add iif ${dev('d1')} lookup 103 pref 95`, `ip route add ${to} table 103`, `sysctl -qw net.ipv4.conf.all.rp_filter=${pick4(['0', '1', '2'])}`)
      parts.push(`director ip rule iif d1 -> ${to}`)
    }
    g.push(...nftLoad(gTables))

    out.push({
      name: `rn${seed % 1000}-${i}`,
      why: `random nft scenario ${i} of seed ${seed}: ${parts.join(', ')}, replies via ${viaG ? 'the router' : 'the director'}`,
      ns: {
        c: {role: 'client', setup: ['ip route add default via 203.0.113.1']},
        d: {role: 'director', setup: d},
        r: {role: 'realserver', setup: r},
        ...(viaG ? {g: {role: 'router' as const, setup: g}} : {}),
      },
      links: viaG ? [CD, DR, RG, GC] : [CD, DR],
      server: {ns: 'r', port},
      client: {ns: 'c', src: '203.0.113.10', connect: `${VIP}:80`},
      // not asserted: the kernel's result is the answer trace must give
      expect: {connected: false, reply: false, closed: false},
      prefix,
    })
  }
  return out
}
