// Differential test: for each scenario the real kernel runs a TCP exchange, then `trace` over the
// snapshots of every namespace must predict the same connection result.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {traceConnection} from '../../src/services/trace.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun} from './harness.js'
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
