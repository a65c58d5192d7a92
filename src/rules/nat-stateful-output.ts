// nat-stateful-output: on an LVS-NAT director the scheduled client packets pass filter INPUT (to the VIP)
// and, after IPVS rewrote them, filter OUTPUT (to the RIP; ip_vs_nat_send_or_cont sends them through
// LOCAL_OUT). With net.ipv4.vs.conntrack=0 conntrack never keeps these connections, so stateful rules there see
// what the IPVS lab's 6.1 kernel showed:
//   - OUTPUT: the very first SYN is UNTRACKED (ip_vs_notrack): an OUTPUT chain that accepts only
//     NEW,ESTABLISHED,RELATED drops it and no connection opens (lab: nat-output-stateful);
//   - INPUT (and OUTPUT, if it lets UNTRACKED through): the client's FIN/ACK has no entry to belong to and is
//     INVALID; the other packets are picked up as NEW. The FIN is dropped: the realserver never sees it, the
//     client retransmits it from LAST_ACK (lab: nat-input-stateful; LVS-HOWTO 29.15's "last FIN-ACK").
// With vs.conntrack=1 the same chains pass everything (lab: nat-output-stateful-ct1), so the rule is silent.
import {formatEndpoint} from '../model/ip.js'
import type {CtState} from '../model/iptables.js'
import {serviceRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {acceptedBy, describeReplay, guessesOf, ipvsKnobs, params, requestIn, requestOut, ipSel, type Replay} from './engine/flows.js'
import type {FlowPacket} from './engine/ctmodel.js'
import type {Decision} from './engine/firewall.js'
import {statelessFix, type Blocked} from './engine/stateful.js'
import {describeService, vipSelector} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'nat-stateful-output',
  title: 'stateful INPUT/OUTPUT rules drop LVS-NAT packets that conntrack does not follow (first SYN, last FIN/ACK)',
  severity: 'warning',
  description:
    'LVS-NAT packets from the client cross filter INPUT (before IPVS) and filter OUTPUT (after IPVS rewrote them toward the realserver). With net.ipv4.vs.conntrack=0 IPVS sends them on untracked: a stateful OUTPUT chain (NEW,ESTABLISHED,RELATED) drops the very first SYN, and the client\'s FIN/ACK, INVALID to conntrack, dies in a stateful INPUT chain (or in OUTPUT once UNTRACKED is accepted), so connections never close cleanly (LVS-HOWTO 29.15).',
  sources: [
    '002_470e9850247cd7a0.txt (LVS-HOWTO 29.15, 29.6)',
    'net/netfilter/ipvs/ip_vs_xmit.c ip_vs_nat_send_or_cont',
    'include/net/ip_vs.h ip_vs_notrack',
    'test/ipvs-lab: nat-output-stateful, nat-output-untracked, nat-input-stateful (kernel 6.1)',
  ],
}

const LATER: readonly FlowPacket[] = ['ACK', 'DATA', 'LASTFIN']

