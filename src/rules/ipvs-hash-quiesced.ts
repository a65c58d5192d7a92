// ipvs-hash-quiesced: the hashing schedulers sh (source hashing) and dh (destination hashing) keep a fixed table of
// 256 buckets, each holding one destination; a client's address picks its bucket. A destination of weight 0 (or
// over its upper threshold) keeps its buckets: ip_vs_sh_reassign gives every destination `weight` buckets in a row
// and a weight-0 one still one per round; ip_vs_dh_reassign deals the buckets out one per destination whatever the
// weights. When the bucket's destination is unavailable, sh without sh-fallback and dh find no destination at all:
// ip_vs_schedule fails and ip_vs_leave refuses the connection (ICMP port unreachable). So quiescing a realserver
// (weight 0, what keepalived's inhibit_on_failure does to a failed one) does not drain it as with rr or wlc: it
// refuses every client that hashes to it. mh keeps the slots of a destination set to weight 0 after it was added
// (its table is built from last_weight), though not of one added with weight 0: reported as a warning.
import {formatEndpoint} from '../model/ip.js'
import type {IpvsDest, IpvsService} from '../model/ipvs.js'
import {customRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {listSome} from './engine/list.js'
import {describeService} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'ipvs-hash-quiesced',
  title: 'a hashing scheduler (sh, dh) refuses the clients that hash to a quiesced realserver',
  severity: 'error',
  description:
    "sh (source hashing) and dh (destination hashing) map client addresses to a fixed table of 256 buckets, and a realserver of weight 0 (quiesced) or over its upper threshold keeps its buckets. A new connection that hashes to such a bucket finds no realserver: without sh-fallback (dh has none) IPVS refuses it with ICMP port unreachable instead of moving it to another realserver. Quiescing a realserver (ipvsadm -e ... -w 0, keepalived's inhibit_on_failure) therefore does not drain it as it does with rr or wlc: it refuses a fixed share of the clients, always the same ones.",
  sources: [
    'net/netfilter/ipvs/ip_vs_sh.c (ip_vs_sh_reassign: a weight-0 destination keeps a bucket; ip_vs_sh_get: is_unavailable -> NULL; ip_vs_sh_get_fallback with IP_VS_SVC_F_SCHED_SH_FALLBACK)',
    'net/netfilter/ipvs/ip_vs_dh.c (ip_vs_dh_reassign: buckets dealt one per destination; ip_vs_dh_schedule: weight <= 0 or overloaded -> no destination)',
    'net/netfilter/ipvs/ip_vs_core.c (ip_vs_leave: icmp_send ICMP_PORT_UNREACH)',
    'ipvsadm(8) (-s sh, -b sh-fallback, -w 0)',
  ],
}

const SVC_FLAG = {tcp: '-t', udp: '-u', sctp: '--sctp-service'} as const

function unavailable(d: IpvsDest): string | undefined {
  if (d.weight === 0) return 'weight 0'
  if (d.upperThreshold > 0 && d.activeConns !== undefined && d.activeConns + (d.inactiveConns ?? 0) >= d.upperThreshold) return `at its upper threshold ${d.upperThreshold}`
  return undefined
}

/** How many of the 256 buckets each destination holds (list order: the listing's, which may not be the kernel's). */
function buckets(s: IpvsService): number[] {
  const n = s.dests.length
  const count = new Array<number>(n).fill(0)
  if (s.scheduler === 'dh') {
    for (let i = 0; i < 256; i++) count[i % n]!++
    return count
  }
  let di = 0
  let c = 0
  for (let i = 0; i < 256; i++) {
    const k = di % n
    count[k]!++
    if (++c >= s.dests[k]!.weight) {
      di++
      c = 0
    }
  }
  return count
}

function serviceArgs(s: IpvsService): string | undefined {
  if (s.proto === 'fwmark') return s.fwmark !== undefined ? `-f ${s.fwmark}${s.family === 6 ? ' -6' : ''}` : undefined
  if (!s.vip || s.port === undefined) return undefined
  return `${SVC_FLAG[s.proto]} ${formatEndpoint({ip: s.vip, port: s.port})}`
}

/** `ipvsadm -E` with the service's options as they are, plus sh-fallback (-E sets every option anew). */
function fallbackCommand(s: IpvsService, sched: 'sh' | 'mh'): string | undefined {
  const svc = serviceArgs(s)
  if (!svc) return undefined
  // the port flag (flag-2) keeps its meaning; it is printed under either scheduler's name
  const port = s.schedFlags.some((f) => f === 'sh-port' || f === 'mh-port' || f === 'flag-2')
  const flags = [`${sched}-fallback`, ...(port ? [`${sched}-port`] : []), ...s.schedFlags.filter((f) => f === 'flag-3')]
  const persist = s.persistence !== undefined ? ` -p ${s.persistence}${s.persistenceNetmask !== undefined && s.persistenceNetmask !== (s.family === 4 ? 32 : 128) ? ` -M ${s.family === 4 ? mask4(s.persistenceNetmask) : s.persistenceNetmask}` : ''}` : ''
  return `ipvsadm -E ${svc} -s ${sched} -b ${flags.join(',')}${persist}${s.ops ? ' -o' : ''}${s.pe ? ` --pe ${s.pe}` : ''}`
}

function mask4(len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
  return [24, 16, 8, 0].map((b) => (m >>> b) & 255).join('.')
}

const hasFlag = (s: IpvsService, ...names: string[]) => names.some((n) => s.schedFlags.includes(n))

