// Runs one kernel scenario by hand and keeps its snapshots, to look at them with `lvsdoctor trace`:
//   npx tsx test/kernel/debug.ts dnat-noreturn     (prints the kernel's result and the snapshot directory)
import {SCENARIOS} from './scenarios.js'
import {runScenario} from './harness.js'

const s = SCENARIOS.find((x) => x.name === process.argv[2])
if (!s) {
  console.error(`scenarios: ${SCENARIOS.map((x) => x.name).join(' ')}`)
  process.exit(2)
}
const r = await runScenario(s)
console.log(JSON.stringify(r.result), r.detail, r.dir)
