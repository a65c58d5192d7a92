// The netfilter hook points and what the kernel registers at each, in priority order, as a literal table a
// reader can check line by line against the sources cited:
//   include/uapi/linux/netfilter_ipv4.h   enum nf_ip_hook_priorities
//   net/ipv4/netfilter/iptable_{raw,mangle,nat,filter,security}.c   the tables' hook registrations
//   net/netfilter/nf_conntrack_proto.c    ipv4_conntrack_ops (conntrack in at -200, confirm at INT_MAX)
//   net/netfilter/ipvs/ip_vs_core.c       ip_vs_ops4
// Lower priority runs first; ties: see nft-hooks.ts (a later registration runs first).
import type {NftChain, NftTable} from '../model/nft.js'

export type Hook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING'

/** enum nf_ip_hook_priorities (include/uapi/linux/netfilter_ipv4.h) */
export const NF_IP_PRI = {
  FIRST: -2147483648,
  CONNTRACK_DEFRAG: -400,
  RAW: -300,
  SELINUX_FIRST: -225,
  CONNTRACK: -200,
  MANGLE: -150,
  NAT_DST: -100,
  FILTER: 0,
  SECURITY: 50,
  NAT_SRC: 100,
  SELINUX_LAST: 225,
  CONNTRACK_HELPER: 300,
  CONNTRACK_CONFIRM: 2147483647,
  LAST: 2147483647,
} as const

/** What runs at a hook: an iptables table's chain, conntrack, or one of IPVS's hook functions. */
export type HookFn =
  | {readonly kind: 'table'; readonly table: 'raw' | 'mangle' | 'nat' | 'filter' | 'security'}
  | {readonly kind: 'conntrack-in'}
  | {readonly kind: 'conntrack-confirm'}
  /** ip_vs_in_hook (formerly ip_vs_remote_request4 / ip_vs_local_request4): schedule and forward requests */
  | {readonly kind: 'ipvs-in'}
  /** ip_vs_out_hook (formerly ip_vs_reply4 / ip_vs_local_reply4): un-NAT LVS-NAT replies */
  | {readonly kind: 'ipvs-out'}
  /** ip_vs_forward_icmp: ICMP errors for IPVS connections (not replayed: trace sends no ICMP errors) */
  | {readonly kind: 'ipvs-forward-icmp'}
  /** an nftables base chain of type filter or route (nat chains are called by the nat core: nft-hooks.ts natLookups) */
  | {readonly kind: 'nft'; readonly table: NftTable; readonly chain: NftChain}

export interface HookEntry {
  readonly priority: number
  readonly fn: HookFn
  /** the kernel symbol and file that registers it */
  readonly source: string
}

const t = (table: 'raw' | 'mangle' | 'nat' | 'filter' | 'security'): HookFn => ({kind: 'table', table})

