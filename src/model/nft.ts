// The typed model of `nft -j list ruleset` (libnftables-json(5)).
// Owned by the nftables work (issue 7); the loader only relies on ruleCount and notModelled.
import type {NotModelled} from './source.js'

export interface NftRuleset {
  readonly file: string
  /** number of rules in the JSON */
  readonly ruleCount: number
  readonly notModelled: readonly NotModelled[]
}
