// The human output of `trace`: a per-packet timeline that stops at the first failure and highlights it,
// then a sequence diagram of the packets between the client, the director and the realservers.
import chalk from 'chalk'
import type {PacketTrace, TraceResult} from '../services/trace.js'

const yes = (b: boolean) => (b ? chalk.green('yes') : chalk.red('no'))

export function renderTraceText(r: TraceResult, title = 'trace'): string {
  const out: string[] = []
  out.push(chalk.bold(`${title}: ${r.flow.proto} ${r.flow.client} -> ${r.flow.service}`))
  for (const p of r.packets) out.push(...renderPacket(p, r))
  out.push('')
  out.push(...renderDiagram(r))
  out.push('')
  out.push(`connected: ${yes(r.connection.connected)}   reply: ${yes(r.connection.reply)}   closed: ${yes(r.connection.closed)}`)
  if (r.firstFailure) {
    const f = r.firstFailure
    const where = f.rule ? ` (${f.rule.file}:${f.rule.line})` : ''
    out.push(chalk.red.bold(`first failure: packet ${f.packet} on ${f.host} at ${f.hook}${f.chain ? ` ${f.chain}` : ''}${where}`))
    out.push(chalk.red(`  ${f.reason}`))
  }
  if (r.assumptions.length) {
    out.push(chalk.dim('assumptions:'))
    for (const a of r.assumptions) out.push(chalk.dim(`  - ${a}`))
  }
  return out.join('\n') + '\n'
}

function renderPacket(p: PacketTrace, r: TraceResult): string[] {
  const out: string[] = []
  const mark = p.delivered ? chalk.green('ok') : chalk.red.bold('FAILED')
  out.push('')
  out.push(chalk.bold(`#${p.n} ${p.label} (from the ${p.from})  ${mark}`))
  const where = (s: (typeof p.steps)[number]) => (s.table && s.chain ? `${s.table}/${s.chain}` : s.table || s.chain)
  const rule = (s: (typeof p.steps)[number]) => (s.rule ? `${s.rule.file}:${s.rule.line}` : '')
  const w = (f: (s: (typeof p.steps)[number]) => string, min: number) => Math.max(min, ...p.steps.map((s) => f(s).length))
  const hostW = w((s) => s.host, 4)
  const whereW = w(where, 14)
  const ruleW = w(rule, 10)
  const verdictW = w((s) => s.verdict, 8)
  for (const s of p.steps) {
    const line = `  ${s.host.padEnd(hostW)}  ${s.hook.padEnd(11)} ${where(s).padEnd(whereW)} ${rule(s).padEnd(ruleW)} ${s.verdict.padEnd(verdictW)} ${s.ct.padEnd(11)} ${s.before ? `${s.before} => ` : ''}${s.packet}`
    out.push(s.failed ? chalk.red.bold(line) : line)
    if (s.note && (s.failed || s.table === 'conntrack' || s.table === 'ipvs' || s.hook === 'ROUTING' || s.note.startsWith('binding') || s.note.includes('--match-set'))) {
      out.push(chalk.dim(`  ${' '.repeat(hostW)}  ${s.note}`))
    }
  }
  if (!p.delivered && p.problem && !p.steps.at(-1)?.failed) out.push(chalk.red.bold(`  => ${p.problem}`))
  void r
  return out
}

/** A sequence diagram: one column per participant, one arrow per hop. */
export function renderDiagram(r: TraceResult): string[] {
  // the client's own host (when it is one of the snapshots) stands in the client's column
  const clientHost = r.clientHost
  const used = new Set(r.packets.flatMap((p) => p.hops.flatMap((h) => [h.from, h.to])))
  const cols = r.hosts.filter((c) => c !== 'client' || !clientHost || used.has('client'))
  const label = (c: string) => (c === clientHost ? `${c} (client)` : c)
  const w = Math.max(14, ...cols.map((c) => label(c).length + 4))
  const center = (i: number) => i * w + Math.floor(w / 2)
  const width = cols.length * w
  const out: string[] = []
  out.push(cols.map((c) => label(c).padStart(Math.floor((w + label(c).length) / 2)).padEnd(w)).join('').trimEnd())
  const lifeline = () => {
    const a = Array<string>(width).fill(' ')
    for (let i = 0; i < cols.length; i++) a[center(i)] = '|'
    return a
  }
  for (const p of r.packets) {
    for (const h of p.hops) {
      const from = cols.indexOf(h.from)
      const to = cols.indexOf(h.to)
      if (from < 0 || to < 0 || from === to) continue
      const a = lifeline()
      const lo = Math.min(center(from), center(to))
      const hi = Math.max(center(from), center(to))
      for (let x = lo + 1; x < hi; x++) a[x] = '-'
      if (to > from) a[hi - 1] = '>'
      else a[lo + 1] = '<'
      const label = ` ${p.label} `
      const start = lo + Math.max(2, Math.floor((hi - lo - label.length) / 2))
      for (let k = 0; k < label.length && start + k < hi - 1; k++) a[start + k] = label[k]!
      out.push(a.join('').trimEnd())
    }
    if (!p.delivered) {
      const a = lifeline()
      const lastHost = p.stoppedAt ?? p.steps.at(-1)?.host ?? clientHost ?? 'client'
      const i = Math.max(0, cols.indexOf(lastHost))
      const msg = `X ${p.label} stops here`
      for (let k = 0; k < msg.length && center(i) + k < width + msg.length; k++) a[center(i) + k] = msg[k]!
      out.push(chalk.red.bold(a.join('').trimEnd()))
    }
  }
  return out
}
