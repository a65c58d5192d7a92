// Differential test for the realservers' own firewalls and for DR-shaped routes through a FORWARD chain
// (scenarios.ts REALSERVER_SCENARIOS, prefix ldq): the kernel runs each scenario, trace must predict it, and
// check's fixes (realserver-filter-blocks-service, forward-blocks-routed-vip) run in the namespaces must repair
// the connection as `trace --fix` predicts.
import {cannotRun, runScenario} from './harness.js'
import {describeKernelAgreement} from './differential.js'
import {REALSERVER_SCENARIOS} from './scenarios.js'

describeKernelAgreement({scenarios: REALSERVER_SCENARIOS, cannotRun, runScenario, flowToCheck: true})
