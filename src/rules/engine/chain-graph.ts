// The jump graph of a table, computed once per table object (and cached with it): which rule first jumps to
// each chain, and which chains the builtin chains reach. world.ts asked these per rule and per chain by
// scanning the whole table, which is quadratic on a kube-proxy dump (34,000 chains).
import type {IptRule, IptTable} from '../../model/iptables.js'

interface Graph {
  /** chain name -> the first rule (table order: chains as declared, rules in order) that jumps or goes to it */
  readonly firstCaller: Map<string, IptRule>
  /** builtin chain list (joined) -> the names reachable from them by jumps and gotos */
  readonly reach: Map<string, ReadonlySet<string>>
}

const graphs = new WeakMap<IptTable, Graph>()

function graph(t: IptTable): Graph {
  let g = graphs.get(t)
  if (!g) {
    const firstCaller = new Map<string, IptRule>()
    for (const c of t.chains.values()) {
      for (const r of c.rules) {
        const tg = r.target
        if ((tg?.kind === 'jump' || tg?.kind === 'goto') && !firstCaller.has(tg.chain)) firstCaller.set(tg.chain, r)
      }
    }
    g = {firstCaller, reach: new Map()}
    graphs.set(t, g)
  }
  return g
}

/** The first rule of the table that jumps (or goes) to `chain`. */
export function firstCaller(t: IptTable, chain: string): IptRule | undefined {
  return graph(t).firstCaller.get(chain)
}

/** The chain names reachable from the builtin chains `from` (those the table has), following jumps and gotos. */
export function reachableChains(t: IptTable, from: readonly string[]): ReadonlySet<string> {
  const g = graph(t)
  const k = from.length === 1 ? from[0]! : from.join(',')
  let seen = g.reach.get(k)
  if (!seen) {
    const s = new Set<string>(from.filter((b) => t.chains.has(b)))
    const queue = [...s]
    for (let i = 0; i < queue.length; i++) {
      for (const r of t.chains.get(queue[i]!)?.rules ?? []) {
        const tg = r.target
        if ((tg?.kind === 'jump' || tg?.kind === 'goto') && !s.has(tg.chain)) {
          s.add(tg.chain)
          queue.push(tg.chain)
        }
      }
    }
    seen = s
    g.reach.set(k, seen)
  }
  return seen
}
