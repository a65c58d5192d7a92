// mark-not-connmarked: MARK chosen at random per packet (statistic) is a per-packet decision; only CONNMARK
// (restore the connection's mark, draw for NEW packets only, save it) makes it a per-connection one. Without,
// the packets of one connection carry different marks, and everything that reads the packet mark later
// (ip rule fwmark, IPVS fwmark services, tc, filter mark matches) sends them different ways.
import type {IptablesRuleset, IptRule} from '../model/iptables.js'
import {hostRule, finding} from './engine/helpers.js'
import {ev, locRef, locRefs, UNKNOWN_IF, type HostView} from './engine/host.js'
import {ctView} from './engine/ctmodel.js'
import {enumerate, reachableStatRules} from './engine/cascade.js'
import {flowPacket} from './engine/packets.js'
import {reachableFrom, selectorOf} from './engine/world.js'
import type {FixOp} from './engine/fix.js'
import type {RuleFinding, RuleMeta} from './types.js'
import type {World} from './engine/world.js'

export const meta: RuleMeta = {
  id: 'mark-not-connmarked',
  title: 'random per-packet MARK balancing without CONNMARK',
  severity: 'warning',
  description:
    "Marks drawn with `-m statistic --mode random` are drawn again for every packet. Unless the draw is limited to a connection's first packet (a ctstate NEW guard) and kept in the connection (CONNMARK --save-mark, restored with --restore-mark before the draw), packets of one connection carry different marks and whatever reads the mark per packet (policy routing by fwmark, fwmark IPVS services, filter and tc mark matches) splits the connection.",
  sources: ['001_99dd2e38bf121ee9.txt (CONNMARK restore, MARK by statistic, CONNMARK save for NEW)', 'iptables-extensions(8) CONNMARK, statistic'],
}

const hex = (n: number) => `0x${n.toString(16)}`

function isStatMark(r: IptRule): boolean {
  return r.target?.kind === 'MARK' && r.matches.some((m) => m.kind === 'statistic')
}

function hasNewGuard(r: IptRule): boolean {
  return r.matches.some((m) => m.kind === 'ctstate' && !m.neg && m.states.every((s) => s === 'NEW'))
}

