// The kernel judges trace on random scenarios where the balancer's own stack takes part (random-local-scenarios.ts:
// REDIRECT, DNAT to 127.0.0.1, a local service, nat OUTPUT DNAT from the director, hairpin); see random-agreement.ts
// for what is asserted. LVSDOCTOR_KERNEL_SEED=N runs another set, LVSDOCTOR_KERNEL_LOCAL=K another count (default 10),
// LVSDOCTOR_KERNEL_PREFIX another namespace prefix, LVSDOCTOR_KERNEL_GAP=FILE records where check falls short,
// LVSDOCTOR_KERNEL_EXTRA=0 leaves out the third stream (the director's OUTPUT marks routed by ip rule fwmark).
import {describeRandomAgreement} from './random-agreement.js'
import {randomLocalScenarios} from './random-local-scenarios.js'

const SEED = Number(process.env.LVSDOCTOR_KERNEL_SEED ?? 20261121)
const COUNT = Number(process.env.LVSDOCTOR_KERNEL_LOCAL ?? 10)
const PREFIX = process.env.LVSDOCTOR_KERNEL_PREFIX

describeRandomAgreement('random local scenarios', SEED, randomLocalScenarios(SEED, COUNT, PREFIX))
