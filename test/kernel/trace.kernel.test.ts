// Differential test: for each scenario the real kernel runs a TCP exchange, then `trace` over the snapshots of
// every namespace must predict the same connection result, and `trace --fix` what the kernel does running check's
// fixes (differential.ts).
import {cannotRun, runScenario} from './harness.js'
import {describeKernelAgreement} from './differential.js'
import {SCENARIOS} from './scenarios.js'

describeKernelAgreement({scenarios: SCENARIOS, cannotRun, runScenario, flowToCheck: true})
