// The kernel judges trace on random UDP scenarios (random-udp-scenarios.ts: a DNS-style request and answer through a
// DNAT director or a DR-shaped route); see random-agreement.ts for what is asserted. LVSDOCTOR_KERNEL_SEED=N runs
// another set, LVSDOCTOR_KERNEL_UDP=K another count (default 8), LVSDOCTOR_KERNEL_PREFIX another namespace prefix,
// LVSDOCTOR_KERNEL_GAP=FILE records where check falls short.
import {describeRandomAgreement} from './random-agreement.js'
import {randomUdpScenarios} from './random-udp-scenarios.js'

const SEED = Number(process.env.LVSDOCTOR_KERNEL_SEED ?? 20261121)
const COUNT = Number(process.env.LVSDOCTOR_KERNEL_UDP ?? 8)
const PREFIX = process.env.LVSDOCTOR_KERNEL_PREFIX

describeRandomAgreement('random UDP scenarios', SEED, randomUdpScenarios(SEED, COUNT, PREFIX))
