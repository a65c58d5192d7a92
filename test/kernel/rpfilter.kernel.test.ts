// `-m rpfilter` (a raw PREROUTING `-m rpfilter --invert -j DROP`, as real IPv4 dumps carry it; firewalld writes it for IPv6) judged by the kernel: trace decides
// the match from the snapshot's routes as ipt_rpfilter.c does (the reverse lookup from lo, strict unless --loose,
// the mark only with --validmark) and must predict what the kernel did; for the failing scenarios check's fixes
// run in the namespaces must give what `trace --fix` predicts (differential.ts).
import {cannotRun, runScenario} from './harness.js'
import {describeKernelAgreement} from './differential.js'
import {RPFILTER_SCENARIOS} from './rpfilter-scenarios.js'

describeKernelAgreement({scenarios: RPFILTER_SCENARIOS, cannotRun, runScenario, flowToCheck: true})
