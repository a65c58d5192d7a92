// The jump graph of a table, computed once per table object (and cached with it): which rule first jumps to
// each chain, and which chains the builtin chains reach. world.ts asked these per rule and per chain by
// scanning the whole table, which is quadratic on a kube-proxy dump (34,000 chains). Chains are numbered in
// table order and the jumps resolved to numbers once, so a reachability walk touches no hash table.
import type {IptChain, IptRule, IptTable} from '../../model/iptables.js'
import {jumpId, tableGraph as graph, type TableGraph} from '../../dataplane/chain-index.js'

/** The chains reachable from some builtin chains. */
export interface Reach {
  has(chain: string): boolean
}

/** A reachability set: a flag per chain number, and the declared chains it holds (made when asked). */
export interface Reached extends Reach {
  readonly mark: Uint8Array
  list?: readonly IptChain[]
  ids?: readonly number[]
}

/** The first rule of the table that jumps (or goes) to `chain`. */
export function firstCaller(t: IptTable, chain: string): IptRule | undefined {
  const g = graph(t)
  const id = g.ids.get(chain)
  return id === undefined ? undefined : g.first[id]
}

/** The first rule that jumps (or goes) to `chain`, unless it is a builtin chain of the table (one name lookup). */
export function firstCallerOfUserChain(t: IptTable, chain: string): IptRule | undefined {
  const g = graph(t)
  const id = g.ids.get(chain)
  if (id === undefined) return undefined
  if (id < g.chains.length && g.chains[id]!.builtin) return undefined
  return g.first[id]
}

/** firstCallerOfUserChain for the chain numbered `id` (reachableChainIds): no name lookup. */
export function firstCallerOfUserChainId(t: IptTable, id: number): IptRule | undefined {
  const g = graph(t)
  if (id < g.chains.length && g.chains[id]!.builtin) return undefined
  return g.first[id]
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

/** The chains reachable from the builtin chains `from`: a flag per chain number (tableGraph's; read only). */
export function reachableChainMark(t: IptTable, from: readonly string[]): Uint8Array {
  return reached(graph(t), t, from).mark
}

/** The numbers of the declared chains reachable from the builtin chains `from`, in table order (chains: reachableChainList). */
export function reachableChainIds(t: IptTable, from: readonly string[]): readonly number[] {
  const g = graph(t)
  const r = reached(g, t, from)
  if (!r.ids) {
    const ids: number[] = []
    const mark = r.mark
    for (let i = 0; i < g.chains.length; i++) if (mark[i]) ids.push(i)
    r.ids = ids
  }
  return r.ids
}

function reached(g: TableGraph, t: IptTable, from: readonly string[]): Reached {
  const k = from.length === 1 ? from[0]! : from.join(',')
  let seen = g.reach.get(k) as Reached | undefined
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

/**
 * A walk over the chains of a table by number, without looking names up: `visit` is told each chain the walk
 * reaches (from `start`, each once) with its number, and calls `follow(id, rule)` to go on to the chain a
 * rule of it jumps or goes to (undeclared chains are not visited). Walks of one table must not nest.
 */
export function jumpWalk(t: IptTable, start: string, visit: (chain: IptChain, id: number, follow: (id: number, rule: IptRule) => void) => void): void {
  const g = graph(t)
  const s = t.chains.has(start) ? g.ids.get(start) : undefined
  if (s === undefined) return
  const walk = ++g.walks
  const {chains, stamp} = g
  const queue: number[] = [s]
  stamp[s] = walk
  // the chain a rule jumps to: by its position (IptRule.index) in its chain's slice of `target`
  const follow = (id: number, rule: IptRule) => {
    const next = jumpId(g, id, rule)
    if (next < 0 || next >= chains.length || stamp[next] === walk) return
    stamp[next] = walk
    queue.push(next)
  }
  for (let qi = 0; qi < queue.length; qi++) {
    const id = queue[qi]!
    visit(chains[id]!, id, follow)
  }
}
