// Fixes as structured operations, and their rendering into exact command lines.
//
// A rule computes positions against the snapshot it read (iptables -I/-R/-D count rules from 1 in a chain).
// When several findings fix the same chain, applying the first shifts the positions of the second; so rules
// emit operations with ORIGINAL positions and `renderFixes` turns every finding's operations into commands
// that are exact when all the fixes of a report are applied in report order, finding after finding
// (that is what `trace --fix` does on copies of the snapshots).
//
// nft rulesets address rules by handle, which does not shift; their fixes are `cmd` operations (seam for the
// nft work: src/model/nft.ts).
import type {Finding} from '../../model/finding.js'
import type {RuleFinding} from '../types.js'

export type IptBinary = 'iptables' | 'ip6tables' | 'iptables-legacy' | 'ip6tables-legacy'

export type FixOp =
  | {
      readonly kind: 'ipt'
      readonly bin: IptBinary
      readonly table: string
      readonly chain: string
      /** I: insert before original rule `pos` (pos > chainLen: append); R: replace; D: delete original rule `pos` */
      readonly op: 'I' | 'R' | 'D'
      readonly pos: number
      /** number of rules the chain has in the snapshot */
      readonly chainLen: number
      /** the rule specification (matches and target), in iptables-save syntax */
      readonly spec?: string
    }
  | {readonly kind: 'sysctl'; readonly key: string; readonly value: string}
  /** any other exact command: ip route add/replace, ipvsadm -e, nft ... */
  | {readonly kind: 'cmd'; readonly text: string}

/**
 * Turns every finding's fix operations into command lines, sequencing iptables positions in report order.
 *
 * No command is given twice in one report: an operation an earlier finding's fix already holds (the same
 * insert, replacement or deletion at the same original position, the same sysctl, the same command) is not
 * rendered again, and is not applied to the chain twice, so the positions of the later commands stay exact.
 * The later finding's summary says whose fix it shares ("same fix as dr-stateful-filter above").
 */
export function renderFixes(findings: readonly RuleFinding[]): Finding[] {
  const chains = new Map<string, (number | null)[]>()
  /** every operation rendered so far, with the rule of the finding that gave it */
  const given = new Map<string, string>()
  const out: Finding[] = []
  for (const f of findings) {
    const {fix, ...rest} = f
    if (!fix) {
      out.push(rest as Finding)
      continue
    }
    const commands: string[] = []
    const shared: {op: FixOp; by: string}[] = []
    const mine: string[] = []
    for (const op of fix.ops) {
      const k = opKey(f.host, op)
      const by = given.get(k)
      if (by !== undefined) {
        // within one finding a repeated operation is simply dropped; across findings it is referenced
        if (by !== SELF && !shared.some((x) => opKey(f.host, x.op) === k)) shared.push({op, by})
        continue
      }
      given.set(k, SELF)
      mine.push(k)
      const c = renderOp(f.host, op, chains)
      if (c !== undefined && !commands.includes(c)) commands.push(c)
    }
    for (const k of mine) given.set(k, f.rule)
    out.push({...rest, fix: {summary: shared.length ? withReference(fix.summary, shared, commands.length === 0) : fix.summary, commands}} as Finding)
  }
  return out
}

/** marks the operations of the finding being rendered (a repeat inside one fix is no reference) */
const SELF = '\u0000self'

/** What identifies an operation: the same key is the same change to the host. */
function opKey(host: string, op: FixOp): string {
  if (op.kind === 'sysctl') return `${host}\u0000sysctl\u0000${op.key}=${op.value}`
  if (op.kind === 'cmd') return `${host}\u0000cmd\u0000${op.text}`
  const pos = op.op === 'I' && op.pos > op.chainLen ? 'end' : String(op.pos)
  return `${host}\u0000${op.bin}\u0000${op.table}\u0000${op.chain}\u0000${op.op}\u0000${pos}\u0000${op.spec ?? ''}`
}

function describeShared(op: FixOp): string {
  if (op.kind === 'sysctl') return `${op.key}=${op.value}`
  if (op.kind === 'cmd') return 'a command'
  const what = op.op === 'I' ? 'the new rule in' : op.op === 'R' ? 'the replaced rule' : 'the deleted rule'
  return op.op === 'I' ? `${what} ${op.table} ${op.chain}` : `${what} ${op.pos} of ${op.table} ${op.chain}`
}

function withReference(summary: string, shared: readonly {op: FixOp; by: string}[], all: boolean): string {
  const rules = [...new Set(shared.map((x) => x.by))]
  const names = rules.length === 1 ? rules[0]! : `${rules.slice(0, -1).join(', ')} and ${rules.at(-1)}`
  if (all) return `${summary} — same fix as ${names} above, nothing more to run`
  const what = [...new Set(shared.map((x) => describeShared(x.op)))].join(', ')
  return `${summary} — ${what}: same fix as ${names} above, not repeated here`
}

