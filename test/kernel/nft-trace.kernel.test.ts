// Differential test for nftables (issue 7): for each scenario the real kernel runs a TCP exchange through nft
// rulesets, then `trace` over the snapshots of every namespace must predict the same connection result; and for
// the failing ones, check's nft fix commands run in the namespaces must give what `trace --fix` predicts
// (differential.ts).
import {expect} from 'vitest'
import {describeKernelAgreement} from './differential.js'
import {cannotRun, runScenario} from './nft-harness.js'
import {NFT_SCENARIOS} from './nft-scenarios.js'

describeKernelAgreement({
  scenarios: NFT_SCENARIOS,
  cannotRun,
  runScenario,
  kind: 'nft',
  flowToCheck: true,
  checkTrace: (hosts, text) => {
    // the director's ruleset really is nft, and trace replays it
    expect(hosts.find((h) => h.name === 'd')!.nft?.ruleCount ?? 0).toBeGreaterThan(0)
    expect(text).not.toMatch(/nft-ruleset\.json is not replayed/)
  },
})
