// STUB: replaced by the nftables parser (issue 7).
import type {NftRuleset} from '../../model/nft.js'

export function parseNftJson(_text: string, file: string): NftRuleset {
  return {file, ruleCount: 0, notModelled: []}
}
