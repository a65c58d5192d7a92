import {SCENARIOS} from './scenarios.js'
import {runScenario, cleanup} from './harness.js'
const s = SCENARIOS.find((x) => x.name === process.argv[2])!
const r = await runScenario(s)
console.log(JSON.stringify(r.result), r.detail, r.dir)
