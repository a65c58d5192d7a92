// The statistic cascade explorer (engine/cascade.ts) against the brute force it replaced (every 2^n
// assignment of the statistic rules, each fixed for the whole run), and the chain index the interpreter
// uses to skip rules (dataplane/chain-index.ts) against evaluating every rule.
import {describe, expect, test} from 'vitest'
import fc from 'fast-check'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {enumerate, reachableStatRules, type Enumeration, type StatRule} from '../../src/rules/engine/cascade.js'
import {IptablesFirewall, type Firewall} from '../../src/rules/engine/firewall.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket} from '../../src/rules/engine/packets.js'
import {parseIp, type IpAddr} from '../../src/model/ip.js'
import type {IptablesRuleset, IptRule} from '../../src/model/iptables.js'
import {evalMatch, ruleMatches, type MatchEnv} from '../../src/dataplane/netfilter.js'
import {candidateRules} from '../../src/dataplane/chain-index.js'
import {generateKubeProxyDump} from '../../bench/gen-kube-proxy.js'
import type {Packet} from '../../src/dataplane/packet.js'

const ip = (s: string): IpAddr => parseIp(s)!
const CLIENT = ip('203.0.113.10')
const VIP = ip('192.0.2.100')
const syn = (dst = VIP, dport = 80): Packet => flowPacket({src: CLIENT, sport: 40000, dst, dport, proto: 'tcp'}, 'SYN')
const env = (): MatchEnv => ({iif: 'eth0', ct: ctView('NEW'), addrType: () => 'UNICAST', random: () => 0})

function ruleset(tables: Record<string, readonly string[]>): IptablesRuleset {
  const text = Object.entries(tables)
    .map(([t, lines]) => `*${t}\n${lines.join('\n')}\nCOMMIT\n`)
    .join('')
  return parseIptablesSave(text, 'iptables-save.txt', 4)
}

/** What the PREROUTING run ends with: the DNAT rule and the mark. */
function runPre(fw: Firewall, pkt: Packet): {key: string} {
  const r = fw.runHook('PREROUTING', pkt, env(), true)
  const rule = r.nat?.decision.rule
  return {key: `${rule ? rule.loc.line : 'none'}|${r.packet.mark}|${r.ctMark}`}
}

/** The old enumeration: each statistic rule fixed to match or not for the whole run, 2^n runs. */
function bruteForce(rs: IptablesRuleset, stat: readonly StatRule[], pkt: Packet): {key: string; p: number}[] {
  const base = new IptablesFirewall([rs])
  const merged = new Map<string, number>()
  for (let bits = 0; bits < 1 << stat.length; bits++) {
    const assign = new Map<IptRule, boolean>(stat.map((s, i) => [s.rule, (bits & (1 << i)) !== 0]))
    const p = stat.reduce((acc, s, i) => acc * ((bits & (1 << i)) !== 0 ? s.p : 1 - s.p), 1)
    if (p === 0) continue
    const fw = Object.create(base) as IptablesFirewall
    Object.defineProperty(fw, 'runHook', {value: (h: never, q: Packet, e: MatchEnv, n: boolean) => base.runHook(h, q, {...e, draw: (rule) => assign.get(rule)}, n)})
    const k = runPre(fw, pkt).key
    merged.set(k, (merged.get(k) ?? 0) + p)
  }
  return [...merged].map(([key, p]) => ({key, p}))
}

function explored(rs: IptablesRuleset, pkt: Packet): {e: Enumeration<{key: string}>; stat: StatRule[]} {
  const stat = reachableStatRules([rs], ['PREROUTING'], pkt, env())
  return {e: enumerate([rs], stat, (fw) => runPre(fw, pkt), (v) => v.key), stat}
}

const PROBS = [0, 0.25, 0.3, 0.5, 0.7, 1] as const

