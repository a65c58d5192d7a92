// The IPVS lab: a real IPVS kernel (Debian's cloud kernel under qemu) runs every scenario of
// test/ipvs-lab/scenarios/ in one boot; this file checks what the kernel did to each TCP exchange and that the
// snapshots it brought back are complete. It is the judge lvsdoctor's `trace` and `check` will be held to:
// `expectedTrace` / `expectedRules` below are what those commands must say for each scenario.
//
// When the lab cannot run here (no qemu, no kernel package reachable), beforeAll fails with the reason and
// every test of this file fails: the suite never passes without having run the kernel.
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {beforeAll, describe, expect, test} from 'vitest'

const HERE = dirname(fileURLToPath(import.meta.url))
const CACHE = process.env.IPVS_LAB_CACHE ?? join(HERE, '.cache')
const RESULTS = join(CACHE, 'results')
/** the VM's own limit (lab.sh kills it after this); the hook waits a little longer for the host side */
const VM_TIMEOUT_S = 540

/** What the kernel did to the exchange(s) of a scenario (outcome.json; all exchanges for several). */
interface KernelOutcome {
  handshake: boolean
  response: boolean
  clientSawFin: boolean
  serverSawFin: boolean
}

interface Expectation {
  kernel: KernelOutcome
  /** `trace --json` .connection for the scenario's flow (outcome.json .flow), implied by the kernel outcome */
  expectedTrace: {connected: boolean; reply: boolean; closed: boolean}
  /** the rule ids `check --json` must report over the scenario's snapshots (the set, nothing more) */
  expectedRules: readonly string[]
  /** extra kernel facts for this scenario */
  extra?: (o: Outcome) => void
}

interface Exchange extends KernelOutcome {
  client: string
  from: string
  target: string
  servedBy: string | null
  clientFinAcked: boolean
  serverFinAcked: boolean
}

interface Outcome extends KernelOutcome {
  scenario: string
  title: string
  source: string
  notes: string
  flow: {client: string; service: string; proto: 'tcp'}
  clientFinAcked: boolean
  serverFinAcked: boolean
  exchanges: Exchange[]
  hosts: {name: string; role: string}[]
  setupErrors: string[]
  kernel: string
}

const ALL_OK: KernelOutcome = {handshake: true, response: true, clientSawFin: true, serverSawFin: true}
const NO_CONNECTION: KernelOutcome = {handshake: false, response: false, clientSawFin: false, serverSawFin: false}
/** the server's FIN reaches the client directly; the client's FIN dies on the director */
const CLIENT_FIN_LOST: KernelOutcome = {handshake: true, response: true, clientSawFin: true, serverSawFin: false}
const WORKS = {connected: true, reply: true, closed: true}
const FAILS = {connected: false, reply: false, closed: false}
const NEVER_CLOSES = {connected: true, reply: true, closed: false}

