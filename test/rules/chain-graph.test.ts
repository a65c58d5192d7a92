// The table graph (dataplane/chain-index.ts tableGraph: chains numbered, jumps resolved once) and what is built
// on it: runChain's jumps, reachability (rules/engine/chain-graph.ts) and the DNAT selectors (world.ts), each
// against the name-based walk it replaced.
import {describe, expect, test} from 'vitest'
import fc from 'fast-check'
import {parseIptablesSave} from '../../src/snapshot/parsers/iptables-save.js'
import {reachableChainIds, reachableChainList, reachableChains, jumpWalk} from '../../src/rules/engine/chain-graph.js'
import {selectorOf, type Selector} from '../../src/rules/engine/world.js'
import {runChain, type MatchEnv} from '../../src/dataplane/netfilter.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket, l4Name} from '../../src/rules/engine/packets.js'
import {parseIp} from '../../src/model/ip.js'
import type {IptablesRuleset, IptRule, IptTable, Match} from '../../src/model/iptables.js'
import {generateKubeProxyDump} from '../../bench/gen-kube-proxy.js'

const env = (): MatchEnv => ({iif: 'eth0', ct: ctView('NEW'), addrType: () => 'UNICAST', random: () => 0})
const syn = (dst: string, dport: number) => flowPacket({src: parseIp('203.0.113.10')!, sport: 40000, dst: parseIp(dst)!, dport, proto: 'tcp'}, 'SYN')

function nat(lines: readonly string[], declared: readonly string[]): IptablesRuleset {
  const text = `*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${declared.map((c) => `:${c} - [0:0]`).join('\n')}\n${lines.join('\n')}\nCOMMIT\n`
  return parseIptablesSave(text, 'iptables-save.txt', 4)
}

/** The selector as world.ts computed it before (the rule's matches, then each first caller's, up to 8 levels). */
function selectorByNames(rs: IptablesRuleset, rule: IptRule): Selector {
  const sel: Selector = {}
  const add = (matches: readonly Match[]) => {
    for (const m of matches) {
      if (m.kind === 'addr' && m.dir === 'dst' && !m.neg && sel.dst === undefined) sel.dst = m.prefix
      else if (m.kind === 'iface' && m.dir === 'in' && !m.neg && !m.name.endsWith('+') && sel.iif === undefined) sel.iif = m.name
      else if (m.kind === 'proto' && !m.neg && m.proto !== 'all' && sel.proto === undefined) sel.proto = l4Name(m.proto)
      else if (m.kind === 'port' && !m.neg && (m.dir === 'dst' || m.dir === 'any') && sel.dport === undefined && m.ranges[0]) sel.dport = m.ranges[0][0]
      else if (m.kind === 'mark' && m.module === 'mark' && !m.neg && sel.mark === undefined) sel.mark = {value: m.value, mask: m.mask}
    }
  }
  add(rule.matches)
  const table = rs.tables.get(rule.table)!
  let chain = rule.chain
  for (let depth = 0; depth < 8; depth++) {
    if (table.chains.get(chain)?.builtin) break
    let caller: IptRule | undefined
    for (const c of table.chains.values())
      for (const r of c.rules) if (!caller && (r.target?.kind === 'jump' || r.target?.kind === 'goto') && r.target.chain === chain) caller = r
    if (!caller) break
    add(caller.matches)
    chain = caller.chain
  }
  return sel
}

/** Breadth first over jumps by name, each chain once, in the order first reached. */
function walkByNames(t: IptTable, start: string): string[] {
  const out: string[] = []
  const queue = [start]
  const seen = new Set(queue)
  for (let i = 0; i < queue.length; i++) {
    const c = t.chains.get(queue[i]!)!
    out.push(c.name)
    for (const r of c.rules) {
      const tg = r.target
      if ((tg?.kind === 'jump' || tg?.kind === 'goto') && t.chains.has(tg.chain) && !seen.has(tg.chain)) {
        seen.add(tg.chain)
        queue.push(tg.chain)
      }
    }
  }
  return out
}

