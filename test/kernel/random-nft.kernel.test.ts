// The kernel judges trace's nftables engine on random native nft rulesets (random-nft-scenarios.ts): for each
// scenario the real kernel runs one TCP exchange through the namespaces, and trace over their snapshots must
// predict the same result (connected, reply, closed); where the kernel's connection fails, check's fix commands
// (told the flow; nft commands for nft hosts) run in the namespaces and `trace --fix` must predict what the kernel
// then does. The seed is printed. LVSDOCTOR_KERNEL_NFT_SEED=N (or LVSDOCTOR_KERNEL_SEED) runs another set,
// LVSDOCTOR_KERNEL_NFT_RANDOM=K another count, LVSDOCTOR_KERNEL_NFT_PREFIX another namespace/interface prefix
// (default lnr); LVSDOCTOR_KERNEL_GAP=FILE appends one JSON line per failing scenario (as random.kernel.test.ts),
// LVSDOCTOR_KERNEL_NFT_KEEP=DIR keeps every scenario's record and snapshots.
import {appendFileSync, cpSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun, type Scenario} from './harness.js'
import {randomNftScenarios} from './random-nft-scenarios.js'

const SEED = Number(process.env.LVSDOCTOR_KERNEL_NFT_SEED ?? process.env.LVSDOCTOR_KERNEL_SEED ?? 20261121)
const COUNT = Number(process.env.LVSDOCTOR_KERNEL_NFT_RANDOM ?? 12)
const PREFIX = process.env.LVSDOCTOR_KERNEL_NFT_PREFIX ?? 'lnr'
const GAP = process.env.LVSDOCTOR_KERNEL_GAP
/** LVSDOCTOR_KERNEL_NFT_KEEP=DIR (opt-in): every scenario's record (DIR/records.jsonl) and snapshots (DIR/NAME/HOST), to replay another trace on them */
const KEEP = process.env.LVSDOCTOR_KERNEL_NFT_KEEP

function gap(record: Record<string, unknown>, run: KernelRun): void {
  if (!GAP) return
  appendFileSync(GAP, JSON.stringify({seed: SEED, ...record}) + '\n')
  cpSync(run.dir, `${GAP}.snapshots/${record.name}`, {recursive: true})
}

const why = cannotRun(['ip', 'nft', 'iptables', 'python3', 'sysctl'])
if (why) console.log(`random nft kernel scenarios skipped: ${why}`)
else console.log(`random nft kernel scenarios: seed ${SEED}, ${COUNT} scenarios, prefix ${PREFIX}`)

describe.skipIf(why !== undefined)(`trace agrees with the kernel on random nft rulesets (seed ${SEED})`, () => {
  test.each(randomNftScenarios(SEED, COUNT, PREFIX).map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    let run: KernelRun | undefined
    let fixedRun: KernelRun | undefined
    try {
      run = await runScenario(s)
      const hosts = loadSnapshots(run.snapshots)
      for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
      // the director's ruleset really is nft (its tables may hold no rule: a forward chain with only a policy)
      expect(hosts.find((h) => h.name === 'd')!.nft?.tables.length ?? 0).toBeGreaterThan(0)
      const opts = {vip: parseEndpoint(s.client.connect)!, proto: 'tcp' as const, client: parseIp(s.client.src)!, clientPort: CLIENT_PORT}
      const r = traceConnection(hosts, opts)
      const text = renderTraceText(r)
      expect(text).not.toMatch(/nft-ruleset\.json is not replayed/)
      const setup = Object.entries(s.ns).map(([n, spec]) => `${n}: ${spec.setup.join('; ')}`).join('\n')
      if (KEEP) {
        appendFileSync(`${KEEP}/records.jsonl`, JSON.stringify({seed: SEED, name: s.name, why: s.why, setup, kernel: run.result, trace: r.connection}) + '\n')
        cpSync(run.dir, `${KEEP}/${s.name}`, {recursive: true})
      }
      expect(r.connection, `${s.why}\n${setup}\nkernel: ${run.detail}\n${text}`).toEqual(run.result)
      if (run.result.connected && run.result.reply && run.result.closed) return
      // the connection failed: check's fixes, predicted by trace --fix and run by the kernel
      const findings = runRules({hosts, flows: [opts]})
      const byHost = new Map<string, string[]>()
      for (const f of findings) for (const c of f.fix?.commands ?? []) byHost.set(f.host, [...(byHost.get(f.host) ?? []), c])
      const record = {name: s.name, why: s.why, setup, kernel: run.result, rules: findings.map((f) => `${f.rule}@${f.host}:${f.severity}`), trace: text}
      if (byHost.size === 0) {
        gap({...record, class: 'silent'}, run)
        console.log(`${s.name}: kernel ${JSON.stringify(run.result)}; check proposes no fix (${findings.map((f) => f.rule).join(', ') || 'no findings'})`)
        return
      }
      const predicted = await traceWithFixes(hosts, opts, findings)
      expect(predicted.outcomes.filter((o) => !o.applied), 'every fix command applies to the snapshot copy').toEqual([])
      const withFixes: Scenario = {...s, name: `fx-${s.name}`, ns: Object.fromEntries(Object.entries(s.ns).map(([n, spec]) => [n, {...spec, setup: [...spec.setup, ...(byHost.get(n) ?? [])]}]))}
      fixedRun = await runScenario(withFixes)
      const fixes = [...byHost].map(([h, c]) => `${h}: ${c.join(' ; ')}`).join('\n')
      const ok = fixedRun.result.connected && fixedRun.result.reply && fixedRun.result.closed
      gap({...record, class: ok ? 'repaired' : 'unrepaired', fixes, fixed: fixedRun.result, predicted: predicted.result.connection, ...(ok ? {} : {fixedTrace: renderTraceText(predicted.result)})}, run)
      console.log(`${s.name}: kernel ${JSON.stringify(run.result)}, with check's fixes ${JSON.stringify(fixedRun.result)}, trace --fix ${JSON.stringify(predicted.result.connection)}\n  ${fixes.replace(/\n/g, '\n  ')}`)
      expect(predicted.result.connection, `${s.why}\n${setup}\nfixes:\n${fixes}\nkernel with the fixes: ${fixedRun.detail}\n${renderTraceText(predicted.result)}`).toEqual(fixedRun.result)
    } finally {
      cleanup(run)
      cleanup(fixedRun)
    }
  }, 90_000)
})