/** The hook table, per hook, sorted by priority. */
export const HOOK_TABLE: Readonly<Record<Hook, readonly HookEntry[]>> = {
  PREROUTING: [
    {priority: NF_IP_PRI.RAW, fn: t('raw'), source: 'iptable_raw.c'},
    {priority: NF_IP_PRI.CONNTRACK, fn: {kind: 'conntrack-in'}, source: 'nf_conntrack_proto.c ipv4_conntrack_in'},
    {priority: NF_IP_PRI.MANGLE, fn: t('mangle'), source: 'iptable_mangle.c'},
    {priority: NF_IP_PRI.NAT_DST, fn: t('nat'), source: 'iptable_nat.c (DNAT)'},
  ],
  INPUT: [
    {priority: NF_IP_PRI.MANGLE, fn: t('mangle'), source: 'iptable_mangle.c'},
    {priority: NF_IP_PRI.FILTER, fn: t('filter'), source: 'iptable_filter.c'},
    {priority: NF_IP_PRI.SECURITY, fn: t('security'), source: 'iptable_security.c'},
    {priority: NF_IP_PRI.NAT_SRC - 2, fn: {kind: 'ipvs-out'}, source: 'ip_vs_core.c ip_vs_ops4 (ip_vs_reply4)'},
    {priority: NF_IP_PRI.NAT_SRC - 1, fn: {kind: 'ipvs-in'}, source: 'ip_vs_core.c ip_vs_ops4 (ip_vs_remote_request4)'},
    {priority: NF_IP_PRI.NAT_SRC, fn: t('nat'), source: 'iptable_nat.c (SNAT)'},
    {priority: NF_IP_PRI.CONNTRACK_CONFIRM, fn: {kind: 'conntrack-confirm'}, source: 'nf_conntrack_proto.c ipv4_confirm'},
  ],
  FORWARD: [
    {priority: NF_IP_PRI.MANGLE, fn: t('mangle'), source: 'iptable_mangle.c'},
    {priority: NF_IP_PRI.FILTER, fn: t('filter'), source: 'iptable_filter.c'},
    {priority: NF_IP_PRI.SECURITY, fn: t('security'), source: 'iptable_security.c'},
    {priority: 99, fn: {kind: 'ipvs-forward-icmp'}, source: 'ip_vs_core.c ip_vs_ops4 (ip_vs_forward_icmp)'},
    {priority: 100, fn: {kind: 'ipvs-out'}, source: 'ip_vs_core.c ip_vs_ops4 (ip_vs_reply4)'},
  ],
  OUTPUT: [
    {priority: NF_IP_PRI.RAW, fn: t('raw'), source: 'iptable_raw.c'},
    {priority: NF_IP_PRI.CONNTRACK, fn: {kind: 'conntrack-in'}, source: 'nf_conntrack_proto.c ipv4_conntrack_local'},
    {priority: NF_IP_PRI.MANGLE, fn: t('mangle'), source: 'iptable_mangle.c'},
    {priority: NF_IP_PRI.NAT_DST, fn: t('nat'), source: 'iptable_nat.c (DNAT)'},
    {priority: NF_IP_PRI.NAT_DST + 1, fn: {kind: 'ipvs-out'}, source: 'ip_vs_core.c ip_vs_ops4 (ip_vs_local_reply4)'},
    {priority: NF_IP_PRI.NAT_DST + 2, fn: {kind: 'ipvs-in'}, source: 'ip_vs_core.c ip_vs_ops4 (ip_vs_local_request4)'},
    {priority: NF_IP_PRI.FILTER, fn: t('filter'), source: 'iptable_filter.c'},
    {priority: NF_IP_PRI.SECURITY, fn: t('security'), source: 'iptable_security.c'},
  ],
  POSTROUTING: [
    {priority: NF_IP_PRI.MANGLE, fn: t('mangle'), source: 'iptable_mangle.c'},
    {priority: NF_IP_PRI.NAT_SRC, fn: t('nat'), source: 'iptable_nat.c (SNAT)'},
    {priority: NF_IP_PRI.CONNTRACK_CONFIRM, fn: {kind: 'conntrack-confirm'}, source: 'nf_conntrack_proto.c ipv4_confirm'},
  ],
}

/** HOOK2MANIP (include/net/netfilter/nf_nat.h): PREROUTING/OUTPUT rewrite the destination, INPUT/POSTROUTING the source. */
export function hookManip(hook: Hook): 'dst' | 'src' | undefined {
  if (hook === 'PREROUTING' || hook === 'OUTPUT') return 'dst'
  if (hook === 'INPUT' || hook === 'POSTROUTING') return 'src'
  return undefined
}

/**
 * The hook table of one host: the kernel's entries with the host's nft base chains (filter and route type, in
 * their priority order: nft-hooks.ts) merged in by priority. At equal priority the nft chain runs first (it was
 * registered later: nf_hook_entries_grow inserts a new hook before existing ones of the same priority).
 */
export function withNftChains(base: readonly HookEntry[], chains: readonly {readonly table: NftTable; readonly chain: NftChain; readonly priority: number}[]): HookEntry[] {
  if (chains.length === 0) return [...base]
  const out: HookEntry[] = []
  let i = 0
  for (const c of chains) {
    while (i < base.length && base[i]!.priority < c.priority) out.push(base[i++]!)
    out.push({priority: c.priority, fn: {kind: 'nft', table: c.table, chain: c.chain}, source: `nft ${c.table.family} ${c.table.name} ${c.chain.name}`})
  }
  while (i < base.length) out.push(base[i++]!)
  return out
}