function renderOp(host: string, op: FixOp, chains: Map<string, (number | null)[]>): string | undefined {
  if (op.kind === 'sysctl') return `sysctl -w ${op.key}=${op.value}`
  if (op.kind === 'cmd') return op.text
  const key = `${host}\u0000${op.bin}\u0000${op.table}\u0000${op.chain}`
  let cur = chains.get(key)
  if (!cur) {
    cur = Array.from({length: op.chainLen}, (_, i) => i + 1)
    chains.set(key, cur)
  }
  const head = `${op.bin} -t ${op.table}`
  const spec = op.spec ? ` ${op.spec}` : ''
  if (op.op === 'I') {
    // before the first surviving original rule at or after pos; none: append
    const i = cur.findIndex((n) => n !== null && n >= op.pos)
    if (i < 0) {
      cur.push(null)
      return `${head} -A ${op.chain}${spec}`
    }
    cur.splice(i, 0, null)
    return `${head} -I ${op.chain} ${i + 1}${spec}`
  }
  const i = cur.indexOf(op.pos)
  if (i < 0) return undefined // removed by an earlier fix: nothing left to change
  if (op.op === 'D') {
    cur.splice(i, 1)
    return `${head} -D ${op.chain} ${i + 1}`
  }
  return `${head} -R ${op.chain} ${i + 1}${spec}`
}

// ---- iptables rule text ---------------------------------------------------------------------------------

/** Splits an iptables-save line into tokens; quoted strings (comments) stay one token with their quotes. */
export function tokenize(line: string): string[] {
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++
    if (i >= line.length) break
    let tok = ''
    while (i < line.length && !/\s/.test(line[i]!)) {
      if (line[i] === '"') {
        tok += '"'
        i++
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) tok += line[i++]
          tok += line[i++]
        }
        if (i < line.length) tok += line[i++]
      } else tok += line[i++]
    }
    out.push(tok)
  }
  return out
}

/** The specification of a saved rule: its tokens without `-A CHAIN`. */
export function specTokens(ruleText: string): string[] {
  const t = tokenize(ruleText)
  if ((t[0] === '-A' || t[0] === '--append') && t.length >= 2) return t.slice(2)
  return t
}

export function joinSpec(tokens: readonly string[]): string {
  return tokens.join(' ')
}

/** Options of a match module, as iptables-save prints them after `-m NAME` (up to the next `-m`/`-j`/`-g`...). */
function moduleSpan(tokens: readonly string[], at: number): number {
  let j = at + 2
  while (j < tokens.length) {
    const t = tokens[j]!
    if (t === '-m' || t === '--match' || t === '-j' || t === '--jump' || t === '-g' || t === '--goto') break
    if (t === '!' && j + 1 < tokens.length && !tokens[j + 1]!.startsWith('--')) break
    if (/^-[a-zA-Z]$/.test(t)) break
    j++
  }
  return j
}

/**
 * The rule without its connection-state and SYN-only conditions (`-m state --state`, `-m conntrack --ctstate`,
 * `--syn`, `--tcp-flags`): the stateless form LVS-HOWTO 29.14/29.16 recommend. Other conntrack options are kept.
 */
export function statelessSpec(tokens: readonly string[]): string[] {
  const out: string[] = []
  let i = 0
  while (i < tokens.length) {
    const t = tokens[i]!
    if ((t === '-m' || t === '--match') && (tokens[i + 1] === 'state' || tokens[i + 1] === 'conntrack')) {
      const end = moduleSpan(tokens, i)
      const opts = tokens.slice(i + 2, end)
      const kept: string[] = []
      for (let k = 0; k < opts.length; k++) {
        const o = opts[k]!
        if (o === '!' && (opts[k + 1] === '--state' || opts[k + 1] === '--ctstate')) {
          k += 2
          continue
        }
        if (o === '--state' || o === '--ctstate') {
          k++
          continue
        }
        kept.push(o)
      }
      if (kept.length > 0) out.push(t, tokens[i + 1]!, ...kept)
      i = end
      continue
    }
    if (t === '!' && (tokens[i + 1] === '--syn' || tokens[i + 1] === '--tcp-flags')) {
      i += tokens[i + 1] === '--syn' ? 2 : 4
      continue
    }
    if (t === '--syn') {
      i++
      continue
    }
    if (t === '--tcp-flags') {
      i += 3
      continue
    }
    out.push(t)
    i++
  }
  // a `-m tcp` left without options (it only carried `--syn`) is dropped
  const boundary = (tok: string | undefined) => tok === undefined || /^(-m|-j|-g|--match|--jump|--goto)$/.test(tok)
  const cleaned: string[] = []
  for (let k = 0; k < out.length; k++) {
    if ((out[k] === '-m' || out[k] === '--match') && out[k + 1] === 'tcp' && boundary(out[k + 2])) {
      k++
      continue
    }
    cleaned.push(out[k]!)
  }
  return cleaned
}

/** Replaces the value of an option (`--probability 0.5`); undefined when the option is absent. */
export function withOption(tokens: readonly string[], option: string, value: string): string[] | undefined {
  const i = tokens.indexOf(option)
  if (i < 0 || i + 1 >= tokens.length) return undefined
  const out = [...tokens]
  out[i + 1] = value
  return out
}

/** Adds match tokens just before the target (`-j`/`-g`), or at the end. */
export function withMatch(tokens: readonly string[], extra: readonly string[]): string[] {
  const j = tokens.findIndex((t) => t === '-j' || t === '--jump' || t === '-g' || t === '--goto')
  if (j < 0) return [...tokens, ...extra]
  return [...tokens.slice(0, j), ...extra, ...tokens.slice(j)]
}

/** iptables prints probabilities with 11 decimals (libxt_statistic.c). */
export function formatProbability(p: number): string {
  return Math.min(1, Math.max(0, p)).toFixed(11)
}
