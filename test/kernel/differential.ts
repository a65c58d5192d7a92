// The differential tests of the kernel suites, for a list of scenarios and the harness that runs them: for each
// scenario the real kernel runs a TCP exchange, then `trace` over the snapshots of every namespace must predict
// the same connection result; and for the failing ones, check's fix commands run in the namespaces must give
// what `trace --fix` predicts.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {runRules} from '../../src/rules/index.js'
import {traceConnection} from '../../src/services/trace.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {CLIENT_PORT, cleanup, type KernelRun, type Scenario} from './harness.js'

export interface KernelSuite {
  readonly scenarios: readonly Scenario[]
  /** why the harness cannot run here, or undefined */
  readonly cannotRun: () => string | undefined
  readonly runScenario: (s: Scenario) => Promise<KernelRun>
  /** what the scenarios' rulesets are, in the titles and messages ('nft'); none for iptables */
  readonly kind?: string
  /** check is told the flow that trace replays (as `trace --fix` knows it) */
  readonly flowToCheck: boolean
  /** more to assert on each scenario's snapshots and trace (as text) */
  readonly checkTrace?: (hosts: readonly HostSnapshot[], traceText: string) => void
}

/** Defines the suites "trace agrees with the kernel" and "trace --fix agrees with the kernel running the fixes". */
export function describeKernelAgreement(suite: KernelSuite): void {
  const {scenarios, runScenario, kind} = suite
  const why = suite.cannotRun()
  if (why) console.log(`${kind ? `${kind} ` : ''}kernel scenarios skipped: ${why}`)
  const optsOf = (s: Scenario) => ({vip: parseEndpoint(s.vip ?? s.client.connect)!, proto: 'tcp' as const, client: parseIp(s.client.src)!, clientPort: CLIENT_PORT})

  describe.skipIf(why !== undefined)(`trace agrees with the kernel${kind ? ` on ${kind} rulesets` : ''}`, () => {
    test.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
      let run: KernelRun | undefined
      try {
        run = await runScenario(s)
        // the kernel did what the scenario says it does (else the scenario no longer shows its point)
        expect(run.result, `kernel: ${run.detail}`).toEqual(s.expect)
        const hosts = loadSnapshots(run.snapshots)
        // conntrack.txt is not used by trace (and an empty `conntrack -L` does not parse yet)
        for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
        const r = traceConnection(hosts, optsOf(s))
        const text = renderTraceText(r)
        suite.checkTrace?.(hosts, text)
        expect(r.connection, `${s.why}\n${text}`).toEqual(run.result)
      } finally {
        cleanup(run)
      }
    })
  })

  // The fix is proved twice: `trace --fix` predicts the connection after check's fixes (applied to copies of
  // the snapshots), and the kernel runs the same scenario with those fix commands executed in its namespaces.
  describe.skipIf(why !== undefined)(`trace --fix agrees with the kernel running the ${kind ? `${kind} ` : ''}fixes`, () => {
    const failing = scenarios.filter((s) => !(s.expect.connected && s.expect.reply && s.expect.closed))
    test.each(failing.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
      let run: KernelRun | undefined
      let fixedRun: KernelRun | undefined
      try {
        run = await runScenario(s)
        const hosts = loadSnapshots(run.snapshots)
        const opts = optsOf(s)
        // told the flow, check finds a MARK rule for another port
        const findings = runRules(suite.flowToCheck ? {hosts, flows: [opts]} : {hosts})
        const byHost = new Map<string, string[]>()
        for (const f of findings) for (const c of f.fix?.commands ?? []) byHost.set(f.host, [...(byHost.get(f.host) ?? []), c])
        if (byHost.size === 0) {
          expect(s.fixed, `${s.name}: the scenario expects check to fix it, but check proposes no fix`).toBeUndefined()
          console.log(`${s.name}: check proposes no fix (${findings.map((f) => f.rule).join(', ') || 'no findings'}); nothing to prove`)
          return
        }
        const predicted = await traceWithFixes(hosts, opts, findings)
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
        // and the fixes do what the scenario says they do (check's fixes repair these connections)
        if (s.fixed) expect(fixedRun.result, `kernel with the fixes:\n${fixes}\n${fixedRun.detail}`).toEqual(s.fixed)
      } finally {
        cleanup(run)
        cleanup(fixedRun)
      }
    })
  })
}
