// Human output of `capture`: what was read, then each symptom with its flow, packets and likely rules.
import chalk from 'chalk'
import type {Severity} from '../model/finding.js'
import type {CaptureReport} from '../services/capture.js'

const SEV: Record<Severity, (s: string) => string> = {
  error: (s) => chalk.red.bold(s),
  warning: (s) => chalk.yellow.bold(s),
  info: (s) => chalk.cyan(s),
}

export const LINK_NAMES: Readonly<Record<number, string>> = {
  0: 'BSD loopback', 1: 'Ethernet', 12: 'raw IP', 14: 'raw IP', 101: 'raw IP', 108: 'OpenBSD loopback',
  113: 'Linux cooked (SLL)', 127: '802.11 radiotap', 228: 'IPv4', 229: 'IPv6', 276: 'Linux cooked v2 (SLL2)',
}

export function linkName(t: number): string {
  return LINK_NAMES[t] ?? `link type ${t}`
}

/** `IPIP 10.0.0.1 > 10.0.0.5`, `GUE 10.0.0.1 > 10.0.0.5:6080` */
export function tunnelText(t: {readonly type: string; readonly from: string; readonly to: string; readonly port?: number}): string {
  return `${t.type.toUpperCase()} ${t.from} > ${t.to}${t.port ? `:${t.port}` : ''}`
}

export function renderCaptureText(r: CaptureReport): string {
  const out: string[] = []
  const c = r.capture
  const what = c.source === 'live' ? `${c.iface} (live, ${c.stoppedBy === 'signal' ? 'stopped by Ctrl-C' : `stopped by ${c.stoppedBy}`}${c.written ? `, written to ${c.written}` : ''})` : c.file
  const span = r.firstTime !== undefined && r.lastTime !== undefined ? `, ${(r.lastTime - r.firstTime).toFixed(1)} s` : ''
  const links = [...new Set(c.interfaces.map((i) => linkName(i.linkType)))].join(', ')
  out.push(`${chalk.bold(what)}: ${c.format}, ${r.packets} packet${r.packets === 1 ? '' : 's'} (${r.ip} IP${r.notIp ? `, ${r.notIp} other` : ''}), ${r.flows} flow${r.flows === 1 ? '' : 's'}${span}${links ? ` [${links}]` : ''}`)
  if (c.source === 'live' && c.filter) out.push(chalk.dim(`filter: ${c.filter}`))
  if (c.source === 'live' && c.drops > 0) out.push(chalk.yellow(`libpcap dropped ${c.drops} packets`))
  if (r.truncated) out.push(chalk.yellow(`warning: the file ends inside packet ${r.truncated.packet ?? '?'} at byte ${r.truncated.offset}: expected ${r.truncated.expected}, found ${r.truncated.found}; analysed what came before`))
  if (r.skipped.count) {
    const reasons = Object.entries(r.skipped.reasons).map(([k, v]) => `${v} × ${k}`).join('; ')
    out.push(chalk.yellow(`skipped ${r.skipped.count} packet${r.skipped.count === 1 ? '' : 's'}: ${reasons}`))
  }
  out.push('')
  const t0 = r.firstTime ?? 0
  for (const s of r.symptoms) {
    out.push(`${SEV[s.severity](s.severity.toUpperCase())} ${chalk.bold(s.kind)}: ${s.title}`)
    out.push(`  ${s.message}`)
    out.push(`  ${chalk.dim('flow')} ${s.flow.proto} ${s.flow.client} > ${s.flow.server}`)
    if (s.tunnel) out.push(`  ${chalk.dim('tunnel')} ${tunnelText(s.tunnel)}`)
    for (const p of s.packets) out.push(`  ${chalk.dim(`#${p.n}`.padEnd(7))} ${chalk.dim(`+${(p.time - t0).toFixed(6)}s`)}  ${p.what}`)
    if (s.rules.length) out.push(`  ${chalk.green('likely rules:')} ${s.rules.join(', ')} ${chalk.dim(`(lvsdoctor explain ${s.rules[0]})`)}`)
    out.push('')
  }
  const errors = r.symptoms.filter((s) => s.severity === 'error').length
  out.push(r.symptoms.length === 0 ? chalk.green('no symptoms') : `${r.symptoms.length} symptom${r.symptoms.length === 1 ? '' : 's'} (${errors} error${errors === 1 ? '' : 's'})`)
  return out.join('\n') + '\n'
}
