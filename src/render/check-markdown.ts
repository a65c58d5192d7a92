// Markdown output of `check`, for incident tickets: a summary table, then per host the findings by severity
// with their evidence (file:line, host-qualified when it is another host's) and the fix commands.
import type {Severity} from '../model/finding.js'
import type {CheckReport} from '../services/check.js'
import {evidenceWhere, hiddenBehindText} from './finding-text.js'

/** Evidence lines printed per finding, as in the text report; the rest are counted (--json has them all). */
const MAX_EVIDENCE = 12

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

export function renderCheckMarkdown(r: CheckReport): string {
  const by = (s: Severity) => r.findings.filter((f) => f.severity === s).length
  const notModelled = r.hosts.reduce((n, h) => n + h.notModelled.length, 0)
  const out: string[] = [`# lvsdoctor check`, '']
  out.push(
    r.findings.length === 0
      ? `No problems found on ${r.hosts.map((h) => `\`${h.name}\``).join(', ')}${notModelled ? ` in what was modelled; ${notModelled} item(s) not modelled were not checked` : ''}.`
      : `${r.findings.length} finding(s): ${by('error')} error(s), ${by('warning')} warning(s), ${by('info')} info, on ${r.hosts.length} host(s) (lvsdoctor ${r.version}).`,
    '',
  )
  if (r.errors.length) out.push(`**${r.errors.length} file(s) could not be read; what they hold was not checked:**`, '', ...r.errors.map((e) => `- ${e.message}`), '')
  if (r.findings.length) {
    out.push('| host | severity | rule | title |', '| --- | --- | --- | --- |')
    for (const f of r.findings) out.push(`| ${cell(f.host)} | ${f.severity} | \`${f.rule}\` | ${cell(f.title)} |`)
    out.push('')
  }
  for (const h of r.hosts) {
    out.push(`## ${h.name} (${h.role}${h.roleInferred ? ', inferred' : ''})`, '')
    for (const e of r.errors.filter((x) => x.host === h.name)) out.push(`- unreadable: ${e.message}`)
    const fs = r.findings.filter((f) => f.host === h.name)
    if (fs.length === 0) out.push('No findings.', '')
    // report order (severity first, then what the fixes above reveal): fix commands are exact in that order
    {
      for (const f of fs) {
        out.push(`### ${f.severity}: \`${f.rule}\` ${f.title}`, '')
        if (f.hiddenBehind?.length) out.push(`Hidden behind: ${hiddenBehindText(f.hiddenBehind)}.`, '')
        out.push(f.message, '')
        if (f.evidence.length) {
          out.push('Evidence:', '', '```')
          for (const e of f.evidence.slice(0, MAX_EVIDENCE)) out.push(`${evidenceWhere(e)}  ${e.text}`)
          if (f.evidence.length > MAX_EVIDENCE) out.push(`... and ${f.evidence.length - MAX_EVIDENCE} more evidence line(s) (see --json)`)
          out.push('```', '')
        }
        if (f.unverified?.length) out.push(...f.unverified.map((u) => `- not verified: ${u}`), '')
        if (f.fix) {
          out.push(`Fix: ${f.fix.summary}`, '')
          if (f.fix.commands.length) out.push('```sh', ...f.fix.commands, '```', '')
        }
        out.push(`See \`lvsdoctor explain ${f.rule}\`.`, '')
      }
    }
    if (h.notModelled.length) out.push(`<details><summary>${h.notModelled.length} item(s) not modelled</summary>`, '', ...h.notModelled.map((n) => `- ${n.file}:${n.line} ${cell(n.what)}`), '', '</details>', '')
  }
  return out.join('\n') + '\n'
}
