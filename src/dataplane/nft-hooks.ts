// Where nftables base chains run on a host: which chains see an IPv4 (or IPv6) packet at each netfilter hook,
// in the kernel's order, beside the xtables tables of hooks.ts.
//
// - Families: `ip` chains see IPv4, `ip6` IPv6, `inet` both (nf_tables_inet registers at both); `arp` and
//   `bridge` chains never see routed IP packets; `netdev` (and `inet` ingress) chains run at the device:
//   ingress before PREROUTING (__netif_receive_skb_core -> nf_ingress), egress after POSTROUTING when the frame
//   is queued on the device (nf_egress).
// - Order: lower priority first (nf_hook_entries_grow). Two entries of equal priority: the one registered later
//   runs first (nf_hook_entries_grow inserts a new hook before the first existing one whose priority is not lower).
//   lvsdoctor assumes the xtables tables were registered before any nft chain and nft chains in dump order, so at
//   equal priority nft chains run before the xtables table, and a later nft chain before an earlier one.
// - nat-type chains do not hook by themselves: nft_chain_nat registers them with the nat core
//   (nf_nat_register_fn), which hooks once at NF_IP_PRI_NAT_DST (prerouting, output) / NF_IP_PRI_NAT_SRC (input,
//   postrouting) and, for the first packet of a connection only, calls the nat chains (and iptables' nat table) in
//   their own priority order until one binds (nf_nat_inet_fn). natLookups() gives that list.
// - Tables made by iptables-nft (table.xtables) are evaluated once, from iptables-save, when an nf_tables-backend
//   iptables-save is beside the JSON: they are skipped here.
import type {Family, IpAddr} from '../model/ip.js'
import type {IptTable} from '../model/iptables.js'
import type {NftChain, NftHook, NftRuleset, NftStmt, NftExpr, NftTable} from '../model/nft.js'
import type {HostSnapshot} from '../model/snapshot.js'
import {NF_IP_PRI, type Hook} from './hooks.js'
import type {FibAnswer, FibQuery} from './nft.js'
import {routeLookup, type RoutingTables} from './routing.js'

export interface NftHookChain {
  readonly table: NftTable
  readonly chain: NftChain
  readonly priority: number
  readonly nat: boolean
  /** position in the dump (registration order stand-in) */
  readonly order: number
}

export interface NftHostChains {
  /**
   * base chains of filter/route type per hook, of the ip, ip6 and inet tables, sorted as the kernel runs them;
   * a packet meets those whose family sees it (familySees)
   */
  readonly byHook: Readonly<Record<Hook, readonly NftHookChain[]>>
  /** nat-type chains per hook (prerouting, input, output, postrouting), by priority */
  readonly natByHook: Readonly<Record<Hook, readonly NftHookChain[]>>
  /** netdev/inet ingress and netdev egress chains */
  readonly ingress: readonly NftHookChain[]
  readonly egress: readonly NftHookChain[]
  /** tables left to the iptables view (made by iptables-nft, iptables-save beside) */
  readonly skipped: readonly NftTable[]
  readonly chainCount: number
}

const HOOK_OF: Readonly<Record<string, Hook>> = {prerouting: 'PREROUTING', input: 'INPUT', forward: 'FORWARD', output: 'OUTPUT', postrouting: 'POSTROUTING'}

export function nftHookName(h: Hook): NftHook {
  return h.toLowerCase() as NftHook
}

/** Does the table's family see packets of this IP family at the IP hooks? */
export function familySees(family: string, ip: Family): boolean {
  return family === 'inet' || (family === 'ip' && ip === 4) || (family === 'ip6' && ip === 6)
}

/** Sorts by priority; at equal priority the later registered (later in the dump) first. */
function byPriority(a: NftHookChain, b: NftHookChain): number {
  return a.priority - b.priority || b.order - a.order
}

/** Whether the xtables-made tables of this ruleset are evaluated from iptables-save instead. */
export function iptablesViewBeside(snap: Pick<HostSnapshot, 'iptables'>): boolean {
  return !!snap.iptables && snap.iptables.backend !== 'legacy'
}

export function nftHostChains(nft: NftRuleset, o: {iptablesBeside: boolean}): NftHostChains {
  const empty = (): Record<Hook, NftHookChain[]> => ({PREROUTING: [], INPUT: [], FORWARD: [], OUTPUT: [], POSTROUTING: []})
  const byHook = empty()
  const natByHook = empty()
  const ingress: NftHookChain[] = []
  const egress: NftHookChain[] = []
  const skipped: NftTable[] = []
  let order = 0
  let count = 0
  for (const t of nft.tables) {
    if (t.xtables && o.iptablesBeside) {
      skipped.push(t)
      continue
    }
    if (t.flags.includes('dormant')) continue
    for (const c of t.chains.values()) {
      const b = c.base
      order++
      if (!b) continue
      const entry: NftHookChain = {table: t, chain: c, priority: b.priority, nat: b.type === 'nat', order}
      if (b.hook === 'ingress' && (t.family === 'netdev' || t.family === 'inet')) {
        ingress.push(entry)
        count++
        continue
      }
      if (b.hook === 'egress' && t.family === 'netdev') {
        egress.push(entry)
        count++
        continue
      }
      const hook = HOOK_OF[b.hook]
      if (!hook || (t.family !== 'ip' && t.family !== 'ip6' && t.family !== 'inet')) continue
      count++
      if (b.type === 'nat') natByHook[hook].push(entry)
      else byHook[hook].push(entry)
    }
  }
  for (const k of Object.keys(byHook) as Hook[]) {
    byHook[k].sort(byPriority)
    natByHook[k].sort(byPriority)
  }
  ingress.sort(byPriority)
  egress.sort(byPriority)
  return {byHook, natByHook, ingress, egress, skipped, chainCount: count}
}

