// The jump graph of a table, computed once per table object (and cached with it): which rule first jumps to
// each chain, and which chains the builtin chains reach. world.ts asked these per rule and per chain by
// scanning the whole table, which is quadratic on a kube-proxy dump (34,000 chains). Chains are numbered in
// table order and the jumps resolved to numbers once, so a reachability walk touches no hash table.
import type {IptChain, IptRule, IptTable} from '../../model/iptables.js'

/** The chains reachable from some builtin chains. */
export interface Reach {
  has(chain: string): boolean
}

interface Graph {
  /** the declared chains by number */
  readonly chains: readonly IptChain[]
  /** chain name -> its number: its position in the table; names jumps name that the table does not declare come after */
  readonly ids: Map<string, number>
  /** per number, the first rule (table order: chains as declared, rules in order) that jumps or goes to the chain */
  readonly first: (IptRule | undefined)[]
  /** the ids of the chains the rules of chain `id` jump or go to are succ[start[id] .. start[id + 1]) (none for undeclared names) */
  readonly start: Int32Array
  readonly succ: Int32Array
  /** builtin chain list (joined) -> the chains reachable from them by jumps and gotos */
  readonly reach: Map<string, Reached>
}

/** A reachability set: a flag per chain number, and the declared chains it holds (made when asked). */
interface Reached extends Reach {
  readonly mark: Uint8Array
  list?: readonly IptChain[]
}

const graphs = new WeakMap<IptTable, Graph>()

function graph(t: IptTable): Graph {
  let g = graphs.get(t)
  if (!g) {
    const ids = new Map<string, number>()
    const chains = [...t.chains.values()]
    let n = 0
    t.chains.forEach((_c, name) => ids.set(name, n++))
    const first: (IptRule | undefined)[] = new Array(n).fill(undefined)
    // adjacency in two flat arrays (a list per chain would be 34,000 small arrays)
    const starts: number[] = []
    const succ: number[] = []
    for (let ci = 0; ci < chains.length; ci++) {
      starts.push(succ.length)
      const rules = chains[ci]!.rules
      for (let ri = 0; ri < rules.length; ri++) {
        const r = rules[ri]!
        const tg = r.target
        if (tg?.kind !== 'jump' && tg?.kind !== 'goto') continue
        let id = ids.get(tg.chain)
        if (id === undefined) {
          id = n++
          ids.set(tg.chain, id)
          first.push(undefined)
        }
        first[id] ??= r
        succ.push(id)
      }
    }
    while (starts.length <= n) starts.push(succ.length)
    g = {chains, ids, first, start: Int32Array.from(starts), succ: Int32Array.from(succ), reach: new Map()}
    graphs.set(t, g)
  }
  return g
}

/** The first rule of the table that jumps (or goes) to `chain`. */
export function firstCaller(t: IptTable, chain: string): IptRule | undefined {
  const g = graph(t)
  const id = g.ids.get(chain)
  return id === undefined ? undefined : g.first[id]
}

/** The chains reachable from the builtin chains `from` (those the table has), following jumps and gotos. */
export function reachableChains(t: IptTable, from: readonly string[]): Reach {
  return reached(graph(t), t, from)
}

/** The declared chains reachable from the builtin chains `from`, in table order (the same list for every call: read only). */
export function reachableChainList(t: IptTable, from: readonly string[]): readonly IptChain[] {
  const g = graph(t)
  const r = reached(g, t, from)
  if (!r.list) {
    const list: IptChain[] = []
    const mark = r.mark
    const chains = g.chains
    for (let i = 0; i < chains.length; i++) if (mark[i]) list.push(chains[i]!)
    r.list = list
  }
  return r.list
}

function reached(g: Graph, t: IptTable, from: readonly string[]): Reached {
  const k = from.length === 1 ? from[0]! : from.join(',')
  let seen = g.reach.get(k)
  if (!seen) {
    const mark = new Uint8Array(g.start.length - 1)
    const queue: number[] = []
    for (const b of from) {
      const id = t.chains.has(b) ? g.ids.get(b) : undefined
      if (id !== undefined && !mark[id]) {
        mark[id] = 1
        queue.push(id)
      }
    }
    const {start, succ} = g
    for (let i = 0; i < queue.length; i++) {
      const c = queue[i]!
      for (let j = start[c]!; j < start[c + 1]!; j++) {
        const s = succ[j]!
        if (mark[s]) continue
        mark[s] = 1
        queue.push(s)
      }
    }
    const ids = g.ids
    seen = {
      mark,
      has: (chain) => {
        const id = ids.get(chain)
        return id !== undefined && mark[id] === 1
      },
    }
    g.reach.set(k, seen)
  }
  return seen
}
