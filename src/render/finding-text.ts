// Wording shared by the text and Markdown reports of check.
import type {Evidence} from '../model/finding.js'

/** Where an evidence line is: host-qualified when on another host; a line the earlier fixes write says so. */
export function evidenceWhere(e: Evidence): string {
  return `${e.host ? e.host + ':' : ''}${e.file}:${e.line}${e.afterFixes ? ' (after the fixes above)' : ''}`
}

/** A finding that shows only once earlier findings' fixes are applied (rounds.ts). */
export function hiddenBehindText(behind: readonly string[]): string {
  const list = behind.map((b) => b.replace('@', ' on ')).join(', ')
  return `shows once the fixes of ${list} (above) are applied; apply those first, then these commands`
}
