// check judges the hosts again as they will be once its fixes are applied. A problem often hides behind
// another: a NOTRACK rule keeps the DNAT from happening, so the FORWARD drop behind it never sees the
// connection; a first forward chain drops the packet, so a second chain's policy drop is never reached. One
// pass names only the first blocker, and the on-call engineer who applies its fix finds the flow still dead.
//
// Round 1 is the plain run of the rules. When its findings carry fix commands, the commands are applied to
// copies of the snapshots (src/dataplane/apply-fix.ts: edits of the raw files, nothing touches a host) and the
// rules run again on the copies. Errors and warnings that were not found before are reported after the
// findings of the earlier rounds, marked `hiddenBehind` (the findings whose fixes revealed them); their fix
// commands are written for the hosts as the earlier fixes leave them, so the whole report's commands are
// exact when run in report order. Their evidence points at the original files (a line the fixes wrote is
// said to be one). At most MAX_ROUNDS rounds; it stops early when a round finds nothing new, proposes no
// command, or a command cannot be applied to the copy (the judgement would rest on a state that cannot be
// built).
import type {Evidence, Finding} from '../model/finding.js'
import type {HostSnapshot} from '../model/snapshot.js'
import {applyFixes} from '../dataplane/apply-fix.js'
import {renderFixes} from './engine/fix.js'
import type {Rule, RuleContext, RuleFinding} from './types.js'

/** Round 1 plus at most two re-judgements after fixes. */
export const MAX_ROUNDS = 3

/**
 * No re-judgement after a round whose fixes are more commands than this: a report of hundreds of fixes (one per
 * service of a 100,000-rule dump under a FORWARD DROP policy) is a different conversation, and re-judging it costs
 * as much as the check again for each round.
 */
export const MAX_ROUND_COMMANDS = 64

export interface RoundOptions {
  /** drops findings before their fixes are rendered (check --ignore) */
  readonly filter?: (f: RuleFinding) => boolean
  /** orders a round's findings before their fixes are rendered (check's report order) */
  readonly order?: (fs: RuleFinding[]) => RuleFinding[]
  readonly maxRounds?: number
}

/** said of a finding whose fix, applied to copies of the snapshots, leaves the same problem in place */
export const INCOMPLETE =
  'its fix, applied to a copy of the snapshots, leaves this problem in place (check finds it again there): the fix is incomplete; `lvsdoctor trace --fix` shows where the packets go after it'

type Checks = (ctx: RuleContext, rules: readonly Rule[]) => RuleFinding[]

/** What makes two findings the same problem across rounds (line numbers move when fixes insert rules). */
function sameProblem(f: {rule: string; host: string; title: string; evidence: readonly Evidence[]}): string {
  const texts = f.evidence.map((e) => `${e.host ?? ''}\u0001${e.file}\u0001${e.text}`).sort()
  return `${f.rule}\u0000${f.host}\u0000${f.title}\u0000${texts.join('\u0002')}`
}

/** The same rule on the same host with the same title (the problem may be quoted with other evidence). */
function sameKind(f: {rule: string; host: string; title: string}): string {
  return `${f.rule}\u0000${f.host}\u0000${f.title}`
}

