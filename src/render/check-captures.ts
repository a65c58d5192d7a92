// The captures sections of `check`'s text and markdown output (services/check-capture.ts analyses them).
// Apart from check-capture.ts so that `check --json` does not load chalk.
import chalk from 'chalk'
import type {Severity} from '../model/finding.js'
import type {CheckCaptureReport, SymptomReport} from '../services/check-capture.js'

const LABEL: Record<Severity, (s: string) => string> = {
  error: (s) => chalk.red.bold(s),
  warning: (s) => chalk.yellow.bold(s),
  info: (s) => chalk.cyan(s),
}

function explains(s: SymptomReport): string {
  return s.findings.map((f) => `${f.rule} on ${f.host}`).join(', ')
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? '' : 's'}`
}

/** The captures section of the text output ('' when no capture was analysed). */
export function renderCapturesText(r: CheckCaptureReport): string {
  if (!r.captures || r.captures.length === 0) return ''
  const out: string[] = ['Captures:']
  for (const c of r.captures) {
    out.push(`  ${chalk.bold(`${c.host}:${c.file}`)}  ${c.format}, ${plural(c.packets, 'packet')}, ${plural(c.flows, 'flow')}, ${plural(c.symptoms, 'symptom')}` +
      (c.tunnelled ? `, ${c.tunnelled} unwrapped from tunnels` : '') +
      (c.truncated ? ` (the file ends inside packet ${c.truncated.packet ?? '?'}; analysed what came before)` : ''))
    const partial = Object.entries(c.partial ?? {})
    if (partial.length) out.push(`    ${chalk.yellow(`decoded in part: ${partial.map(([k, v]) => `${v} × ${k}`).join('; ')}`)}`)
    for (const s of (r.symptoms ?? []).filter((x) => x.host === c.host && x.file === c.file)) {
      out.push(`    ${LABEL[s.severity](s.severity.toUpperCase())} ${chalk.bold(s.kind)}: ${s.title}`)
      if (s.findings.length > 0) {
        out.push(`      evidence of ${explains(s)} (above)`)
        continue
      }
      out.push(`      ${chalk.dim('no finding explains it')}${s.rules.length ? `; likely rules: ${s.rules.join(', ')}` : ''}`)
      if (s.tunnel) out.push(`      ${chalk.dim('tunnel')} ${s.tunnel.type.toUpperCase()} ${s.tunnel.from} > ${s.tunnel.to}${s.tunnel.port ? `:${s.tunnel.port}` : ''}`)
      for (const l of s.message.split('\n')) out.push(`      ${l}`)
      for (const p of s.packets) out.push(`      ${chalk.dim(`${c.file}:${p.n}`)}  ${p.what}`)
    }
  }
  const lone = (r.symptoms ?? []).filter((s) => s.findings.length === 0).length
  if (lone > 0) out.push(`${plural(lone, 'symptom')} in the captures that no finding explains (see above).`)
  return out.join('\n') + '\n'
}

/** The captures section of the markdown output ('' when no capture was analysed). */
export function renderCapturesMarkdown(r: CheckCaptureReport): string {
  if (!r.captures || r.captures.length === 0) return ''
  const out: string[] = ['## Captures', '']
  for (const c of r.captures) {
    out.push(`### \`${c.host}:${c.file}\``, '', `${c.format}, ${plural(c.packets, 'packet')}, ${plural(c.flows, 'flow')}, ${plural(c.symptoms, 'symptom')}` +
      (c.truncated ? ` (the file ends inside packet ${c.truncated.packet ?? '?'}; analysed what came before)` : '') + '.', '')
    for (const s of (r.symptoms ?? []).filter((x) => x.host === c.host && x.file === c.file)) {
      out.push(`- ${s.severity}: \`${s.kind}\` ${s.title}` + (s.findings.length ? ` (evidence of ${explains(s)})` : ` — no finding explains it${s.rules.length ? `; likely rules: ${s.rules.map((x) => `\`${x}\``).join(', ')}` : ''}`))
      if (s.findings.length === 0) {
        out.push('', `  ${s.message}`, '', '  ```')
        for (const p of s.packets) out.push(`  ${c.file}:${p.n}  ${p.what}`)
        out.push('  ```')
      }
    }
    out.push('')
  }
  return out.join('\n') + '\n'
}
