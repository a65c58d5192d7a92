// Differential test: for each scenario the real kernel runs a TCP exchange, then `trace` over the
// snapshots of every namespace must predict the same connection result.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {traceConnection} from '../../src/services/trace.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun, type Scenario} from './harness.js'
import {runRules} from '../../src/rules/index.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {SCENARIOS} from './scenarios.js'

const why = cannotRun()
if (why) console.log(`kernel scenarios skipped: ${why}`)

describe.skipIf(why !== undefined)('trace agrees with the kernel', () => {
  test.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    let run: KernelRun | undefined
    try {
      run = await runScenario(s)
      // the kernel did what the scenario says it does (else the scenario no longer shows its point)
      expect(run.result, `kernel: ${run.detail}`).toEqual(s.expect)
      const hosts = loadSnapshots(run.snapshots)
      // conntrack.txt is not used by trace (and an empty `conntrack -L` does not parse yet)
      for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
      const r = traceConnection(hosts, {vip: parseEndpoint(s.vip ?? s.client.connect)!, proto: 'tcp', client: parseIp(s.client.src)!, clientPort: CLIENT_PORT})
      expect(r.connection, `${s.why}\n${renderTraceText(r)}`).toEqual(run.result)
    } finally {
      cleanup(run)
    }
  })
})

// The fix is proved twice: `trace --fix` predicts the connection after check's fixes (applied to copies of
// the snapshots), and the kernel runs the same scenario with those fix commands executed in its namespaces.
describe.skipIf(why !== undefined)('trace --fix agrees with the kernel running the fixes', () => {
  const failing = SCENARIOS.filter((s) => !(s.expect.connected && s.expect.reply && s.expect.closed))
  test.each(failing.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    let run: KernelRun | undefined
    let fixedRun: KernelRun | undefined
    try {
      run = await runScenario(s)
      const hosts = loadSnapshots(run.snapshots)
      const opts = {vip: parseEndpoint(s.vip ?? s.client.connect)!, proto: 'tcp' as const, client: parseIp(s.client.src)!, clientPort: CLIENT_PORT}
      // check is told the flow trace replays (as trace --fix knows it): a MARK rule for another port is a finding then
      const findings = runRules({hosts, flows: [opts]})
      const byHost = new Map<string, string[]>()
      for (const f of findings) for (const c of f.fix?.commands ?? []) byHost.set(f.host, [...(byHost.get(f.host) ?? []), c])
      if (byHost.size === 0) {
        expect(s.fixed, `${s.name}: the scenario expects check to fix it, but check proposes no fix`).toBeUndefined()
        console.log(`${s.name}: check proposes no fix; nothing to prove`)
        return
      }
      const predicted = await traceWithFixes(hosts, opts, findings)
      const notApplied = predicted.outcomes.filter((o) => !o.applied)
      expect(notApplied, 'every fix command applies to the snapshot copy').toEqual([])
      const withFixes: Scenario = {
        ...s,
        name: `fx-${s.name}`,
        ns: Object.fromEntries(Object.entries(s.ns).map(([n, spec]) => [n, {...spec, setup: [...spec.setup, ...(byHost.get(n) ?? [])]}])),
      }
      fixedRun = await runScenario(withFixes)
      const fixes = [...byHost].map(([h, c]) => `${h}: ${c.join(' ; ')}`).join('\n')
      console.log(`${s.name}: kernel before ${JSON.stringify(run.result)}, with the fixes ${JSON.stringify(fixedRun.result)}, trace --fix ${JSON.stringify(predicted.result.connection)}\n  ${fixes.replace(/\n/g, '\n  ')}`)
      expect(predicted.result.connection, `fixes:\n${fixes}\nkernel: ${fixedRun.detail}\n${renderTraceText(predicted.result)}`).toEqual(fixedRun.result)
      // and the fixes do what the scenario says they do (check's fixes repair these connections)
      if (s.fixed) expect(fixedRun.result, `kernel with the fixes:\n${fixes}\n${fixedRun.detail}`).toEqual(s.fixed)
    } finally {
      cleanup(run)
      cleanup(fixedRun)
    }
  })
})
