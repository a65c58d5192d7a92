// Markdown output of `check`, for incident tickets.
import type {CheckReport} from '../services/check.js'

export function renderCheckMarkdown(r: CheckReport): string {
  const out: string[] = [`# lvsdoctor check`, '']
  for (const h of r.hosts) {
    out.push(`## ${h.name} (${h.role})`, '')
    const fs = r.findings.filter((f) => f.host === h.name)
    if (fs.length === 0) out.push('No findings.', '')
    for (const f of fs) {
      out.push(`### ${f.severity}: \`${f.rule}\` ${f.title}`, '', f.message, '')
      if (f.evidence.length) {
        out.push('Evidence:', '', '```')
        for (const e of f.evidence) out.push(`${e.host ? e.host + ':' : ''}${e.file}:${e.line}  ${e.text}`)
        out.push('```', '')
      }
      if (f.unverified?.length) out.push(...f.unverified.map((u) => `- not verified: ${u}`), '')
      if (f.fix) out.push(`Fix: ${f.fix.summary}`, '', '```sh', ...f.fix.commands, '```', '')
    }
    for (const e of r.errors.filter((x) => x.host === h.name)) out.push(`- unreadable: ${e.message}`)
  }
  return out.join('\n') + '\n'
}
