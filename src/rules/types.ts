// The rule contract (ESLint/hadolint shape): metadata beside one check over the parsed snapshots.
import type {Finding, Severity} from '../model/finding.js'
import type {HostSnapshot} from '../model/snapshot.js'

export interface RuleMeta {
  /** kebab-case, stable once released; docs/rules/<id>.md documents it */
  readonly id: string
  readonly title: string
  readonly severity: Severity
  readonly description: string
  /** names of the texts the rule comes from (shared/sources, man pages, kernel files) */
  readonly sources: readonly string[]
}

export interface RuleContext {
  /** every host given to check, director and realservers alike */
  readonly hosts: readonly HostSnapshot[]
}

export interface Rule {
  readonly meta: RuleMeta
  check(ctx: RuleContext): Finding[]
}