// One entry per file in scenarios/ (a test checks they agree). The kernel outcomes are what the lab's kernel
// (Debian 6.1 cloud) did; expectedTrace follows from them; expectedRules are the rule ids of src/rules/.
const SCENARIOS: Record<string, Expectation> = {
  'nat-gw-director': {
    kernel: ALL_OK,
    expectedTrace: WORKS,
    expectedRules: [],
    extra: (o) => expect(conns(o.scenario, 'director')).toMatch(/TIME_WAIT\s+203\.0\.113\.10:\d+\s+203\.0\.113\.100:80\s+10\.1\.0\.1[12]:8080/),
  },
  'nat-gw-router': {kernel: NO_CONNECTION, expectedTrace: FAILS, expectedRules: ['nat-reply-bypasses-director'], extra: synRecv},
  'nat-ip-forward-0': {kernel: NO_CONNECTION, expectedTrace: FAILS, expectedRules: ['ip-forward-off'], extra: synRecv},
  'nat-output-stateful': {
    kernel: NO_CONNECTION,
    expectedTrace: FAILS,
    expectedRules: ['nat-stateful-output', 'ipvs-conntrack-off'],
    // on 6.1 the forwarded SYN itself (untracked) falls to the OUTPUT policy, not the last FIN/ACK of 29.15
    extra: (o) => {
      synRecv(o)
      expect(policyDrops(o.scenario, 'director', 'OUTPUT')).toBeGreaterThan(0)
    },
  },
  'nat-output-stateful-ct1': {
    kernel: ALL_OK,
    expectedTrace: WORKS,
    expectedRules: [],
    extra: (o) => expect(policyDrops(o.scenario, 'director', 'OUTPUT')).toBe(0),
  },
  'nat-input-stateful': {
    kernel: CLIENT_FIN_LOST,
    expectedTrace: NEVER_CLOSES,
    expectedRules: ['nat-stateful-output', 'ipvs-conntrack-off'],
    extra: (o) => {
      expect(o.clientFinAcked).toBe(false)
      expect(policyDrops(o.scenario, 'director', 'INPUT')).toBeGreaterThan(0)
    },
  },
  'nat-invalid-drop-ct0': {kernel: NO_CONNECTION, expectedTrace: FAILS, expectedRules: ['ipvs-conntrack-off'], extra: synRecv},
  'nat-invalid-drop-ct1': {
    kernel: ALL_OK,
    expectedTrace: WORKS,
    expectedRules: [],
    // one conntrack entry whose reply tuple IPVS rewrote to the realserver
    extra: (o) => expect(read(o.scenario, 'director', 'conntrack.txt')).toMatch(/dst=203\.0\.113\.100 sport=\d+ dport=80 src=10\.1\.0\.1[12] dst=203\.0\.113\.10 sport=8080/),
  },
  'nat-input-reject-vip': {
    kernel: NO_CONNECTION,
    expectedTrace: FAILS,
    expectedRules: ['filter-blocks-vip'],
    extra: (o) => expect(conns(o.scenario, 'director')).not.toMatch(/203\.0\.113\.10:/),
  },
  'dr-stateless': {kernel: ALL_OK, expectedTrace: WORKS, expectedRules: [], extra: drFinWait},
  'dr-ip-forward-0': {kernel: ALL_OK, expectedTrace: WORKS, expectedRules: [], extra: drFinWait},
  'dr-state-new': {
    kernel: CLIENT_FIN_LOST,
    expectedTrace: NEVER_CLOSES,
    expectedRules: ['dr-stateful-filter'],
    extra: (o) => {
      expect(o.clientFinAcked).toBe(false)
      // the FIN never reached IPVS: its connection entry stays ESTABLISHED (15 min) on the director
      expect(conns(o.scenario, 'director')).toMatch(/ESTABLISHED\s+198\.51\.100\.10:\d+\s+10\.0\.0\.100:80/)
      expect(policyDrops(o.scenario, 'director', 'INPUT')).toBeGreaterThan(0)
    },
  },
  'dr-state-new-ct1': {
    // vs.conntrack=1 keeps the SYN's conntrack entry (SYN_SENT, never replied): the client's ACK and request
    // are neither NEW nor ESTABLISHED and are dropped; the client's handshake completes all the same
    kernel: {handshake: true, response: false, clientSawFin: false, serverSawFin: false},
    expectedTrace: {connected: true, reply: false, closed: false},
    expectedRules: ['dr-stateful-filter'],
    extra: (o) => {
      expect(o.exchanges[0].servedBy).toBeNull()
      expect(read(o.scenario, 'director', 'conntrack.txt')).toMatch(/SYN_SENT src=198\.51\.100\.10 dst=10\.0\.0\.100 .*\[UNREPLIED\]/)
    },
  },
  'dr-established-reject': {
    kernel: CLIENT_FIN_LOST,
    expectedTrace: NEVER_CLOSES,
    expectedRules: ['dr-stateful-filter', 'reject-on-one-way-flow'],
    extra: (o) => {
      expect(o.clientFinAcked).toBe(false)
      expect(conns(o.scenario, 'director')).toMatch(/ESTABLISHED\s+198\.51\.100\.10:\d+\s+10\.0\.0\.100:80/)
    },
  },
  'fwmark-marked': {kernel: ALL_OK, expectedTrace: WORKS, expectedRules: []},
  'fwmark-unmarked': {kernel: NO_CONNECTION, expectedTrace: FAILS, expectedRules: ['fwmark-service-unmarked']},
  'tun-rp-filter-off': {kernel: ALL_OK, expectedTrace: WORKS, expectedRules: [], extra: drFinWait},
  'tun-rp-filter-strict': {kernel: NO_CONNECTION, expectedTrace: FAILS, expectedRules: ['rp-filter-asymmetric'], extra: synRecv},
  'persistence-two-clients': {
    kernel: ALL_OK,
    expectedTrace: WORKS,
    expectedRules: [],
    extra: (o) => {
      const by = o.exchanges.map((e) => e.servedBy)
      expect(o.exchanges.map((e) => e.client)).toEqual(['client1', 'client1', 'client2'])
      // client1 twice to the same realserver (a persistence template), client2 scheduled to the other
      expect(by[0]).toBeTruthy()
      expect(by[1]).toBe(by[0])
      expect(by[2]).toBeTruthy()
      expect(by[2]).not.toBe(by[0])
      // the templates (client:0): state ASSURED on 6.1, where older documentation shows NONE
      expect(conns(o.scenario, 'director')).toMatch(/ASSURED\s+203\.0\.113\.10:0\s+203\.0\.113\.100:80/)
      expect(conns(o.scenario, 'director')).toMatch(/ASSURED\s+203\.0\.113\.11:0\s+203\.0\.113\.100:80/)
    },
  },
}