function check(h: HostView, w: World, rs: IptablesRuleset): RuleFinding[] {
  const mangle = rs.tables.get('mangle')
  if (!mangle) return []
  const groups = new Map<string, IptRule[]>()
  for (const c of mangle.chains.values()) {
    if (!reachableFrom(rs, 'mangle', c.name, ['PREROUTING'])) continue
    for (const r of c.rules) {
      if (!isStatMark(r)) continue
      const sel = selectorOf(rs, r)
      const k = `${sel.dst?.value ?? '*'}|${sel.proto ?? '*'}|${sel.dport ?? '*'}`
      groups.set(k, [...(groups.get(k) ?? []), r])
    }
  }
  const out: RuleFinding[] = []
  for (const rules of groups.values()) {
    const marks = new Set(rules.map((r) => (r.target?.kind === 'MARK' ? r.target.value : 0)))
    if (marks.size < 2) continue
    const sel = selectorOf(rs, rules[0]!)
    const dst = sel.dst ? {family: sel.dst.family, value: sel.dst.value} : (h.primaryAddress() ?? w.client.ip)
    const e = {src: w.client.ip, sport: w.client.port, dst, dport: sel.dport ?? 80, proto: sel.proto ?? ('tcp' as const)}
    const syn = flowPacket(e, 'SYN')
    const data = flowPacket(e, 'DATA')
    const envOf = (state: 'NEW' | 'ESTABLISHED', ctMark: number) => h.env({iif: UNKNOWN_IF, ct: ctView(state, 'ORIGINAL', ctMark), assumeLocal: [dst]})
    const stat = reachableStatRules([rs], ['PREROUTING'], syn, envOf('NEW', 0), ['mangle'])
    // the first packet: its mark and the connection mark it leaves behind
    const first = enumerate([rs], stat, (fw) => {
      const r = fw.runHook('PREROUTING', syn, envOf('NEW', 0), false)
      return {mark: r.packet.mark, ct: r.ctMark}
    }, (o) => `${o.mark}|${o.ct}`)
    let split = 0
    for (const f of first.outcomes) {
      const later = enumerate([rs], stat, (fw) => fw.runHook('PREROUTING', data, envOf('ESTABLISHED', f.value.ct), false).packet.mark, (m) => String(m))
      split += f.p * later.outcomes.filter((o) => o.value !== f.value.mark).reduce((a, o) => a + o.p, 0)
    }
    if (split < 1e-6) continue
    const chainRules = [...(mangle.chains.get(rules[0]!.chain)?.rules ?? [])]
    const restore = chainRules.find((r) => r.target?.kind === 'CONNMARK' && 'op' in r.target && r.target.op === 'restore')
    const save = chainRules.find((r) => r.target?.kind === 'CONNMARK' && 'op' in r.target && r.target.op === 'save')
    const fw = h.fw!
    const ops: FixOp[] = []
    const firstIdx = Math.min(...rules.map((r) => r.index))
    const lastIdx = Math.max(...rules.map((r) => r.index))
    if (!restore || restore.index > firstIdx) ops.push(...fw.fixer.insertAt(rs, 'mangle', rules[0]!.chain, firstIdx, '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff'))
    for (const r of rules) if (!hasNewGuard(r)) ops.push(...(fw.fixer.replaceNewOnly(r, rs) ?? []))
    if (!save || save.index < lastIdx) ops.push(...fw.fixer.insertAt(rs, 'mangle', rules[0]!.chain, lastIdx + 1, '-m conntrack --ctstate NEW -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff'))
    const one = new Set(rules.map((r) => locRef(r.loc, {element: false}))).size === 1
    const consumers: string[] = []
    if ((h.snap.rules ?? []).some((r) => r.fwmark !== undefined)) consumers.push('policy routing (ip rule fwmark)')
    if ((h.snap.ipvs?.services ?? []).some((s) => s.fwmark !== undefined)) consumers.push('fwmark IPVS services')
    const why = restore && restore.index < firstIdx
      ? `${locRef(restore.loc)} restores the connection's mark, but ${one ? 'the random MARK rule after it draws' : 'the random MARK rules after it draw'} again for every packet (no ctstate NEW guard)`
      : rules.every(hasNewGuard)
        ? "the draw is made for a connection's first packet only (ctstate NEW), but no CONNMARK --restore-mark before it gives the later packets the connection's mark"
        : 'nothing keeps the first draw in the connection (no CONNMARK --restore-mark before the draw, no ctstate NEW guard on it)'
    out.push(
      finding(meta, h.name, {
        message:
          `${one ? 'The random MARK rule' : 'The random MARK rules'} ${locRefs(rules.map((r) => r.loc))} ${one ? 'chooses' : 'choose'} among marks ${[...marks].map(hex).join(', ')} per packet: ${why}. ` +
          `${(split * 100).toFixed(1)}% of a connection's later packets get another mark than its first packet.` +
          (consumers.length
            ? ` ${consumers.join(' and ')} read the mark of every packet, so those packets go another way.`
            : ' Here only nat reads the mark (first packet of a connection), so connections still stick to one backend, but anything that reads the mark per packet (ip rule fwmark, an fwmark service, tc) would split them.'),
        evidence: [...(restore ? [ev(restore.loc)] : []), ...rules.map((r) => ev(r.loc)), ...(save ? [ev(save.loc)] : [])],
        fix: {summary: 'restore the connection mark first, draw only for the first packet of a connection (ctstate NEW), and save the draw in the connection', ops},
      }),
    )
  }
  return out
}

export default hostRule(meta, (h, w) => (h.fw?.rulesets ?? []).filter((rs) => rs.family === 4).flatMap((rs) => check(h, w, rs)))