describe('table graph', () => {
  const kube = parseIptablesSave(generateKubeProxyDump(2000), 'iptables-save.txt', 4)
  const kubeNat = kube.tables.get('nat')!

  test('kube-proxy dump: selectors of every DNAT rule as the name-based walk gives them', () => {
    let n = 0
    for (const c of kubeNat.chains.values())
      for (const r of c.rules)
        if (r.target?.kind === 'DNAT') {
          expect(selectorOf(kube, r)).toEqual(selectorByNames(kube, r))
          n++
        }
    expect(n).toBeGreaterThan(100)
  })

  test('kube-proxy dump: reachable chains (list, numbers, walk order) as by names', () => {
    const reach = reachableChains(kubeNat, ['PREROUTING'])
    const list = reachableChainList(kubeNat, ['PREROUTING'])
    expect(list.map((c) => c.name)).toEqual([...kubeNat.chains.values()].filter((c) => reach.has(c.name)).map((c) => c.name))
    const chains = [...kubeNat.chains.values()]
    expect(reachableChainIds(kubeNat, ['PREROUTING']).map((i) => chains[i]!.name)).toEqual(list.map((c) => c.name))
    const walked: string[] = []
    jumpWalk(kubeNat, 'PREROUTING', (chain, id, follow) => {
      walked.push(chain.name)
      for (const r of chain.rules) if (r.target?.kind === 'jump' || r.target?.kind === 'goto') follow(id, r)
    })
    expect(walked).toEqual(walkByNames(kubeNat, 'PREROUTING'))
  })

  test('selectors: callers up to 8 levels, a builtin chain stops the walk, first caller wins (random chains)', () => {
    fc.assert(
      fc.property(fc.integer({min: 1, max: 12}), fc.array(fc.tuple(fc.nat(11), fc.nat(11), fc.nat(3)), {maxLength: 20}), (depth, extra) => {
        const names = Array.from({length: 12}, (_, i) => `C${i}`)
        const lines: string[] = [`-A PREROUTING -d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j C0`]
        for (let i = 0; i + 1 < depth; i++) lines.push(`-A C${i} -i eth${i} -j C${i + 1}`)
        const opts = ['-p udp', '-d 10.9.9.9/32', '-m mark --mark 0x4', '-p tcp -m tcp --dport 8080']
        for (const [a, b, o] of extra) lines.push(`-A C${a} ${opts[o]} -j C${b}`)
        lines.push(`-A C${depth - 1} -p tcp -j DNAT --to-destination 10.1.1.1:8080`)
        const rs = nat(lines, names)
        for (const c of rs.tables.get('nat')!.chains.values()) for (const r of c.rules) expect(selectorOf(rs, r)).toEqual(selectorByNames(rs, r))
      }),
      {numRuns: 150},
    )
  })

  test('runChain: jumps resolved by number, also for a table whose rules do not sit at their index (by name then)', () => {
    const rs = nat(
      [
        '-A PREROUTING -j A',
        '-A A -d 10.0.0.2/32 -j C',
        '-A A -d 10.0.0.1/32 -j B',
        '-A A -j RETURN',
        '-A B -p tcp -m tcp --dport 80 -g C',
        '-A C -j MARK --set-xmark 0x4/0x4',
        '-A PREROUTING -m mark --mark 0x4 -j DNAT --to-destination 10.1.1.1:8080',
      ],
      ['A', 'B', 'C'],
    )
    const table = rs.tables.get('nat')!
    const pkt = syn('10.0.0.1', 80)
    const res = runChain(table, 'PREROUTING', pkt, env())
    expect(res.verdict).toBe('NAT')
    expect(res.trail.map((r) => r.loc.text)).toEqual([
      '-A PREROUTING -j A',
      '-A A -d 10.0.0.1/32 -j B',
      '-A B -p tcp -m tcp --dport 80 -g C',
      '-A C -j MARK --set-xmark 0x4/0x4',
      // C was entered by a goto: falling off it returns to A, after its jump to B
      '-A A -j RETURN',
      '-A PREROUTING -m mark --mark 0x4 -j DNAT --to-destination 10.1.1.1:8080',
    ])
    // a rule list whose positions differ from the rules' indexes: jumps still go where the names say
    const a = table.chains.get('A')!
    const odd: IptTable = {name: 'nat', loc: table.loc, chains: new Map([...table.chains].map(([k, c]) => [k, c === a ? {...c, rules: [a.rules[1]!, a.rules[0]!, a.rules[2]!]} : c]))}
    const res3 = runChain(odd, 'PREROUTING', pkt, env())
    expect(res3.trail.map((r) => r.loc.text)).toEqual(res.trail.map((r) => r.loc.text))
    // a chain the table does not declare (a table not from the parser): reported, not followed
    const noB: IptTable = {name: 'nat', loc: table.loc, chains: new Map([...table.chains].filter(([k]) => k !== 'B'))}
    const res4 = runChain(noB, 'PREROUTING', pkt, env())
    expect(res4.assumptions.map((x) => x.what)).toContain('jump to chain B, which the table does not declare: ignored')
    expect(res4.verdict).toBe('ACCEPT')
  })
})
