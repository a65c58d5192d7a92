// Human output of `check`: hosts, then findings grouped by host and severity, evidence quoted as file:line.
import chalk from 'chalk'
import type {Finding, Severity} from '../model/finding.js'
import {evidenceWhere, hiddenBehindText} from './finding-text.js'
import type {CheckReport} from '../services/check.js'

const SEV_LABEL: Record<Severity, (s: string) => string> = {
  error: (s) => chalk.red.bold(s),
  warning: (s) => chalk.yellow.bold(s),
  info: (s) => chalk.cyan(s),
}

function countsLine(c: CheckReport['hosts'][number]['counts']): string {
  const parts: string[] = []
  if (c.iptablesRules) parts.push(`${c.iptablesRules} iptables rules`)
  if (c.ip6tablesRules) parts.push(`${c.ip6tablesRules} ip6tables rules`)
  if (c.nftRules) parts.push(`${c.nftRules} nft rules`)
  if (c.ipvsServices) parts.push(`${c.ipvsServices} IPVS services / ${c.ipvsDestinations} destinations`)
  if (c.routes) parts.push(`${c.routes} routes`)
  if (c.addresses) parts.push(`${c.addresses} addresses`)
  return parts.length ? parts.join(', ') : 'nothing parsed'
}

/** Evidence lines printed per finding; the rest are counted (--json has them all). */
export const MAX_EVIDENCE = 12

export function renderFinding(f: Finding, indent = '  '): string[] {
  const lines = [`${indent}${SEV_LABEL[f.severity](f.severity.toUpperCase())} ${chalk.bold(f.rule)}: ${f.title}`]
  if (f.hiddenBehind?.length) lines.push(`${indent}  ${chalk.yellow('hidden behind:')} ${hiddenBehindText(f.hiddenBehind)}`)
  for (const l of f.message.split('\n')) lines.push(`${indent}  ${l}`)
  for (const e of f.evidence.slice(0, MAX_EVIDENCE)) {
    const where = evidenceWhere(e)
    lines.push(`${indent}  ${chalk.dim(where)}  ${e.text}`)
  }
  if (f.evidence.length > MAX_EVIDENCE) lines.push(`${indent}  ${chalk.dim(`... and ${f.evidence.length - MAX_EVIDENCE} more evidence line(s) (see --json)`)}`)
  if (f.unverified?.length) for (const u of f.unverified) lines.push(`${indent}  ${chalk.dim('not verified:')} ${u}`)
  if (f.fix) {
    lines.push(`${indent}  ${chalk.green('fix:')} ${f.fix.summary}`)
    for (const c of f.fix.commands) lines.push(`${indent}    ${c}`)
  }
  return lines
}

export function renderCheckText(r: CheckReport): string {
  const out: string[] = []
  for (const h of r.hosts) {
    const role = h.roleInferred ? `${h.role}, inferred` : h.role
    out.push(`${chalk.bold(h.name)} (${role}) ${chalk.dim(h.source)}: ${countsLine(h.counts)}`)
    const nm = h.notModelled
    if (nm.length) {
      out.push(`  ${nm.length} item(s) not modelled (kept, not interpreted):`)
      for (const n of nm.slice(0, 10)) out.push(`    ${chalk.dim(`${n.file}:${n.line}`)} ${n.what}`)
      if (nm.length > 10) out.push(`    ... and ${nm.length - 10} more (see --json)`)
    }
    for (const e of r.errors.filter((x) => x.host === h.name)) out.push(`  ${chalk.red('unreadable:')} ${e.message}`)
    const fs = r.findings.filter((f) => f.host === h.name)
    // report order (severity first, then what the fixes above reveal): fix commands are exact in that order
    for (const f of fs) out.push(...renderFinding(f))
    out.push('')
  }
  const by = (s: Severity) => r.findings.filter((f) => f.severity === s).length
  const notModelled = r.hosts.reduce((n, h) => n + h.notModelled.length, 0)
  out.push(
    r.findings.length === 0
      ? r.errors.length === 0
        ? notModelled === 0
          ? chalk.green('No problems found.')
          : chalk.green(`No problems found in what was modelled`) + `; ${notModelled} item(s) listed above as not modelled were not checked.`
        : chalk.yellow(`No problems found in what could be read, but ${r.errors.length} file(s) could not be read (above): what they hold was not checked.`)
      : `${r.findings.length} finding(s): ${by('error')} error(s), ${by('warning')} warning(s), ${by('info')} info. \`lvsdoctor explain <rule>\` tells why and what to do.` +
          (r.errors.length ? ` ${r.errors.length} file(s) could not be read (above): what they hold was not checked.` : ''),
  )
  return out.join('\n') + '\n'
}
