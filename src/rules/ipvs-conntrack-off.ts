// ipvs-conntrack-off: with net.ipv4.vs.conntrack = 0 IPVS drops the conntrack entry of every packet it
// forwards (ip_vs_notrack): ctstate rules see IPVS traffic as NEW/INVALID/UNTRACKED and iptables NAT never
// applies to it. Rules written for IPVS traffic that rely on conntrack silently do something else.
import {serviceRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {describeReplay, guessesOf, ipSel, ipvsKnobs, params, replyIn, requestIn, requestOut, where, type Replay} from './engine/flows.js'
import {conntrackOnBreaks} from './engine/vs-conntrack.js'
import {hostPrefix} from '../model/ip.js'
import {describeBackend, describeService, vipSelector} from './engine/world.js'
import {CLIENT_PACKETS, SERVER_PACKETS} from './engine/ctmodel.js'
import {statelessFix, type Blocked} from './engine/stateful.js'
import type {Evidence} from '../model/finding.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'ipvs-conntrack-off',
  title: 'conntrack-based rules for IPVS traffic with net.ipv4.vs.conntrack = 0',
  severity: 'error',
  description:
    'IPVS keeps netfilter conntrack entries for the connections it forwards only when net.ipv4.vs.conntrack = 1. With 0 (the default) every forwarded packet\'s entry is discarded: ctstate matches see IPVS packets as NEW, INVALID or UNTRACKED (never ESTABLISHED), and SNAT/MASQUERADE rules never apply to them.',
  sources: [
    '002_470e9850247cd7a0.txt (LVS-HOWTO 29.2, 29.5, 29.6)',
    'Documentation/networking/ipvs-sysctl.rst (conntrack)',
    'include/net/ip_vs.h ip_vs_notrack',
    'net/netfilter/ipvs/ip_vs_xmit.c',
    'test/ipvs-lab: nat-invalid-drop-ct0/ct1, nat-output-stateful(-ct1), dr-state-new-ct1 (kernel 6.1)',
  ],
}

const CLIENT = CLIENT_PACKETS
const SERVER = SERVER_PACKETS

export default serviceRule(
  meta,
  (svc, w) => {
    const h = svc.host
    if (!h.fw) return undefined
    const k = ipvsKnobs(h)
    if (k.vsConntrack) return undefined
    const off = params(k, 'masq', svc.proto)
    const on = params({vsConntrack: true, tcpLoose: k.tcpLoose}, 'masq', svc.proto)
    const masq = svc.backends.filter((b) => b.method === 'masq' && !b.local)
    const differs: Replay[] = []
    const selectors = new Map<Replay, Blocked['selector']>()
    const evidence: Evidence[] = []
    const snat: string[] = []
    for (const probe of svc.probes.slice(0, 1)) {
      const tcp = svc.proto === 'tcp'
      for (const kind of tcp ? CLIENT : (['DATA'] as const)) {
        const a = requestIn(svc, w, probe, kind, off)
        if (a.result.blocked && !requestIn(svc, w, probe, kind, on).result.blocked) {
          differs.push(a)
          selectors.set(a, vipSelector(svc))
        }
      }
      for (const b of masq.slice(0, 1)) {
        for (const kind of tcp ? CLIENT : (['DATA'] as const)) {
          const a = requestOut(svc, probe, b, kind, off)
          if (a.result.blocked && !requestOut(svc, probe, b, kind, on).result.blocked) {
            differs.push(a)
            selectors.set(a, ipSel(b.ip, svc.proto, b.port ?? svc.port))
          }
        }
        for (const kind of tcp ? SERVER : (['RDATA'] as const)) {
          const a = replyIn(svc, probe, b, kind, off)
          if (a.result.blocked && !replyIn(svc, probe, b, kind, on).result.blocked) {
            differs.push(a)
            selectors.set(a, {src: hostPrefix(b.ip), proto: svc.proto, sport: b.port ?? svc.port})
          }
        }
      }
      // SNAT/MASQUERADE that would apply to the forwarded packet if it were tracked
      for (const b of masq) {
        const t = requestOut(svc, probe, b, 'SYN', on)
        const post = t.result.hooks.find((x) => x.hook === 'POSTROUTING')
        if (post?.nat && (post.nat.kind === 'SNAT' || post.nat.kind === 'MASQUERADE')) {
          snat.push(`${where(post.nat.decision)} would rewrite the source of the packets IPVS sends to ${describeBackend(b)}, but IPVS packets are untracked and never meet the nat table`)
          evidence.push(ev(post.nat.decision.loc))
          break
        }
      }
    }
    if (differs.length === 0 && snat.length === 0) return undefined
    for (const r of differs) if (r.result.blocked) evidence.push(ev(r.result.blocked.decision.loc))
    const lines = [...differs.map((r) => `  ${r.place === 'ipvs-out' ? 'after IPVS, ' : ''}${describeReplay(r)}`), ...snat.map((s) => `  ${s}`)]
    const guesses = guessesOf(differs)
    // vs.conntrack is one switch for the whole director: never the fix when it would break a DR/TUN service here
    const dr = conntrackOnBreaks(h, w)
    const blocked: Blocked[] = differs.filter((r) => r.result.blocked).map((r) => ({replay: r, decision: r.result.blocked!.decision, selector: selectors.get(r)!}))
    const fix = dr.length
      ? {
          summary: `accept the LVS-NAT packets statelessly instead: net.ipv4.vs.conntrack=1 would break ${dr.length === 1 ? 'the LVS-DR/TUN service' : 'LVS-DR/TUN services'} on this director${snat.length ? ' (SNAT of IPVS traffic needs vs.conntrack=1: not possible here)' : ''}`,
          ops: statelessFix(h.fw, undefined, blocked),
        }
      : {summary: 'let IPVS keep conntrack entries for its connections (persist it in /etc/sysctl.d)', ops: [{kind: 'sysctl' as const, key: 'net.ipv4.vs.conntrack', value: '1'}]}
    return finding(meta, h.name, {
      // without net.ipv4.vs.conntrack in the snapshot the value is a guess (kube-proxy in IPVS mode, for one, sets 1
      // and refuses to start otherwise): said, not asserted
      severity: guesses.length || k.defaults.some((d) => d.startsWith('net.ipv4.vs.conntrack')) ? 'info' : undefined,
      message:
        `${describeService(svc)} is LVS-NAT and ${k.defaults.length ? 'net.ipv4.vs.conntrack is not in the snapshot (default 0)' : 'net.ipv4.vs.conntrack = 0'}: IPVS discards the conntrack entry of every packet it forwards, so rules that rely on connection tracking do not see these connections as they would with conntrack on:\n${lines.join('\n')}` +
        (dr.length ? `\nnet.ipv4.vs.conntrack=1 is not the way out here: it applies to the whole director and would break\n${dr.map((x) => `  ${x}`).join('\n')}` : ''),
      evidence: [ev(svc.loc), ...k.evidence, ...evidence],
      unverified: [...k.defaults, ...guesses],
      fix,
    })
  },
  (svc) => svc.kind === 'ipvs' && svc.backends.some((b) => b.method === 'masq' && !b.local),
)
