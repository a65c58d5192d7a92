// `rules` and `explain`: the catalogue and each rule's documentation (docs/rules/<id>.md).
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {Severity} from '../model/finding.js'
import {UsageError} from '../model/source.js'
import {RULES} from '../rules/index.js'
import type {Rule} from '../rules/types.js'

export interface RuleInfo {
  id: string
  title: string
  severity: Severity
  description: string
  sources: string[]
  /** docs/rules/<id>.md, relative to the package */
  doc: string
}

/** The package root: two levels above this file, in src/services and in dist/services alike. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export function ruleDocPath(id: string, root = PACKAGE_ROOT): string {
  return join(root, 'docs', 'rules', `${id}.md`)
}

export function listRules(rules: readonly Rule[] = RULES): RuleInfo[] {
  return rules.map((r) => ({
    id: r.meta.id,
    title: r.meta.title,
    severity: r.meta.severity,
    description: r.meta.description,
    sources: [...r.meta.sources],
    doc: `docs/rules/${r.meta.id}.md`,
  }))
}

export function renderRulesText(list: readonly RuleInfo[]): string {
  const w = Math.max(...list.map((r) => r.id.length))
  const lines = list.map((r) => `${r.id.padEnd(w)}  ${r.severity.padEnd(7)}  ${r.title}`)
  return `${lines.join('\n')}\n\n${list.length} rules. \`lvsdoctor explain <id>\` prints a rule's documentation.\n`
}

/** The documentation of a rule; an unknown id is a usage error (exit 2) that lists the known ones. */
export function explainRule(id: string, rules: readonly Rule[] = RULES, root = PACKAGE_ROOT): string {
  const rule = rules.find((r) => r.meta.id === id)
  if (!rule) throw new UsageError(`no rule "${id}". Rules: ${rules.map((r) => r.meta.id).join(', ')}`)
  const path = ruleDocPath(id, root)
  if (!existsSync(path)) throw new UsageError(`rule ${id} has no documentation at ${path} (the package is incomplete)`)
  return readFileSync(path, 'utf8')
}
