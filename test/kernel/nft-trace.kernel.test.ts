// Differential test for nftables (issue 7): for each scenario the real kernel runs a TCP exchange through nft
// rulesets, then `trace` over the snapshots of every namespace must predict the same connection result; and for
// the failing ones, check's nft fix commands run in the namespaces must give what `trace --fix` predicts.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {traceConnection} from '../../src/services/trace.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {runRules} from '../../src/rules/index.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun, type Scenario} from './nft-harness.js'
import {NFT_SCENARIOS} from './nft-scenarios.js'

const why = cannotRun()
if (why) console.log(`nft kernel scenarios skipped: ${why}`)

const optsOf = (s: Scenario) => ({vip: parseEndpoint(s.vip ?? s.client.connect)!, proto: 'tcp' as const, client: parseIp(s.client.src)!, clientPort: CLIENT_PORT})

describe.skipIf(why !== undefined)('trace agrees with the kernel on nft rulesets', () => {
  test.each(NFT_SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    let run: KernelRun | undefined
    try {
      run = await runScenario(s)
      expect(run.result, `kernel: ${run.detail}`).toEqual(s.expect)
      const hosts = loadSnapshots(run.snapshots)
      for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
      // the director's ruleset really is nft, and trace replays it
      const d = hosts.find((h) => h.name === 'd')!
      expect(d.nft?.ruleCount ?? 0).toBeGreaterThan(0)
      const r = traceConnection(hosts, optsOf(s))
      expect(r.connection, `${s.why}\n${renderTraceText(r)}`).toEqual(run.result)
      const text = renderTraceText(r)
      expect(text).not.toMatch(/nft-ruleset\.json is not replayed/)
    } finally {
      cleanup(run)
    }
  })
})

describe.skipIf(why !== undefined)('trace --fix agrees with the kernel running the nft fixes', () => {
  const failing = NFT_SCENARIOS.filter((s) => !(s.expect.connected && s.expect.reply && s.expect.closed))
  test.each(failing.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    let run: KernelRun | undefined
    let fixedRun: KernelRun | undefined
    try {
      run = await runScenario(s)
      const hosts = loadSnapshots(run.snapshots)
      const findings = runRules({hosts})
      const byHost = new Map<string, string[]>()
      for (const f of findings) for (const c of f.fix?.commands ?? []) byHost.set(f.host, [...(byHost.get(f.host) ?? []), c])
      if (byHost.size === 0) {
        console.log(`${s.name}: check proposes no fix (${findings.map((f) => f.rule).join(', ') || 'no findings'}); nothing to prove`)
        return
      }
      const predicted = await traceWithFixes(hosts, optsOf(s), findings)
      expect(predicted.outcomes.filter((o) => !o.applied), 'every fix command applies to the snapshot copy').toEqual([])
      const withFixes: Scenario = {
        ...s,
        name: `fx-${s.name}`,
        ns: Object.fromEntries(Object.entries(s.ns).map(([n, spec]) => [n, {...spec, setup: [...spec.setup, ...(byHost.get(n) ?? [])]}])),
      }
      fixedRun = await runScenario(withFixes)
      const fixes = [...byHost].map(([h, c]) => `${h}: ${c.join(' ; ')}`).join('\n')
      console.log(`${s.name}: kernel before ${JSON.stringify(run.result)}, with the fixes ${JSON.stringify(fixedRun.result)}, trace --fix ${JSON.stringify(predicted.result.connection)}\n  ${fixes.replace(/\n/g, '\n  ')}`)
      expect(predicted.result.connection, `fixes:\n${fixes}\nkernel: ${fixedRun.detail}\n${renderTraceText(predicted.result)}`).toEqual(fixedRun.result)
    } finally {
      cleanup(run)
      cleanup(fixedRun)
    }
  })
})
