// The kernel judges trace on random combinations (random-scenarios.ts): for each scenario the real kernel runs
// one TCP exchange through the namespaces, and trace over their snapshots must predict the same result
// (connected, reply, closed). The seed is printed; LVSDOCTOR_KERNEL_SEED=N runs another set, LVSDOCTOR_KERNEL_RANDOM=K
// another count.
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {traceConnection} from '../../src/services/trace.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {CLIENT_PORT, cannotRun, cleanup, runScenario, type KernelRun} from './harness.js'
import {randomScenarios} from './random-scenarios.js'

const SEED = Number(process.env.LVSDOCTOR_KERNEL_SEED ?? 20261121)
const COUNT = Number(process.env.LVSDOCTOR_KERNEL_RANDOM ?? 16)
const why = cannotRun()
if (why) console.log(`random kernel scenarios skipped: ${why}`)

describe.skipIf(why !== undefined)(`trace agrees with the kernel on random scenarios (seed ${SEED})`, () => {
  test.each(randomScenarios(SEED, COUNT).map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    let run: KernelRun | undefined
    try {
      run = await runScenario(s)
      const hosts = loadSnapshots(run.snapshots)
      for (const h of hosts) expect(h.errors.filter((e) => e.file !== 'conntrack.txt').map((e) => e.message)).toEqual([])
      const r = traceConnection(hosts, {vip: parseEndpoint(s.client.connect)!, proto: 'tcp', client: parseIp(s.client.src)!, clientPort: CLIENT_PORT})
      const setup = Object.entries(s.ns).map(([n, spec]) => `${n}: ${spec.setup.join('; ')}`).join('\n')
      expect(r.connection, `${s.why}\n${setup}\nkernel: ${run.detail}\n${renderTraceText(r)}`).toEqual(run.result)
    } finally {
      cleanup(run)
    }
  }, 60_000)
})
