// What check prints: findings with evidence and a fix (the JSON contract of ARCHITECTURE.md).

export type Severity = 'error' | 'warning' | 'info'

export const SEVERITY_ORDER: Readonly<Record<Severity, number>> = {info: 0, warning: 1, error: 2}

export interface Evidence {
  readonly file: string
  readonly line: number
  readonly text: string
  /** when the evidence is on another host than the finding's */
  readonly host?: string
  /**
   * the line is one the fix commands of earlier findings write (a finding `hiddenBehind` them): `line` counts
   * in the file as those fixes leave it, not in the file given
   */
  readonly afterFixes?: boolean
}

export interface Fix {
  readonly summary: string
  readonly commands: readonly string[]
}

export interface Finding {
  readonly rule: string
  readonly severity: Severity
  readonly host: string
  readonly title: string
  readonly message: string
  readonly evidence: readonly Evidence[]
  readonly fix?: Fix
  /** what the rule could not verify (missing realserver snapshot, unmodelled match...) */
  readonly unverified?: readonly string[]
  /**
   * found only once the fixes of these earlier findings (rule@host) are applied (src/rules/rounds.ts): a problem
   * the first blockers hide. Its fix commands are written for the hosts as those fixes leave them.
   */
  readonly hiddenBehind?: readonly string[]
}
