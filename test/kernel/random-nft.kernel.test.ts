// The kernel judges trace's nftables engine on random native nft rulesets (random-nft-scenarios.ts); see
// random-agreement.ts for what is asserted (check's fix commands are nft commands for nft hosts). The seed is
// printed. LVSDOCTOR_KERNEL_NFT_SEED=N (or LVSDOCTOR_KERNEL_SEED) runs another set, LVSDOCTOR_KERNEL_NFT_RANDOM=K
// another count, LVSDOCTOR_KERNEL_NFT_PREFIX another namespace/interface prefix (default lnr);
// LVSDOCTOR_KERNEL_GAP=FILE appends one JSON line per failing scenario, LVSDOCTOR_KERNEL_NFT_KEEP=DIR keeps every
// scenario's record and snapshots,
// LVSDOCTOR_KERNEL_EXTRA=0 leaves out the third stream's mark routing.
import {expect} from 'vitest'
import {describeRandomAgreement} from './random-agreement.js'
import {randomNftScenarios} from './random-nft-scenarios.js'

const SEED = Number(process.env.LVSDOCTOR_KERNEL_NFT_SEED ?? process.env.LVSDOCTOR_KERNEL_SEED ?? 20261121)
const COUNT = Number(process.env.LVSDOCTOR_KERNEL_NFT_RANDOM ?? 12)
const PREFIX = process.env.LVSDOCTOR_KERNEL_NFT_PREFIX ?? 'lnr'

console.log(`random nft kernel scenarios: seed ${SEED}, ${COUNT} scenarios, prefix ${PREFIX}`)

describeRandomAgreement('random nft rulesets', SEED, randomNftScenarios(SEED, COUNT, PREFIX), {
  tools: ['ip', 'nft', 'iptables', 'python3', 'sysctl'],
  keep: process.env.LVSDOCTOR_KERNEL_NFT_KEEP,
  checkTrace: (hosts, text) => {
    // the director's ruleset really is nft (its tables may hold no rule: a forward chain with only a policy)
    expect(hosts.find((h) => h.name === 'd')!.nft?.tables.length ?? 0).toBeGreaterThan(0)
    expect(text).not.toMatch(/nft-ruleset\.json is not replayed/)
  },
})