/** keepalived, or kube-proxy in IPVS mode, puts its own configuration back at the next sync or reload */
const MANAGED = ' A change made with ipvsadm is undone at the next sync if keepalived or kube-proxy manages the service: make it in their configuration.'

export default customRule(meta, (w) => {
  const out: RuleFinding[] = []
  for (const svc of w.services) {
    const s = svc.ipvs
    if (svc.kind !== 'ipvs' || !s || (s.scheduler !== 'sh' && s.scheduler !== 'dh' && s.scheduler !== 'mh')) continue
    // the fallback bit (IP_VS_SVC_F_SCHED1): ipvsadm prints it as sh-fallback or mh-fallback, or flag-1
    if (s.scheduler !== 'dh' && hasFlag(s, 'sh-fallback', 'mh-fallback', 'flag-1')) continue
    if (s.dests.length === 0 || s.dests.some((d) => Number.isNaN(d.weight))) continue
    const why = s.dests.map(unavailable)
    // none available at all is ipvs-no-available-realserver's
    if (why.every((x) => x !== undefined) || why.every((x) => x === undefined)) continue
    const keepalived = svc.host.snap.ipvs?.source === 'keepalived.conf'
    const hashed = s.scheduler
    if (hashed === 'mh') {
      // ip_vs_mh builds its table from each destination's last_weight, which a weight set to 0 does not change
      // (__ip_vs_update_dest): a destination quiesced after it was added keeps its slots, one added with weight 0
      // has none. The listing cannot tell which; an overloaded one keeps its slots either way.
      const gone = s.dests.map((d, i) => ({d, why: why[i]})).filter((x) => x.why !== undefined)
      const cmd = keepalived ? undefined : fallbackCommand(s, 'mh')
      out.push(
        finding(meta, svc.host.name, {
          severity: gone.every((x) => x.why === 'weight 0') ? 'warning' : undefined,
          message:
            `${describeService(svc)} is scheduled by mh (Maglev hashing) without mh-fallback, and ${listSome(gone.map((x) => `${formatEndpoint({ip: x.d.ip, port: x.d.port})} (${x.why})`))} takes no new connection. ` +
            `mh builds its lookup table from each realserver's last weight above 0: one quiesced after it was added (ipvsadm -e -w 0, keepalived's inhibit_on_failure) keeps its slots, and the clients that hash to them get no realserver; ` +
            `IPVS refuses their connections with ICMP port unreachable instead of moving them on. (A realserver added with weight 0 takes no slot; the listing cannot tell which.)`,
          evidence: [ev(s.loc), ...gone.map((x) => ev(x.d.loc))],
          fix: {
            summary: keepalived
              ? 'add `mh-fallback` to the virtual_server block, after `lb_algo mh` (keepalived ignores it before), so that clients of an unavailable realserver go to the next available one, and reload keepalived'
              : `let mh move the clients of an unavailable realserver to the next available one (-b mh-fallback, the other options as they are).${MANAGED}`,
            ops: cmd ? [{kind: 'cmd', text: cmd}] : [],
          },
        }),
      )
      continue
    }
    const count = buckets(s)
    const gone = s.dests.map((d, i) => ({d, why: why[i], n: count[i]!})).filter((x) => x.why !== undefined && x.n > 0)
    if (gone.length === 0) continue
    const total = gone.reduce((a, x) => a + x.n, 0)
    const sh = hashed === 'sh'
    const cmd = sh && !keepalived ? fallbackCommand(s, 'sh') : undefined
    const ops: FixOp[] = cmd ? [{kind: 'cmd', text: cmd}] : []
    const share = total * 2 >= 256 ? `${Math.round((total * 100) / 256)}%` : `about ${Math.max(1, Math.round((total * 100) / 256))}%`
    out.push(
      finding(meta, svc.host.name, {
        message:
          `${describeService(svc)} is scheduled by ${sh ? 'sh (source hashing) without sh-fallback' : 'dh (destination hashing)'}, and ${listSome(gone.map((x) => `${formatEndpoint({ip: x.d.ip, port: x.d.port})} (${x.why})`))} still ${gone.length === 1 ? 'holds' : 'hold'} ${total} of its 256 buckets. ` +
          `The ${sh ? 'clients whose address' : 'connections whose destination address'} hashes to ${gone.length === 1 ? 'it' : 'them'} (${share}${sh ? ' of client addresses' : ''}, always the same ones) get no realserver: IPVS refuses each new connection with ICMP port unreachable instead of moving it to another realserver, as rr or wlc would. ` +
          `A weight of 0 does not drain a realserver under a hashing scheduler.` +
          (sh ? '' : ' dh has no fallback flag.') +
          ` (The bucket count follows the order the listing shows; the kernel's order may differ by a bucket or so.)`,
        evidence: [ev(s.loc), ...gone.map((x) => ev(x.d.loc))],
        fix: {
          summary: sh
            ? keepalived
              ? 'add `sh-fallback` to the virtual_server block, after `lb_algo sh` (keepalived ignores it before), so that clients of an unavailable realserver go to the next available one, and reload keepalived'
              : `let sh move the clients of an unavailable realserver to the next available one (-b sh-fallback, the other options as they are). Removing the realserver (ipvsadm -d) instead rebuilds the table, which moves most clients: sh is not consistent hashing.${MANAGED}`
            : `remove the realserver from the service (ipvsadm -d, or without inhibit_on_failure in keepalived) instead of setting its weight to 0: dh then deals the buckets anew, which moves most destinations; or give it its weight back.${MANAGED}`,
          ops,
        },
      }),
    )
  }
  return out
})