/** One nat lookup of nf_nat_inet_fn: iptables' nat table or an nft nat chain, at its priority. */
export type NatLookup =
  | {readonly kind: 'ipt'; readonly priority: number; readonly table: IptTable}
  | {readonly kind: 'nft'; readonly priority: number; readonly table: NftTable; readonly chain: NftChain}

/**
 * The nat lookups of a hook for a packet of `family`, in the order the nat core calls them (iptable_nat at
 * NF_IP_PRI_NAT_DST/SRC; the iptables table is IPv4).
 */
export function natLookups(hook: Hook, ipt: IptTable | undefined, nft: NftHostChains | undefined, family: Family = 4): NatLookup[] {
  const out: NatLookup[] = []
  const iptChain = ipt?.chains.get(hook)
  if (ipt && iptChain && iptChain.rules.length > 0 && family === 4) {
    out.push({kind: 'ipt', priority: hook === 'PREROUTING' || hook === 'OUTPUT' ? NF_IP_PRI.NAT_DST : NF_IP_PRI.NAT_SRC, table: ipt})
  }
  for (const c of nft?.natByHook[hook] ?? []) {
    if (!familySees(c.table.family, family)) continue
    if (c.chain.rules.length === 0 && c.chain.base?.policy !== 'drop') continue
    out.push({kind: 'nft', priority: c.priority, table: c.table, chain: c.chain})
  }
  // stable: at equal priority the nft chain (registered later) is called first
  return out.sort((a, b) => a.priority - b.priority || (a.kind === b.kind ? 0 : a.kind === 'nft' ? -1 : 1))
}

/** Does the base chain apply to this device (netdev chains name their devices; nft 1.0.6 prints none)? */
export function chainOnDevice(c: NftChain, dev: string | undefined): boolean | 'unknown' {
  const devs = c.base?.devices
  if (!devs) return 'unknown'
  return dev !== undefined && devs.includes(dev)
}

// ---- conntrack ------------------------------------------------------------------------------------------

function exprUsesCt(e: NftExpr | undefined): boolean {
  if (!e) return false
  switch (e.kind) {
    case 'ct':
      return true
    case 'binop':
      return exprUsesCt(e.left) || exprUsesCt(e.right)
    case 'concat':
      return e.parts.some(exprUsesCt)
    case 'map':
      return exprUsesCt(e.key)
    case 'jhash':
      return exprUsesCt(e.expr)
    default:
      return false
  }
}

function stmtUsesCt(s: NftStmt): boolean {
  switch (s.kind) {
    case 'match':
      return exprUsesCt(s.left)
    case 'mangle':
      return exprUsesCt(s.key) || exprUsesCt(s.value)
    case 'vmap':
      return exprUsesCt(s.key)
    case 'nat':
      return true
    case 'objref':
      return s.type.startsWith('ct ')
    default:
      return false
  }
}

/**
 * Whether the nft ruleset makes the kernel load conntrack in this namespace (nf_ct_netns_get): a nat chain, or a
 * ct expression or statement (nft_ct_init, nft_nat_init, nft_chain_nat).
 */
export function nftNeedsConntrack(nft: NftRuleset, iptablesBeside: boolean): boolean {
  for (const t of nft.tables) {
    if (t.xtables && iptablesBeside) continue
    for (const c of t.chains.values()) {
      if (c.base?.type === 'nat') return true
      for (const r of c.rules) if (r.stmts.some(stmtUsesCt)) return true
    }
  }
  return false
}

// ---- fib ------------------------------------------------------------------------------------------------

/**
 * nft_fib4_eval / nft_fib_ipv4 for the host's routes: `type` is the route type of the address (daddr or saddr);
 * `oif`/`oifname` looks the address up (saddr: the route back to the source, as rpfilter does) and, with `iif`,
 * yields the input device only when the route leaves through it, else nothing (`missing`).
 */
export function nftFib(rt: RoutingTables, q: FibQuery, addrType: (ip: IpAddr, dev?: string) => string): FibAnswer | undefined {
  const p = q.packet
  const useDaddr = q.flags.includes('daddr')
  const ip = useDaddr ? p.dst : p.src
  // nft_fib4_eval_type: with iif/oif the type is the address's on that device (inet_dev_addr_type)
  if (q.result === 'type') return {kind: 'type', type: addrType(ip, q.flags.includes('iif') ? q.iif : q.flags.includes('oif') ? q.oif : undefined).toLowerCase()}
  if (q.result !== 'oif' && q.result !== 'oifname') return undefined
  // nft_fib_is_loopback: packets received on lo pass
  if (q.iif === 'lo' && q.flags.includes('iif')) return {kind: 'oif', dev: 'lo'}
  const res = routeLookup(rt, {dst: ip, src: useDaddr ? p.src : p.dst, mark: q.flags.includes('mark') ? p.mark : undefined})
  if (res.kind !== 'unicast') return {kind: 'oif', dev: null}
  const devs = new Set<string>()
  if (res.dev) devs.add(res.dev)
  for (const h of res.route.nexthops ?? []) if (h.dev) devs.add(h.dev)
  const dev = q.flags.includes('iif') ? q.iif : q.flags.includes('oif') ? q.oif : undefined
  if (dev !== undefined) return {kind: 'oif', dev: devs.has(dev) ? dev : null}
  return {kind: 'oif', dev: res.dev ?? null}
}