export function runRulesInRounds(ctx: RuleContext, rules: readonly Rule[], checks: Checks, o: RoundOptions = {}): Finding[] {
  const pass = (c: RuleContext): RuleFinding[] => {
    let raw = checks(c, rules)
    if (o.filter) raw = raw.filter(o.filter)
    return o.order ? o.order(raw) : raw
  }
  let found = renderFixes(pass(ctx))
  const all = [...found]
  const seen = new Set(all.map(sameProblem))
  const maxRounds = o.maxRounds ?? MAX_ROUNDS
  let hosts: readonly HostSnapshot[] = ctx.hosts
  /** the findings whose fixes have been applied so far, as rule@host */
  const behind: string[] = []
  for (let round = 2; round <= maxRounds; round++) {
    const byHost = new Map<string, string[]>()
    for (const f of found) {
      const cmds = f.fix?.commands ?? []
      if (cmds.length === 0) continue
      byHost.set(f.host, [...(byHost.get(f.host) ?? []), ...cmds])
      const tag = `${f.rule}@${f.host}`
      if (!behind.includes(tag)) behind.push(tag)
    }
    if (byHost.size === 0) break
    let total = 0
    for (const c of byHost.values()) total += c.length
    if (total > MAX_ROUND_COMMANDS) break
    let complete = true
    const next = hosts.map((h) => {
      const cmds = byHost.get(h.name)
      if (!cmds) return h
      const r = applyFixes(h, cmds)
      if (r.outcomes.some((x) => !x.applied)) complete = false
      return r.host
    })
    // a fix for a host without a snapshot, or one the copy cannot take: the next state is not known
    if (!complete || [...byHost.keys()].some((n) => !hosts.some((h) => h.name === n))) break
    const again = pass({...ctx, hosts: next}).filter((f) => f.severity !== 'info')
    // a finding of the last round whose own fix leaves it in place: said, never passed over in silence. The same
    // problem may come back quoted with other evidence (the fix added a rule it now quotes): the same rule on the
    // same host with the same title and no command left to give is that one, not a new one hidden behind it
    const fixedKinds = new Set(found.filter((f) => f.fix?.commands.length).map(sameKind))
    const isSame = (x: RuleFinding) => seen.has(sameProblem(x)) || (!x.fix?.ops.length && fixedKinds.has(sameKind(x)))
    const stillProblems = new Set(again.map(sameProblem))
    // (a finding that never had a command, found again as it was, says nothing about another's fix)
    const manual = new Set(all.filter((f) => !f.fix?.commands.length).map(sameProblem))
    const stillKinds = new Set(again.filter((x) => !x.fix?.ops.length && !manual.has(sameProblem(x))).map(sameKind))
    for (let i = 0; i < all.length; i++) {
      const f = all[i]!
      if (!f.fix?.commands.length || !found.includes(f)) continue
      if (stillProblems.has(sameProblem(f)) || stillKinds.has(sameKind(f))) all[i] = {...f, unverified: [...(f.unverified ?? []), INCOMPLETE]}
    }
    const fresh = again.filter((x) => !isSame(x))
    if (fresh.length === 0) break
    const hidden = [...behind]
    found = renderFixes(fresh).map((f) => ({...remapToOriginal(f, ctx.hosts, next), hiddenBehind: hidden}))
    for (const f of found) seen.add(sameProblem(f))
    all.push(...found)
    hosts = next
  }
  return all
}

// ---------------------------------------------------------------------------------------------------------
// Evidence of a later round is read from the fixed copies; the report points at the files as they were given.

interface LineIndex {
  readonly original: readonly string[]
  /** line text -> its 1-based line numbers in the original */
  readonly where: Map<string, number[]>
  readonly fixed: readonly string[]
}

function remapToOriginal(f: Finding, original: readonly HostSnapshot[], fixed: readonly HostSnapshot[]): Finding {
  const cache = new Map<string, LineIndex | null>()
  const index = (host: string, file: string): LineIndex | null => {
    const k = `${host}\u0000${file}`
    let ix = cache.get(k)
    if (ix !== undefined) return ix
    const o = original.find((h) => h.name === host)?.raw.get(file)
    const x = fixed.find((h) => h.name === host)?.raw.get(file)
    if (o === undefined || x === undefined) ix = null
    else {
      const lines = o.split('\n')
      const where = new Map<string, number[]>()
      lines.forEach((l, i) => {
        const list = where.get(l)
        if (list) list.push(i + 1)
        else where.set(l, [i + 1])
      })
      ix = {original: lines, where, fixed: x === o ? lines : x.split('\n')}
    }
    cache.set(k, ix)
    return ix
  }
  /** the original line of a fixed copy's line, or undefined when the fixes wrote it */
  const lineOf = (host: string, file: string, line: number, text?: string): number | undefined => {
    const ix = index(host, file)
    if (!ix) return line
    // one-line files (the JSON of `nft -j`, `ip -j`): the line is the line, unless the evidence is a rule the
    // fixes added (an nft rule quoted with a handle the file given does not have)
    if (ix.original.length <= 2 && ix.fixed.length <= 2) {
      const handle = text !== undefined ? /# handle (\d+)\s*$/.exec(text)?.[1] : undefined
      if (handle && ix.fixed !== ix.original && !new RegExp(`"handle":\\s*${handle}\\b`).test(ix.original.join('\n'))) return undefined
      return line
    }
    const own = ix.fixed[line - 1]
    if (own === undefined) return undefined
    const cands = ix.where.get(own)
    if (!cands) return undefined
    let best = cands[0]!
    for (const c of cands) if (Math.abs(c - line) < Math.abs(best - line)) best = c
    return best
  }
  const evidence = f.evidence.map((e): Evidence => {
    const l = lineOf(e.host ?? f.host, e.file, e.line, e.text)
    return l === undefined ? {...e, afterFixes: true} : {...e, line: l}
  })
  // `file:line` references in the message: the same mapping (a line the fixes wrote is said to be one)
  const message = f.message.replace(/\b([\w.-]+\.(?:txt|json|conf)):(\d+)\b/g, (all, file: string, n: string) => {
    const l = lineOf(f.host, file, Number(n))
    return l === undefined ? `${file} (a line the fixes above write)` : `${file}:${l}`
  })
  return {...f, evidence, message}
}