export default serviceRule(
  meta,
  (svc, w) => {
    const h = svc.host
    const fw = h.fw
    if (!fw || svc.proto !== 'tcp') return undefined
    const k = ipvsKnobs(h)
    const p = params(k, 'masq', svc.proto)
    const masq = svc.backends.filter((b) => b.method === 'masq' && !b.local)
    for (const probe of svc.probes) {
      if (requestIn(svc, w, probe, 'SYN', p).result.blocked) continue // filter-blocks-vip
      const blocked: Blocked[] = []
      const statefulAccepts: Decision[] = []
      /** the packet in the state it has is dropped, while a chain tracking the connection (NEW/ESTABLISHED) would pass it */
      const stateDependent = (lost: Replay, tracked: Replay, hook: 'INPUT' | 'OUTPUT') => {
        if (!lost.result.blocked || tracked.result.blocked) return false
        const a = acceptedBy(tracked, hook)
        if (a) statefulAccepts.push(a)
        return true
      }
      const trackedState = (kind: FlowPacket): CtState => (kind === 'SYN' ? 'NEW' : 'ESTABLISHED')
      for (const kind of LATER) {
        const r = requestIn(svc, w, probe, kind, p)
        if (stateDependent(r, requestIn(svc, w, probe, kind, p, trackedState(kind)), 'INPUT')) {
          blocked.push({replay: r, decision: r.result.blocked!.decision, selector: vipSelector(svc)})
          break
        }
      }
      for (const b of masq) {
        for (const kind of ['SYN', ...LATER] as FlowPacket[]) {
          const r = requestOut(svc, probe, b, kind, p)
          if (stateDependent(r, requestOut(svc, probe, b, kind, p, trackedState(kind)), 'OUTPUT')) {
            blocked.push({replay: r, decision: r.result.blocked!.decision, selector: ipSel(b.ip, svc.proto, b.port ?? svc.port)})
            break
          }
        }
      }
      if (blocked.length === 0) continue
      const lines = blocked.map((b) => `  ${b.replay.place === 'ipvs-out' ? `after IPVS (toward ${formatEndpoint({ip: b.replay.packet.dst, port: b.replay.packet.dport ?? 0})}), ` : 'before IPVS, '}${describeReplay(b.replay)}`)
      const firstSyn = blocked.some((b) => b.replay.kind === 'SYN')
      const fin = blocked.some((b) => b.replay.kind === 'LASTFIN')
      const effects = [
        ...(firstSyn ? ['The first SYN never reaches a realserver: IPVS sends it through LOCAL_OUT without a conntrack entry (ip_vs_notrack, UNTRACKED), which no NEW,ESTABLISHED,RELATED rule matches; no connection opens (ipvsadm -Lnc: SYN_RECV, OutPkts 0).'] : []),
        ...(fin ? ["The client's FIN/ACK has no conntrack entry to belong to (conntrack meets every packet of the connection afresh, and a FIN cannot start one): INVALID, dropped. The realservers stay in FIN_WAIT2 and the clients in LAST_ACK, retransmitting their FIN (LVS-HOWTO 29.15)."] : []),
        ...(!firstSyn && !fin ? ['The connection stalls where the packet is dropped.'] : []),
      ]
      const guesses = guessesOf(blocked.map((b) => b.replay))
      return finding(meta, h.name, {
        severity: guesses.length ? 'info' : undefined,
        message:
          `${describeService(svc)} is LVS-NAT: the client's packets cross filter INPUT before IPVS and filter OUTPUT after it, and with ${k.defaults.length ? 'net.ipv4.vs.conntrack not in the snapshot (default 0)' : 'net.ipv4.vs.conntrack = 0'} conntrack does not follow these connections. Stateful rules there drop:\n${lines.join('\n')}\n` +
          effects.join('\n'),
        evidence: [ev(svc.loc), ...masq.slice(0, 1).map((b) => ev(b.loc)), ...k.evidence, ...statefulAccepts.map((d) => ev(d.loc)), ...blocked.map((b) => ev(b.decision.loc))],
        unverified: [...k.defaults, ...guesses],
        fix: {
          summary: `accept the LVS-NAT traffic statelessly: ${[...(blocked.some((b) => b.replay.place === 'ipvs-in') ? ['to the VIP in INPUT'] : []), ...(blocked.some((b) => b.replay.place === 'ipvs-out') ? ['toward the realservers in OUTPUT'] : [])].join(', ')} (LVS-HOWTO 29.15)`,
          ops: statelessFix(fw, undefined, blocked),
        },
      })
    }
    return undefined
  },
  // with vs.conntrack=1 IPVS keeps the entry (ip_vs_update_conntrack): every packet after the SYN is
  // ESTABLISHED in INPUT and OUTPUT, both FINs included (lab: nat-output-stateful-ct1)
  (svc) => svc.kind === 'ipvs' && svc.backends.some((b) => b.method === 'masq' && !b.local) && !ipvsKnobs(svc.host).vsConntrack,
)
