// The only place in lvsdoctor that runs external programs. Every argv is checked against an allowlist of
// read-only commands before anything is spawned; programs run through execa with an argument array (never a
// shell), a timeout, LC_ALL=C and `reject: false`, so a failure comes back as a result to record, not a throw.
import {execa} from 'execa'

/** What one command did. `stdout` is the exact bytes it printed. */
export interface RunResult {
  readonly argv: readonly string[]
  readonly stdout: Buffer
  readonly stderr: string
  /** null when the program did not start or was killed */
  readonly exitCode: number | null
  readonly durationMs: number
  /** the spawn error code (ENOENT: not installed, EACCES: not executable) */
  readonly errorCode?: string
  readonly timedOut: boolean
  readonly timeoutMs: number
  readonly signal?: string
  /** the output went over the buffer limit and was cut */
  readonly maxBuffer: boolean
}

export interface RunOptions {
  /** overrides the runner's timeout for this command */
  readonly timeoutMs?: number
}

/** Runs one allowlisted command. Services take one as a parameter (tests pass a fake). */
export type Runner = (argv: readonly string[], opts?: RunOptions) => Promise<RunResult>

/** An argv that is not on the read-only allowlist. Thrown before anything runs. */
export class NotAllowedError extends Error {
  readonly argv: readonly string[]
  constructor(argv: readonly string[]) {
    super(`refusing to run ${JSON.stringify(argv.join(' '))}: lvsdoctor only runs its read-only commands`)
    this.name = 'NotAllowedError'
    this.argv = argv
  }
}

/** Exactly these argvs may run (lists the forms lvsdoctor uses; every one only reads kernel state). */
export const ALLOWED_COMMANDS: readonly (readonly string[])[] = [
  ['iptables', '-V'],
  ['ip6tables', '-V'],
  ['iptables-save'],
  ['iptables-legacy-save'],
  ['iptables-nft-save'],
  ['ip6tables-save'],
  ['ip6tables-legacy-save'],
  ['ip6tables-nft-save'],
  ['nft', '-j', 'list', 'ruleset'],
  ['ipvsadm', '-Sn'],
  ['ipvsadm', '-Ln'],
  ['ipvsadm', '-Ln', '--stats'],
  ['ipvsadm', '-Lnc'],
  ['ipvsadm', '-Ln', '--timeout'],
  ['ip', '-j', 'addr', 'show'],
  ['ip', '-j', 'route', 'show', 'table', 'all'],
  ['ip', '-j', 'rule', 'show'],
  ['conntrack', '-L'],
  // listening sockets: a netlink dump (sock_diag), reads only
  ['ss', '-Hltnu'],
  // the sets `-m set` looks up, in the restore format (a netlink dump, reads only)
  ['ipset', 'save'],
  ['sysctl', '-a'],
]

/**
 * `sysctl KEY...` reads those subtrees. Only these keys: an argument with `=` or an option (`-w`, `-p`,
 * `--system`, `--load`) would write, so none can pass.
 */
export const SYSCTL_READ_KEYS: ReadonlySet<string> = new Set(['net.ipv4', 'net.ipv6.conf', 'net.netfilter'])

export function isAllowed(argv: readonly string[]): boolean {
  if (argv.length === 0) return false
  if (argv[0] === 'sysctl' && argv.length > 1 && argv.slice(1).every((a) => SYSCTL_READ_KEYS.has(a))) return true
  return ALLOWED_COMMANDS.some((a) => a.length === argv.length && a.every((x, i) => x === argv[i]))
}

export function assertAllowed(argv: readonly string[]): void {
  if (!isAllowed(argv)) throw new NotAllowedError(argv)
}

export interface RunnerOptions {
  /** default timeout per command (ms) */
  readonly timeoutMs?: number
  /** extra environment (LC_ALL=C is always set); PATH here replaces the inherited one */
  readonly env?: Readonly<Record<string, string>>
  /** largest output kept per command (bytes) */
  readonly maxBuffer?: number
}

export const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_MAX_BUFFER = 512 * 1024 * 1024

/** The real runner: execa, argv array, timeout, LC_ALL=C, reject: false. */
export function createRunner(o: RunnerOptions = {}): Runner {
  return async (argv, opts) => {
    assertAllowed(argv)
    const timeoutMs = opts?.timeoutMs ?? o.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const started = performance.now()
    const r = await execa(argv[0]!, argv.slice(1), {
      reject: false,
      shell: false,
      timeout: timeoutMs,
      forceKillAfterDelay: 1000,
      env: {...o.env, LC_ALL: 'C'},
      extendEnv: true,
      stdin: 'ignore',
      encoding: 'buffer',
      stripFinalNewline: false,
      maxBuffer: o.maxBuffer ?? DEFAULT_MAX_BUFFER,
    })
    const code = (r as {code?: string}).code
    return {
      argv: [...argv],
      stdout: Buffer.from(r.stdout ?? new Uint8Array()),
      stderr: Buffer.from(r.stderr ?? new Uint8Array()).toString('utf8'),
      exitCode: r.exitCode ?? null,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      errorCode: typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined,
      timedOut: r.timedOut,
      timeoutMs,
      signal: r.signal ?? undefined,
      maxBuffer: r.isMaxBuffer,
    }
  }
}

/** The runner lvsdoctor uses unless a test passes another. */
export const defaultRunner: Runner = createRunner()

function firstLine(stderr: string, re?: RegExp): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  const hit = re ? lines.find((l) => re.test(l)) : undefined
  const line = hit ?? lines[0] ?? ''
  return line.length > 160 ? line.slice(0, 157) + '...' : line
}

const PERMISSION = /permission denied|operation not permitted|must be root|CAP_NET_ADMIN|not permitted/i
const IPVS_ABSENT = /Can't initialize ipvs|Protocol not available|IP Virtual Server is built/i

/**
 * Why a command gave no usable output, in one line; undefined when it succeeded. The order matters: a
 * program that is missing, hangs or was cut off says nothing useful on stderr; then the kernel's own
 * reasons (IPVS absent, not root); then any other exit code.
 */
export function explainFailure(r: RunResult): string | undefined {
  const prog = r.argv[0] ?? '?'
  if (r.errorCode === 'ENOENT') return `${prog} is not installed (not found in PATH)`
  if (r.errorCode === 'EACCES') return `${prog} cannot be executed (permission denied on the program)`
  if (r.errorCode) return `${prog} could not be started (${r.errorCode})`
  if (r.timedOut) return `${r.argv.join(' ')} did not finish within ${fmtSeconds(r.timeoutMs)} and was killed`
  if (r.maxBuffer) return `${r.argv.join(' ')} printed more than the output limit; output dropped`
  if (r.exitCode === 0) return undefined
  if (r.exitCode === null) return `${r.argv.join(' ')} was killed${r.signal ? ` by ${r.signal}` : ''}`
  if (prog === 'ipvsadm' && IPVS_ABSENT.test(r.stderr) && !PERMISSION.test(r.stderr)) {
    return `IPVS is not available in this kernel (ip_vs module not loaded): ${firstLine(r.stderr, /Can't initialize ipvs/)}`
  }
  if (PERMISSION.test(r.stderr)) return `permission denied (run as root): ${firstLine(r.stderr, PERMISSION)}`
  const why = firstLine(r.stderr)
  return `${r.argv.join(' ')} exited with code ${r.exitCode}${why ? `: ${why}` : ''}`
}

function fmtSeconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`
}
