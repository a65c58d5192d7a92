// Runs a hand-written scenario (a JSON file in the Scenario shape of harness.ts) in the kernel and traces its snapshots:
//   npx tsx test/kernel/probe.ts FILE.json        (prints the kernel's result, trace's, and trace's text)
import {readFileSync} from 'node:fs'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {renderTraceText} from '../../src/render/trace-text.js'
import {traceConnection} from '../../src/services/trace.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {CLIENT_PORT, runScenario, type Scenario} from './harness.js'

const s = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Scenario
const run = await runScenario(s)
const hosts = loadSnapshots(run.snapshots)
const r = traceConnection(hosts, {vip: parseEndpoint(s.vip ?? s.client.connect)!, proto: s.proto ?? 'tcp', client: parseIp(s.client.src)!, clientPort: CLIENT_PORT})
console.log(`kernel ${JSON.stringify(run.result)} ${run.detail}\ntrace  ${JSON.stringify(r.connection)}\nsnapshots ${run.dir}`)
if (process.argv[3] !== '-q') console.log(renderTraceText(r))
