// The kernel judges trace on random combinations (random-scenarios.ts): see random-agreement.ts for what is asserted.
// The seed is printed; LVSDOCTOR_KERNEL_SEED=N runs another set, LVSDOCTOR_KERNEL_RANDOM=K another count,
// LVSDOCTOR_KERNEL_PREFIX another namespace prefix, LVSDOCTOR_KERNEL_GAP=FILE records where check falls short,
// LVSDOCTOR_KERNEL_EXTRA=0 leaves out the third stream's parts (policy routing, marks, user chains, router state rules).
import {describeRandomAgreement} from './random-agreement.js'
import {randomScenarios} from './random-scenarios.js'

const SEED = Number(process.env.LVSDOCTOR_KERNEL_SEED ?? 20261121)
const COUNT = Number(process.env.LVSDOCTOR_KERNEL_RANDOM ?? 16)
const PREFIX = process.env.LVSDOCTOR_KERNEL_PREFIX

describeRandomAgreement('random scenarios', SEED, randomScenarios(SEED, COUNT, PREFIX))