describe('statistic cascades: the explorer gives the brute force distribution, in the same order', () => {
  const stat = (p: number) => `-m statistic --mode random --probability ${p.toFixed(11)}`
  const shapes = fc.record({
    // mangle: random MARK rules (set, or, with/without a mark guard), maybe a CONNMARK save between
    marks: fc.array(fc.record({p: fc.constantFrom(...PROBS), op: fc.constantFrom('--set-xmark', '--or-mark'), value: fc.integer({min: 1, max: 7}), guard: fc.boolean(), dport: fc.constantFrom(80, 443)}), {maxLength: 5}),
    save: fc.boolean(),
    // nat: a first-match DNAT cascade, some rules reading the mark, one maybe in a user chain
    dnats: fc.array(fc.record({p: fc.option(fc.constantFrom(...PROBS), {nil: undefined}), mark: fc.option(fc.integer({min: 0, max: 7}), {nil: undefined}), chain: fc.boolean()}), {minLength: 1, maxLength: 5}),
  })
  test('random small cascades (MARK last-match, DNAT first-match, guards, user chains)', () => {
    fc.assert(
      fc.property(shapes, ({marks, save, dnats}) => {
        const mangle = [':PREROUTING ACCEPT [0:0]']
        marks.forEach((m, i) => {
          if (save && i === 1) mangle.push('-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff')
          const v = m.op === '--or-mark' ? `0x${m.value.toString(16)}` : `0x${m.value.toString(16)}/0xffffffff`
          mangle.push(`-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport ${m.dport}${m.guard ? ' -m mark --mark 0x0' : ''} ${stat(m.p)} -j MARK ${m.op} ${v}`)
        })
        const nat = [':PREROUTING ACCEPT [0:0]', ':LB - [0:0]']
        dnats.forEach((d, i) => {
          const line = `${d.mark !== undefined ? ` -m mark --mark 0x${d.mark.toString(16)}` : ''}${d.p !== undefined ? ` ${stat(d.p)}` : ''} -j DNAT --to-destination 10.0.0.${i + 1}:80`
          nat.push(`-A ${d.chain ? 'LB' : 'PREROUTING'} -d 192.0.2.100/32 -p tcp${line}`)
        })
        nat.push('-A PREROUTING -d 192.0.2.100/32 -p tcp -j LB')
        const rs = ruleset({mangle, nat})
        const pkt = syn()
        const {e, stat: s} = explored(rs, pkt)
        const want = bruteForce(rs, s, pkt)
        expect(e.sampled).toBe(false)
        const got = new Map(e.outcomes.map((o) => [o.value.key, o.p]))
        expect([...got.keys()].sort()).toEqual(want.map((w) => w.key).sort())
        for (const w of want) expect(got.get(w.key)).toBeCloseTo(w.p, 12)
        // the same order too, unless a rule matches with probability 0 or 1: the brute force skipped the
        // assignments of zero probability, the explorer takes the undrawn rules as not matching
        if (s.every((x) => x.p > 0 && x.p < 1)) expect(e.outcomes.map((o) => o.value.key)).toEqual(want.map((w) => w.key))
      }),
      {numRuns: 150},
    )
  })

  test('a kube-proxy KUBE-SVC chain of 26 endpoints: 27 runs, each endpoint 1/26, exact', () => {
    const eps = 26
    const nat = [':PREROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-X - [0:0]']
    for (let i = 0; i < eps; i++) nat.push(`:KUBE-SEP-${i} - [0:0]`)
    nat.push('-A PREROUTING -j KUBE-SERVICES', '-A KUBE-SERVICES -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X')
    for (let i = 0; i < eps; i++) nat.push(`-A KUBE-SVC-X${i < eps - 1 ? ` ${stat(1 / (eps - i))}` : ''} -j KUBE-SEP-${i}`)
    for (let i = 0; i < eps; i++) nat.push(`-A KUBE-SEP-${i} -p tcp -m tcp -j DNAT --to-destination 10.1.0.${i + 1}:8080`)
    const {e} = explored(ruleset({nat}), syn())
    expect(e.sampled).toBe(false)
    expect(e.stat).toHaveLength(eps - 1)
    expect(e.outcomes).toHaveLength(eps)
    for (const o of e.outcomes) expect(o.p).toBeCloseTo(1 / eps, 10)
  })

  test('a block of 20 MARK rules (last match wins) is computed analytically, exactly', () => {
    const n = 20
    const mangle = [':PREROUTING ACCEPT [0:0]']
    for (let i = 0; i < n; i++) mangle.push(`-A PREROUTING -d 192.0.2.100/32 ${stat(0.5)} -j MARK --set-xmark 0x${(i + 1).toString(16)}/0xffffffff`)
    const {e} = explored(ruleset({mangle}), syn())
    expect(e.sampled).toBe(false)
    expect(e.outcomes).toHaveLength(n + 1)
    // the last rule wins half the time, the one before a quarter, ..., no mark 2^-20
    const byMark = new Map(e.outcomes.map((o) => [Number(o.value.key.split('|')[1]), o.p]))
    for (let i = 0; i < n; i++) expect(byMark.get(i + 1)).toBeCloseTo(0.5 ** (n - i), 12)
    expect(byMark.get(0)).toBeCloseTo(0.5 ** n, 12)
  })

  test('a MARK block with a rule that draws but cannot match (its later match fails), then DNAT by mark: as the brute force', () => {
    const mangle = [
      ':PREROUTING ACCEPT [0:0]',
      '-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      `-A PREROUTING -d 192.0.2.100/32 ${stat(0.3)} -j MARK --set-xmark 0x1/0xffffffff`,
      `-A PREROUTING -d 192.0.2.100/32 ${stat(0.5)} -m conntrack --ctstate ESTABLISHED -j MARK --set-xmark 0x2/0xffffffff`,
      `-A PREROUTING -d 192.0.2.100/32 ${stat(0.7)} -j MARK --set-xmark 0x3/0xffffffff`,
      `-A PREROUTING -d 192.0.2.100/32 ${stat(1)} -j MARK --set-xmark 0x4/0xffffffff`,
      `-A PREROUTING -d 192.0.2.100/32 ${stat(0.25)} -j MARK --set-xmark 0x5/0xffffffff`,
      '-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff',
    ]
    const nat = [':PREROUTING ACCEPT [0:0]', ...[1, 2, 3, 4, 5].map((m) => `-A PREROUTING -p tcp -m mark --mark 0x${m} -j DNAT --to-destination 10.0.0.${m}:80`)]
    const rs = ruleset({mangle, nat})
    const {e, stat: st} = explored(rs, syn())
    const want = bruteForce(rs, st, syn())
    expect(e.sampled).toBe(false)
    const got = new Map(e.outcomes.map((o) => [o.value.key, o.p]))
    expect([...got.keys()].sort()).toEqual(want.map((w) => w.key).sort())
    for (const w of want) expect(got.get(w.key)).toBeCloseTo(w.p, 12)
    // 0x5 a quarter, 0x4 the rest; 0x1-0x3 never survive the p=1 rule after them
    expect(e.outcomes.map((o) => [o.value.key.split('|')[1], o.p])).toEqual([
      ['4', 0.75],
      ['5', 0.25],
    ])
  })

  test('more reachable outcomes than the exploration budget: sampled, and said so', () => {
    // OR-ed marks do not overwrite each other: 2^14 distinct outcomes
    const mangle = [':PREROUTING ACCEPT [0:0]']
    for (let i = 0; i < 14; i++) mangle.push(`-A PREROUTING ${stat(0.5)} -j MARK --or-mark 0x${(1 << i).toString(16)}`)
    const {e} = explored(ruleset({mangle}), syn())
    expect(e.sampled).toBe(true)
    expect(e.outcomes.reduce((a, o) => a + o.p, 0)).toBeCloseTo(1, 9)
  })
})

