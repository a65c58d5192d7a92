// Network namespaces for tests that need traffic: two namespaces joined by a veth pair, a client that connects to
// a server over and over, commands run inside a namespace, and the clean-up. Names come from the caller, so that
// every test file keeps its own prefix.
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'

/** `ip ARGS...`, quiet; throws when it fails. */
export const ip = (...args: string[]): void => void execFileSync('ip', args, {stdio: 'ignore'})

export interface VethPair {
  /** the namespaces */
  readonly a: string
  readonly b: string
  /** the veth ends: `va` in `a` holds NET.1/24, `vb` in `b` holds NET.2/24 */
  readonly va: string
  readonly vb: string
  /** the first three bytes of the /24, such as `10.68.0` */
  readonly net: string
}

/**
 * Creates namespaces `a` and `b` (loopback up) joined by veth `va`–`vb`, both up with NET.1 and NET.2.
 * `prepare` runs in each new namespace before the veth exists.
 */
export function addVethPair(p: VethPair, prepare?: (ns: string) => void): void {
  for (const ns of [p.a, p.b]) {
    ip('netns', 'add', ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    prepare?.(ns)
  }
  ip('link', 'add', p.va, 'netns', p.a, 'type', 'veth', 'peer', 'name', p.vb, 'netns', p.b)
  ip('-n', p.a, 'addr', 'add', `${p.net}.1/24`, 'dev', p.va)
  ip('-n', p.b, 'addr', 'add', `${p.net}.2/24`, 'dev', p.vb)
  ip('-n', p.a, 'link', 'set', p.va, 'up')
  ip('-n', p.b, 'link', 'set', p.vb, 'up')
}

/** A client in `ns` connecting to host:port, sending `hello` and reading the answer, over and over for `seconds`. */
export function clientTraffic(ns: string, host: string, port: number, seconds: number): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket, time
end = time.time() + ${seconds}
while time.time() < end:
    try:
        c = socket.create_connection(('${host}', ${port}), timeout=1)
        c.sendall(b'hello'); c.recv(10); c.close()
    except OSError:
        pass
    time.sleep(0.05)
`], {stdio: 'ignore'})
}

export interface Run {
  code: number | null
  ms: number
  stdout: string
  stderr: string
}

/** Runs `argv` in namespace `ns`, collecting its output; `onStderr` sees all of stderr so far at each piece. */
export function runIn(ns: string, argv: readonly string[], opts: {env?: NodeJS.ProcessEnv; cwd?: string; onStderr?: (s: string, p: ChildProcess) => void} = {}): Promise<Run> {
  const t0 = Date.now()
  const p = spawn('ip', ['netns', 'exec', ns, ...argv], {env: {...process.env, ...opts.env}, stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd})
  let stdout = ''
  let stderr = ''
  p.stdout!.on('data', (d: Buffer) => (stdout += d))
  p.stderr!.on('data', (d: Buffer) => {
    stderr += d
    opts.onStderr?.(stderr, p)
  })
  return new Promise((resolve) => p.on('exit', (code) => resolve({code, ms: Date.now() - t0, stdout, stderr})))
}

/** Kills `peers` and every process left in the namespaces, then deletes the namespaces (those that are gone are skipped). */
export function removeNamespaces(namespaces: readonly string[], peers: readonly ChildProcess[] = []): void {
  for (const p of peers) if (p.exitCode === null) p.kill('SIGKILL')
  for (const ns of namespaces) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'}).split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL')
    } catch {
      // already gone
    }
    try {
      ip('netns', 'del', ns)
    } catch {
      // already gone
    }
  }
}