/** A connection that never got a reply through the director: IPVS scheduled it and holds it in SYN_RECV. */
function synRecv(o: Outcome): void {
  expect(conns(o.scenario, 'director')).toMatch(new RegExp(`SYN_RECV\\s+${o.flow.client.replace(/\./g, '\\.')}:\\d+`))
}

/** DR/TUN after a clean close: IPVS saw only the client's side and leaves the connection in FIN_WAIT. */
function drFinWait(o: Outcome): void {
  expect(conns(o.scenario, 'director')).toMatch(/FIN_WAIT\s+198\.51\.100\.10:\d+\s+10\.0\.0\.100:80/)
}

/** Every snapshot file the lab collects per host (the lvsdoctor-snapshot/1 files `lvsdoctor snapshot` writes). */
const SNAPSHOT_FILES = [
  'manifest.json',
  'iptables-save.txt',
  'ip6tables-save.txt',
  'nft-ruleset.json',
  'ipvsadm-Sn.txt',
  'ipvsadm-Ln.txt',
  'ipvsadm-Lnc.txt',
  'ip-addr.json',
  'ip-route.json',
  'ip-rule.json',
  'sysctl.txt',
  'conntrack.txt',
]

const scenarioFiles = readdirSync(join(HERE, 'scenarios'))
  .filter((f) => f.endsWith('.sh'))
  .map((f) => f.slice(0, -3))
  .sort()

function outcome(name: string): Outcome {
  const p = join(RESULTS, name, 'outcome.json')
  if (!existsSync(p)) throw new Error(`${p} is missing: the scenario did not run (see ${join(RESULTS, name, '_lab')})`)
  return JSON.parse(readFileSync(p, 'utf8')) as Outcome
}

/** The host snapshot directories of a scenario, as `lvsdoctor trace` / `check` take them. */
function hostDirs(name: string): string[] {
  return outcome(name).hosts.map((h) => join(RESULTS, name, h.name))
}

function read(name: string, host: string, file: string): string {
  return readFileSync(join(RESULTS, name, host, file), 'utf8')
}

function conns(name: string, host: string): string {
  return read(name, host, 'ipvsadm-Lnc.txt')
}

/** The packet counter of a filter chain's policy in the host's iptables-save (`:CHAIN POLICY [packets:bytes]`). */
function policyDrops(name: string, host: string, chain: string): number {
  const m = new RegExp(`^:${chain} DROP \\[(\\d+):\\d+\\]`, 'm').exec(read(name, host, 'iptables-save.txt'))
  if (!m) throw new Error(`${name}/${host}: no DROP policy on ${chain}`)
  return Number(m[1])
}

