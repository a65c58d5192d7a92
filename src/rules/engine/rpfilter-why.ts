// Why a `-m rpfilter --invert` rule drops a client's packets, in words, and the fix an expert would make to the rule
// itself: the route back to the client (the reverse lookup ipt_rpfilter.c makes, dataplane/rpfilter.ts) leaves by
// another device (--loose keeps the anti-spoofing check for sources with no route at all), or exists only without
// the mark --validmark puts in the lookup (drop --validmark, or give the mark's table the route back).
import {formatIp} from '../../model/ip.js'
import type {IptRule, Match} from '../../model/iptables.js'
import type {Packet} from '../../dataplane/packet.js'
import {rpfilterText} from '../../dataplane/rpfilter.js'
import type {Decision} from './firewall.js'
import type {FixOp} from './fix.js'
import type {HostView} from './host.js'

type Rpfilter = Extract<Match, {kind: 'rpfilter'}>

export interface RpfilterWhy {
  readonly why: string
  /** the rule rewritten (iptables -R), when changing its flags is what lets the client through */
  readonly fix?: {readonly summary: string; readonly op: FixOp}
}

/** The rule with its rpfilter flags changed, as `iptables -R` takes it (the rule's own text otherwise). */
function respec(rule: IptRule, m: Rpfilter, change: Partial<Rpfilter>): string | undefined {
  const text = rule.loc.text.replace(/^-A \S+ /, '')
  const re = /-m rpfilter(?: --(?:loose|validmark|accept-local|invert))*/
  if (!re.test(text)) return undefined
  return text.replace(re, rpfilterText({...m, ...change}))
}

function replaceOp(d: Decision, spec: string): FixOp | undefined {
  const chain = d.ruleset.tables.get(d.table)?.chains.get(d.chain)
  const pos = chain && d.rule ? chain.rules.indexOf(d.rule) + 1 : 0
  if (!chain || pos <= 0) return undefined
  return {kind: 'ipt', bin: d.bin, table: d.table, chain: d.chain, op: 'R', pos, chainLen: chain.rules.length, spec}
}

/** undefined unless the decision's rule drops because its rpfilter match failed the packet arriving on `iif` */
export function rpfilterWhy(h: HostView, d: Decision, p: Packet, iif: string): RpfilterWhy | undefined {
  const rule = d.rule
  const m = rule?.matches?.find((x): x is Rpfilter => x.kind === 'rpfilter')
  if (!rule || !m || !m.invert || !h.snap.routes || p.src.family !== 4) return undefined
  const look = (mark: number) => h.route({dst: p.src, src: p.dst, iif: 'lo', mark})
  const res = look(m.validMark ? p.mark : 0)
  if (!res) return undefined
  const mark = m.validMark && p.mark ? ` with the packets' mark 0x${p.mark.toString(16)} (--validmark)` : ''
  if (res.kind !== 'unicast' && !(res.kind === 'local' && m.acceptLocal)) {
    const why = `Its reverse path check fails: ${h.name} has no unicast route back to ${formatIp(p.src)}${mark}: ${res.kind === 'none' ? 'no route matches' : `the route found is ${res.kind}`}.`
    // the route is there without the mark: --validmark is what fails it
    const plain = m.validMark && p.mark ? look(0) : undefined
    const plainDev = plain?.kind === 'unicast' ? plain.dev : undefined
    if (plainDev && (plainDev === iif || m.loose)) {
      const spec = respec(rule, m, {validMark: false})
      const op = spec ? replaceOp(d, spec) : undefined
      if (op) return {why, fix: {summary: `check the route back without the mark (drop --validmark from the rule), or give the mark's routing table a route back to the clients`, op}}
    }
    return {why}
  }
  if (m.loose) return undefined
  const dev = res.kind === 'unicast' ? res.dev : res.route.dev
  if (!dev || dev === iif) return undefined
  const why = `Its reverse path check fails: the client's packets arrive on ${iif}, but ${h.name}'s route back to ${formatIp(p.src)}${mark} leaves by ${dev} (asymmetric routing).`
  const spec = respec(rule, m, {loose: true})
  const op = spec ? replaceOp(d, spec) : undefined
  return op ? {why, fix: {summary: `let the reverse path check accept a route back by any device (--loose: sources with no route back at all are still dropped), or make the route back to the clients leave by ${iif} if the asymmetry is not intended`, op}} : {why}
}
