// The rule contract (ESLint/hadolint shape): metadata beside one check over the parsed snapshots.
import type {Finding, Severity} from '../model/finding.js'
import type {Endpoint, IpAddr} from '../model/ip.js'
import type {HostSnapshot} from '../model/snapshot.js'
import type {FixOp} from './engine/fix.js'

export interface RuleMeta {
  /** kebab-case, stable once released; docs/rules/<id>.md documents it */
  readonly id: string
  readonly title: string
  /** the severity of the rule's findings unless a finding says otherwise (e.g. an info "could not verify") */
  readonly severity: Severity
  readonly description: string
  /** names of the texts the rule comes from (shared/sources file names, man pages, kernel files) */
  readonly sources: readonly string[]
}

/**
 * A connection the caller cares about (`trace --vip IP:PORT [--client IP]` has one). The rules then also
 * check that this very flow is served: a MARK rule that marks another port is a finding only when the flow
 * asked about does not get the mark. Without flows the rules judge the configuration on its own.
 */
export interface FlowHint {
  readonly vip: Endpoint
  readonly proto: 'tcp' | 'udp'
  readonly client?: IpAddr
  readonly clientPort?: number
}

export interface RuleContext {
  /** every host given to check, director and realservers alike */
  readonly hosts: readonly HostSnapshot[]
  /** the flows asked about (optional; `trace --fix` knows one) */
  readonly flows?: readonly FlowHint[]
}

/**
 * What a rule returns: a finding whose fix is still structured. The engine turns `fixOps` into the exact
 * command lines of `fix.commands` once every finding is known, so that iptables positions stay exact when
 * the fixes of all findings are applied in report order (see engine/fix.ts).
 */
export interface RuleFinding extends Omit<Finding, 'fix'> {
  readonly fix?: {readonly summary: string; readonly ops: readonly FixOp[]}
}

export interface Rule {
  readonly meta: RuleMeta
  check(ctx: RuleContext): RuleFinding[]
}
