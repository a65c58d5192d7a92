// conntrack-table-full: every new connection a host tracks needs a conntrack entry. When the table holds
// nf_conntrack_max entries, __nf_conntrack_alloc first tries to evict entries that are not assured (no reply seen)
// from a few hash buckets (early_drop); failing that it drops the packet and logs "nf_conntrack: table full,
// dropping packet". A director (DNAT, stateful filters, IPVS: the entry is made at PREROUTING even with
// vs.conntrack=0), a router or a realserver at its limit refuses new connections at random while established ones
// go on.
import {customRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'conntrack-table-full',
  title: 'the conntrack table is full or nearly: new connections are dropped',
  severity: 'error',
  description:
    'Each new connection a host tracks needs a conntrack entry. At net.netfilter.nf_conntrack_max entries the kernel evicts an entry that is not assured (no reply seen) if it finds one in a few hash buckets, and otherwise drops the packet ("nf_conntrack: table full, dropping packet"): new connections through the balancer fail at random while established ones go on. Above 90% of the limit a burst is enough.',
  sources: [
    'net/netfilter/nf_conntrack_core.c (__nf_conntrack_alloc: nf_conntrack_max, early_drop, "table full, dropping packet")',
    'Documentation/networking/nf_conntrack-sysctl.rst (nf_conntrack_count, nf_conntrack_max, nf_conntrack_buckets)',
  ],
}

/** warning from this fill level on; error at the limit */
const WARN = 0.9

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const h of w.hosts) {
    const count = h.sysctl.get('net.netfilter.nf_conntrack_count')
    const max = h.sysctl.get('net.netfilter.nf_conntrack_max')
    const n = h.sysctl.num('net.netfilter.nf_conntrack_count')
    const m = h.sysctl.num('net.netfilter.nf_conntrack_max')
    // 0 means no limit (the kernel skips the check)
    if (!count || !max || n === undefined || m === undefined || m <= 0 || n < m * WARN) continue
    const full = n >= m
    const buckets = h.sysctl.num('net.netfilter.nf_conntrack_buckets')
    const next = Math.max(2 * m, 2 * n)
    out.push(
      finding(meta, h.name, {
        severity: full ? 'error' : 'warning',
        message:
          `${h.name}'s conntrack table holds ${n} entries of net.netfilter.nf_conntrack_max = ${m} (${Math.floor((n * 100) / m)}%)` +
          (full
            ? `: it is full. Each new connection needs an entry; the kernel evicts an entry that never saw a reply if it finds one in the few hash buckets it looks at, and otherwise drops the packet ("nf_conntrack: table full, dropping packet" in the kernel log): new connections fail at random while established ones go on.`
            : `: a burst of new connections fills it, and then the kernel drops the packets it cannot make an entry for ("nf_conntrack: table full, dropping packet").`) +
          ` The count was read when the snapshot was taken; it moves with the traffic.`,
        evidence: [ev(count.loc), ev(max.loc), ...(buckets !== undefined ? [ev(h.sysctl.get('net.netfilter.nf_conntrack_buckets')!.loc)] : [])],
        fix: {
          summary:
            `raise the limit (each entry costs about 320 bytes of kernel memory) and persist it in /etc/sysctl.d; raise net.netfilter.nf_conntrack_buckets (the hash size) with it to keep lookups short. ` +
            `Find what fills the table too (conntrack -L, counted by state): assured entries with long timeouts (nf_conntrack_tcp_timeout_established, 5 days by default) are the ones early_drop cannot evict`,
          ops: [{kind: 'sysctl', key: 'net.netfilter.nf_conntrack_max', value: String(next)}],
        },
      }),
    )
  }
  return out
})
