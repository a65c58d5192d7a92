// The kernel as the judge for the nftables scenarios: harness.ts with the namespace prefix `ldm-` (so these
// never collide with the iptables scenarios' runs) and `nft` among the tools it needs; rulesets load with `nft -f`.
import * as base from './harness.js'
import type {KernelRun, Scenario} from './harness.js'

export {CLIENT_PORT, cleanup, type KernelRun, type Scenario} from './harness.js'

export function cannotRun(): string | undefined {
  return base.cannotRun(['ip', 'nft', 'python3', 'sysctl'])
}

export function runScenario(s: Scenario, o: {keep?: boolean} = {}): Promise<KernelRun> {
  return base.runScenario({...s, prefix: 'ldm'}, o)
}

/** A setup command that loads an nft ruleset with `nft -f` (the heredoc keeps it verbatim). */
export function nftLoad(ruleset: string): string {
  return `nft -f - <<'LDM_EOF'\n${ruleset.trim()}\nLDM_EOF`
}
