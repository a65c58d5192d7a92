// nat-stateful-output: on an LVS-NAT director the scheduled client packets pass filter INPUT (to the VIP)
// and, after IPVS rewrote them, filter OUTPUT (to the RIP; ip_vs_nat_send_or_cont sends them through
// LOCAL_OUT). Stateful rules there ate the client's last FIN/ACK, INVALID to conntrack (LVS-HOWTO 29.15):
// realservers pile up in FIN_WAIT2 and clients in LAST_ACK.
import {formatEndpoint} from '../model/ip.js'
import {serviceRule, finding} from './engine/helpers.js'
import {ev} from './engine/host.js'
import {acceptedBy, describeReplay, guessesOf, ipvsKnobs, params, requestIn, requestOut, ipSel, type Replay} from './engine/flows.js'
import type {Decision} from './engine/firewall.js'
import {statelessFix, type Blocked} from './engine/stateful.js'
import {describeService, vipSelector} from './engine/world.js'
import type {RuleMeta} from './types.js'

export const meta: RuleMeta = {
  id: 'nat-stateful-output',
  title: 'stateful INPUT/OUTPUT rules drop the last FIN/ACK of LVS-NAT connections',
  severity: 'warning',
  description:
    'LVS-NAT packets from the client cross filter INPUT (before IPVS) and filter OUTPUT (after IPVS rewrote them toward the realserver). The client\'s last FIN/ACK is INVALID to conntrack; a chain that accepts only NEW,ESTABLISHED,RELATED drops it, so connections never close cleanly (LVS-HOWTO 29.15).',
  sources: ['002_470e9850247cd7a0.txt (LVS-HOWTO 29.15, 29.6)', 'net/netfilter/ipvs/ip_vs_xmit.c ip_vs_nat_send_or_cont'],
}

export default serviceRule(
  meta,
  (svc, w) => {
    const h = svc.host
    const fw = h.fw
    if (!fw) return undefined
    const k = ipvsKnobs(h)
    // evaluated with conntrack kept for IPVS (what these stateful rules need; ipvs-conntrack-off covers =0)
    const p = params({vsConntrack: true, tcpLoose: k.tcpLoose}, 'masq', svc.proto)
    if (svc.proto !== 'tcp') return undefined
    const masq = svc.backends.filter((b) => b.method === 'masq' && !b.local)
    for (const probe of svc.probes) {
      if (requestIn(svc, w, probe, 'SYN', p).result.blocked) continue
      const blocked: Blocked[] = []
      const statefulAccepts: Decision[] = []
      const stateDependent = (lost: Replay, est: Replay, hook: 'INPUT' | 'OUTPUT') => {
        if (!lost.result.blocked || est.result.blocked) return false
        const a = acceptedBy(est, hook)
        if (a) statefulAccepts.push(a)
        return true
      }
      const inLost = requestIn(svc, w, probe, 'LASTFIN', p)
      if (stateDependent(inLost, requestIn(svc, w, probe, 'LASTFIN', p, 'ESTABLISHED'), 'INPUT')) blocked.push({replay: inLost, decision: inLost.result.blocked!.decision, selector: vipSelector(svc)})
      for (const b of masq) {
        const outLost = requestOut(svc, probe, b, 'LASTFIN', p)
        if (stateDependent(outLost, requestOut(svc, probe, b, 'LASTFIN', p, 'ESTABLISHED'), 'OUTPUT')) {
          blocked.push({replay: outLost, decision: outLost.result.blocked!.decision, selector: ipSel(b.ip, svc.proto, b.port ?? svc.port)})
        }
      }
      if (blocked.length === 0) continue
      const lines = blocked.map((b) => `  ${b.replay.place === 'ipvs-out' ? `after IPVS (toward ${formatEndpoint({ip: b.replay.packet.dst, port: b.replay.packet.dport ?? 0})}), ` : 'before IPVS, '}${describeReplay(b.replay)}`)
      const guesses = guessesOf(blocked.map((b) => b.replay))
      return finding(meta, h.name, {
        severity: guesses.length ? 'info' : undefined,
        message:
          `${describeService(svc)} is LVS-NAT: the client's packets cross filter INPUT before IPVS and filter OUTPUT after it. Their stateful rules let NEW and ESTABLISHED packets through, but:\n${lines.join('\n')}\n` +
          'The realservers stay in FIN_WAIT2 and the clients in LAST_ACK, retransmitting their FIN (LVS-HOWTO 29.15).',
        evidence: [ev(svc.loc), ...masq.slice(0, 1).map((b) => ev(b.loc)), ...statefulAccepts.map((d) => ev(d.loc)), ...blocked.map((b) => ev(b.decision.loc))],
        unverified: [...guesses, ...(k.vsConntrack ? [] : ['net.ipv4.vs.conntrack is 0 here: these chains see IPVS packets as NEW/INVALID/UNTRACKED instead (see ipvs-conntrack-off); evaluated as with conntrack=1'])],
        fix: {
          summary: 'accept the LVS-NAT traffic statelessly: toward the realservers in OUTPUT, to the VIP in INPUT (LVS-HOWTO 29.15)',
          ops: statelessFix(fw, undefined, blocked),
        },
      })
    }
    return undefined
  },
  (svc) => svc.kind === 'ipvs' && svc.backends.some((b) => b.method === 'masq' && !b.local),
)