describe('chain index: the rules it skips cannot match', () => {
  test('kube-proxy dump: nat KUBE-SERVICES / KUBE-NODEPORTS for every service address and port', () => {
    const rs = parseIptablesSave(generateKubeProxyDump(10000), 'iptables-save.txt', 4)
    const nat = rs.tables.get('nat')!
    const probes: Packet[] = [syn(ip('10.96.0.5'), 80), syn(ip('10.96.0.5'), 81), syn(ip('192.0.2.1'), 30003)]
    for (const r of nat.chains.get('KUBE-SERVICES')!.rules) {
      const d = r.matches.find((m) => m.kind === 'addr' && m.dir === 'dst')
      const pt = r.matches.find((m) => m.kind === 'port')
      if (d && d.kind === 'addr' && pt && pt.kind === 'port') probes.push(syn({family: 4, value: d.prefix.value}, pt.ranges[0]![0]))
    }
    for (const chain of ['KUBE-SERVICES', 'KUBE-NODEPORTS']) {
      const rules = nat.chains.get(chain)!.rules
      expect(rules.length).toBeGreaterThanOrEqual(16)
      for (const p of probes) {
        const cand = candidateRules(rules, p)
        expect(cand.length).toBeLessThan(rules.length)
        const e = {...env(), addrType: () => 'LOCAL' as const}
        const want = rules.filter((r) => ruleMatches(r, p, e, []))
        expect(cand.filter((r) => ruleMatches(r, p, e, []))).toEqual(want)
        // candidates keep chain order
        expect(cand.map((r) => r.index)).toEqual([...cand.map((r) => r.index)].sort((a, b) => a - b))
      }
    }
  })

  test('random chains of -d prefixes and --dport ports, statistic before or after the key', () => {
    const line = fc.record({
      dst: fc.option(fc.tuple(fc.integer({min: 0, max: 3}), fc.constantFrom(8, 24, 30, 32)), {nil: undefined}),
      neg: fc.boolean(),
      dport: fc.option(fc.integer({min: 79, max: 82}), {nil: undefined}),
      statFirst: fc.boolean(),
    })
    fc.assert(
      fc.property(fc.array(line, {minLength: 16, maxLength: 40}), fc.integer({min: 0, max: 3}), fc.integer({min: 79, max: 82}), (lines, host, dport) => {
        const text = lines.map((l) => {
          const st = ' -m statistic --mode nth --every 2 --packet 0'
          const d = l.dst ? ` ${l.neg ? '! ' : ''}-d 10.0.${l.dst[0]}.1/${l.dst[1]}` : ''
          const port = l.dport !== undefined ? ` -p tcp -m tcp --dport ${l.dport}` : ''
          return l.statFirst ? `-A C${st}${d}${port} -j ACCEPT` : `-A C${d}${port}${st} -j ACCEPT`
        })
        const rs = ruleset({filter: [':C - [0:0]', ...text]})
        const rules = rs.tables.get('filter')!.chains.get('C')!.rules
        const p = syn(ip(`10.0.${host}.1`), dport)
        const cand = new Set(candidateRules(rules, p))
        for (const r of rules) {
          if (cand.has(r)) continue
          // a skipped rule: one of its matches before any statistic match says no
          const before = r.matches.slice(0, r.matches.findIndex((m) => m.kind === 'statistic'))
          expect(before.some((m) => evalMatch(m, p, env()) === 'nomatch')).toBe(true)
        }
      }),
      {numRuns: 200},
    )
  })
})