/** Runs the lab; resolves with its stderr, rejects with the reason it could not run. */
function runLab(): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [join(HERE, 'lab.sh'), 'run'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {...process.env, IPVS_LAB_TIMEOUT: String(VM_TIMEOUT_S)},
    })
    let err = ''
    p.stdout.on('data', (d: Buffer) => (err += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', (e) => reject(new Error(`IPVS lab: cannot start bash lab.sh: ${e.message}`)))
    p.on('close', (code) => {
      if (code === 0) return resolve(err)
      const tail = err.trim().split('\n').slice(-15).join('\n')
      const why = code === 3 ? 'the IPVS lab CANNOT RUN on this machine' : `the IPVS lab failed (lab.sh exit ${code})`
      reject(new Error(`${why}; these tests need qemu and Debian's kernel package (scripts/install.sh --test):\n${tail}`))
    })
  })
}

describe('IPVS lab: a real IPVS kernel under qemu', () => {
  beforeAll(async () => {
    const log = await runLab()
    const host = JSON.parse(readFileSync(join(RESULTS, 'host.json'), 'utf8')) as Record<string, unknown>
    console.log(`IPVS lab: ${JSON.stringify(host)}\n${log.split('\n').filter((l) => / done rc=|VM ran/.test(l)).join('\n')}`)
  }, (VM_TIMEOUT_S + 60) * 1000)

  test('every scenario file has an expectation here and vice versa', () => {
    expect(scenarioFiles).toEqual(Object.keys(SCENARIOS).sort())
    expect(scenarioFiles.length).toBeGreaterThanOrEqual(12)
  })

  describe.each(scenarioFiles)('%s', (name) => {
    const exp = SCENARIOS[name]

    test('the scenario file cites its source and records what the kernel showed', () => {
      const text = readFileSync(join(HERE, 'scenarios', `${name}.sh`), 'utf8')
      expect(text).toMatch(/^# Reproduces: \S/m)
      expect(text).toMatch(/^SOURCE="[^"]+"/m)
      expect(text).toMatch(/^NOTES="[^"]+/m)
    })

    test('the scenario was set up without error', () => {
      expect(outcome(name).setupErrors).toEqual([])
    })

    test('the kernel did what we expect to the TCP exchange', () => {
      const o = outcome(name)
      expect(o.exchanges.length).toBeGreaterThan(0)
      const got = {handshake: o.handshake, response: o.response, clientSawFin: o.clientSawFin, serverSawFin: o.serverSawFin}
      expect(got, o.exchanges.map((e) => JSON.stringify(e)).join('\n')).toEqual(exp?.kernel)
      exp?.extra?.(o)
    })

    test('every host came back as a complete lvsdoctor-snapshot/1 directory', () => {
      const o = outcome(name)
      expect(o.hosts.length).toBeGreaterThanOrEqual(3)
      for (const h of o.hosts) {
        const dir = join(RESULTS, name, h.name)
        const present = existsSync(dir) ? readdirSync(dir) : []
        expect(SNAPSHOT_FILES.filter((f) => !present.includes(f)), `${dir}`).toEqual([])
        const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
        expect(m).toMatchObject({format: 'lvsdoctor-snapshot/1', host: h.name, role: h.role})
        expect(Object.keys(m.commands).sort()).toEqual(SNAPSHOT_FILES.filter((f) => f !== 'manifest.json').sort())
        for (const [file, c] of Object.entries(m.commands as Record<string, {exitCode: number}>)) {
          expect(c.exitCode, `${h.name}/${file}`).toBe(0)
        }
      }
      const director = readFileSync(join(RESULTS, name, 'director', 'ipvsadm-Sn.txt'), 'utf8')
      expect(director).toMatch(/^-A -[tf] /m)
      expect(hostDirs(name).length).toBe(o.hosts.length)
    })

    // ── lvsdoctor's verdicts (issue 8 part 2): wire these when `trace` and `check` exist ──────────────────
    //   const o = outcome(name)
    //   const trace = lvsdoctorJson(['trace', '--json', '--vip', o.flow.service, '--client', o.flow.client, ...hostDirs(name)])
    //   expect(trace.connection).toEqual(exp.expectedTrace)
    //   const check = lvsdoctorJson(['check', '--json', ...hostDirs(name)])
    //   expect([...new Set(check.findings.map((f) => f.rule))].sort()).toEqual([...exp.expectedRules].sort())
    test.todo(
      `lvsdoctor trace says ${JSON.stringify(exp?.expectedTrace)} and check reports [${exp?.expectedRules.join(', ')}] (waiting for the trace command)`,
    )
  })
})
