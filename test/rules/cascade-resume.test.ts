// The cascade explorer resumes a run from the checkpoint before the rule of the draw that differs (runChain
// `from`, IptablesFirewall.resumeHook) instead of replaying the hook from the top. Against the replay: an env
// with nth counters makes the explorer replay every run from the top (a checkpoint does not hold counters), so
// the two must give the same outcomes, probabilities and order. (A cascade of fewer than RESUME.minStat
// statistic rules is replayed anyway: the tests resume them all.)
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import fc from 'fast-check'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {enumerate, reachableStatRules, RESUME} from '../../src/rules/engine/cascade.js'
import type {Firewall} from '../../src/rules/engine/firewall.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket} from '../../src/rules/engine/packets.js'
import {parseIp} from '../../src/model/ip.js'
import type {IptablesRuleset} from '../../src/model/iptables.js'
import type {MatchEnv} from '../../src/dataplane/netfilter.js'
import type {Packet} from '../../src/dataplane/packet.js'

const syn = (dport = 80): Packet => flowPacket({src: parseIp('203.0.113.10')!, sport: 40000, dst: parseIp('192.0.2.100')!, dport, proto: 'tcp'}, 'SYN')
const stat = (p: number) => `-m statistic --mode random --probability ${p.toFixed(11)}`

function ruleset(tables: Record<string, readonly string[]>): IptablesRuleset {
  return parseIptablesSave(
    Object.entries(tables)
      .map(([t, lines]) => `*${t}\n${lines.join('\n')}\nCOMMIT\n`)
      .join(''),
    'iptables-save.txt',
    4,
  )
}

/** What the runs end with: the DNAT rule, marks and the trail, for one or two PREROUTING runs. */
function outcomes(rs: IptablesRuleset, replay: boolean, twice: boolean) {
  const env: MatchEnv = {iif: 'eth0', ct: ctView('NEW'), addrType: () => 'UNICAST', random: () => 0, ...(replay ? {nthCounters: new Map()} : {})}
  const pkt = syn()
  const other = syn(443)
  const stats = reachableStatRules([rs], ['PREROUTING'], pkt, env)
  const once = (fw: Firewall, p: Packet) => {
    const r = fw.runHook('PREROUTING', p, env, true)
    return `${r.nat?.decision.rule?.loc.line ?? 'none'}|${r.packet.mark}|${r.ctMark}|${r.runs.flatMap((x) => x.result.trail.map((t) => t.loc.line)).join(',')}|${r.assumptions.length}`
  }
  const e = enumerate([rs], stats, (fw) => (twice ? `${once(fw, other)} ${once(fw, pkt)} ${once(fw, other)}` : once(fw, pkt)), (v) => v)
  return {sampled: e.sampled, outcomes: e.outcomes.map((o) => [o.value, o.p])}
}

describe('cascade explorer: resumed runs give what replays from the top give', () => {
  // resume every cascade (by default only those of RESUME.minStat statistic rules or more)
  const minStat = RESUME.minStat
  beforeAll(() => {
    RESUME.minStat = 0
  })
  afterAll(() => {
    RESUME.minStat = minStat
  })
  const shapes = fc.record({
    marks: fc.array(fc.record({p: fc.constantFrom(0.25, 0.5, 0.7, 1), value: fc.integer({min: 1, max: 7}), guard: fc.boolean()}), {maxLength: 4}),
    save: fc.boolean(),
    dnats: fc.array(fc.record({p: fc.option(fc.constantFrom(0, 0.3, 0.5, 1), {nil: undefined}), mark: fc.option(fc.integer({min: 0, max: 7}), {nil: undefined}), depth: fc.integer({min: 0, max: 2})}), {minLength: 1, maxLength: 6}),
    twice: fc.boolean(),
  })
  test('random cascades: MARK blocks in mangle, DNAT cascades in nested user chains, one or three hook runs per outcome', () => {
    fc.assert(
      fc.property(shapes, ({marks, save, dnats, twice}) => {
        const mangle = [':PREROUTING ACCEPT [0:0]']
        marks.forEach((m, i) => {
          if (save && i === 1) mangle.push('-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff')
          mangle.push(`-A PREROUTING -d 192.0.2.100/32${m.guard ? ' -m mark --mark 0x0' : ''} ${stat(m.p)} -j MARK --set-xmark 0x${m.value.toString(16)}/0xffffffff`)
        })
        const nat = [':PREROUTING ACCEPT [0:0]', ':L1 - [0:0]', ':L2 - [0:0]', ':MASQ - [0:0]', '-A MASQ -j MARK --set-xmark 0x4000/0x4000']
        nat.push('-A PREROUTING -d 192.0.2.100/32 -p tcp -j L1', '-A L1 ! -s 10.244.0.0/16 -j MASQ')
        dnats.forEach((d, i) => {
          const chain = ['PREROUTING', 'L1', 'L2'][d.depth]!
          nat.push(`-A ${chain} -p tcp${d.mark !== undefined ? ` -m mark --mark 0x${d.mark.toString(16)}` : ''}${d.p !== undefined ? ` ${stat(d.p)}` : ''} -j DNAT --to-destination 10.0.0.${i + 1}:80`)
        })
        nat.push('-A L1 -j L2')
        const rs = ruleset({mangle, nat})
        expect(outcomes(rs, false, twice)).toEqual(outcomes(rs, true, twice))
      }),
      {numRuns: 200},
    )
  })

  test('a kube-proxy service of 300 endpoints: 300 outcomes of 1/300, as replayed', () => {
    const eps = 300
    const nat = [':PREROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]', ':KUBE-SVC-X - [0:0]', ':KUBE-MARK-MASQ - [0:0]']
    for (let i = 0; i < eps; i++) nat.push(`:KUBE-SEP-${i} - [0:0]`)
    nat.push('-A PREROUTING -j KUBE-SERVICES', '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000')
    nat.push('-A KUBE-SERVICES -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X', '-A KUBE-SVC-X ! -s 10.244.0.0/16 -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ')
    for (let i = 0; i < eps; i++) nat.push(`-A KUBE-SVC-X${i < eps - 1 ? ` ${stat(1 / (eps - i))}` : ''} -j KUBE-SEP-${i}`)
    for (let i = 0; i < eps; i++) nat.push(`-A KUBE-SEP-${i} -s 10.244.1.${(i % 250) + 1}/32 -j KUBE-MARK-MASQ`, `-A KUBE-SEP-${i} -p tcp -m tcp -j DNAT --to-destination 10.244.1.${(i % 250) + 1}:8080`)
    const rs = ruleset({nat})
    const resumed = outcomes(rs, false, false)
    expect(resumed.outcomes).toHaveLength(eps)
    for (const [, p] of resumed.outcomes) expect(p).toBeCloseTo(1 / eps, 10)
    expect(resumed).toEqual(outcomes(rs, true, false))
  })
})
