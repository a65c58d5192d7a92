// The body of the random kernel suites (random.kernel.test.ts, random-local.kernel.test.ts): for each scenario the
// real kernel runs one TCP exchange through the namespaces, and trace over their snapshots must predict the same
// result (connected, reply, closed); where the kernel's connection fails, check's fix commands (told the flow) run
// in the namespaces and `trace --fix` must predict what the kernel then does. LVSDOCTOR_KERNEL_GAP=FILE (opt-in)
// appends one JSON line per failing scenario to FILE: whether check is silent (no fix command), its fixes repair
// the connection, or they do not, with the rules that fired and trace's text, to measure where check falls short
// of trace; the assertions stay the same.
import {appendFileSync, cpSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {traceConnection} from '../../src/services/trace.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {runRules} from '../../src/rules/index.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import type {HostSnapshot} from '../../src/model/snapshot.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun, type Scenario} from './harness.js'

const GAP = process.env.LVSDOCTOR_KERNEL_GAP

export interface AgreementOptions {
  /** the programs the harness needs (cannotRun) */
  readonly tools?: readonly string[]
  /** more to assert on each scenario's snapshots and trace text */
  readonly checkTrace?: (hosts: readonly HostSnapshot[], traceText: string) => void
  /** DIR: every scenario's record (DIR/records.jsonl) and snapshots (DIR/NAME/HOST), to replay another trace on them */
  readonly keep?: string
}

export function describeRandomAgreement(title: string, seed: number, scenarios: readonly Scenario[], o: AgreementOptions = {}): void {
  /** The gap record of a failing scenario (LVSDOCTOR_KERNEL_GAP). */
  const gap = (record: Record<string, unknown>, run: KernelRun): void => {
    if (!GAP) return
    appendFileSync(GAP, JSON.stringify({seed, ...record}) + '\n')
    // the snapshots, to replay check and trace on them later (FILE.snapshots/NAME/HOST)
    cpSync(run.dir, `${GAP}.snapshots/${record.name}`, {recursive: true})
  }
  const why = cannotRun(o.tools)
  if (why) console.log(`${title} skipped: ${why}`)
  describe.skipIf(why !== undefined)(`trace agrees with the kernel on ${title} (seed ${seed})`, () => {
    test.each(scenarios.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
      let run: KernelRun | undefined
      let fixedRun: KernelRun | undefined
      try {
        run = await runScenario(s)
        const hosts = loadSnapshots(run.snapshots)
        for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
        const opts = {vip: parseEndpoint(s.client.connect)!, proto: s.proto ?? ('tcp' as const), client: parseIp(s.client.src)!, clientPort: CLIENT_PORT}
        const r = traceConnection(hosts, opts)
        const text = renderTraceText(r)
        o.checkTrace?.(hosts, text)
        const setup = Object.entries(s.ns).map(([n, spec]) => `${n}: ${spec.setup.join('; ')}`).join('\n')
        if (o.keep) {
          appendFileSync(`${o.keep}/records.jsonl`, JSON.stringify({seed, name: s.name, why: s.why, setup, kernel: run.result, trace: r.connection}) + '\n')
          cpSync(run.dir, `${o.keep}/${s.name}`, {recursive: true})
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
        console.log(`${s.name}: kernel ${JSON.stringify(run.result)}, with check's fixes ${JSON.stringify(fixedRun.result)}, trace --fix ${JSON.stringify(predicted.result.connection)}`)
        expect(predicted.result.connection, `${setup}\nfixes:\n${fixes}\nkernel with the fixes: ${fixedRun.detail}\n${renderTraceText(predicted.result)}`).toEqual(fixedRun.result)
      } finally {
        cleanup(run)
        cleanup(fixedRun)
      }
    }, 90_000)
  })
}
