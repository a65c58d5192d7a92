// Which rule took a packet out of connection tracking (dnat-untracked, nat-reply-bypasses-director).
import type {IptRule} from '../../model/iptables.js'
import type {HookResult} from './firewall.js'

/** The rule that took the packet out of tracking: the last NOTRACK/CT --notrack (nft notrack) the raw run of PREROUTING passed. */
export function notrackOf(pre: HookResult | undefined): IptRule | undefined {
  if (!pre?.notrack) return undefined
  let notrack: IptRule | undefined
  for (const run of pre.runs) {
    if (run.table !== 'raw') continue
    for (const x of run.result.trail) if (x.target?.kind === 'NOTRACK' || (x.target?.kind === 'CT' && x.target.notrack)) notrack = x
  }
  return notrack
}
