// The kernel as the judge: builds a scenario as network namespaces (prefix ldt-, or the scenario's own), loads real routes,
// sysctls and iptables rules, runs a real TCP exchange with python3 sockets, records what the kernel did,
// snapshots every namespace with lvsdoctor's own `snapshot`, and removes everything again (also on failure).
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

export interface Connection {
  connected: boolean
  reply: boolean
  closed: boolean
}

export interface NsSpec {
  readonly role: 'client' | 'director' | 'realserver' | 'router'
  /** commands run inside the namespace, in order (ip, sysctl, iptables...) */
  readonly setup: readonly string[]
}

export interface Scenario {
  readonly name: string
  /** what the scenario shows, and the source it follows */
  readonly why: string
  readonly ns: Readonly<Record<string, NsSpec>>
  /** veth pairs: [ns, iface, cidr] on each end; iface names start with the prefix */
  readonly links: readonly (readonly [string, string, string, string, string, string])[]
  /**
   * LANs: each a bridge (in a namespace of its own, `sw<n>`, never snapshotted) with one veth port per
   * [ns, iface, cidr]: hosts that share one subnet (a client beside the backends, hairpin NAT)
   */
  readonly lans?: readonly (readonly (readonly [string, string, string])[])[]
  /** bind: the address the server socket is bound to (default the wildcard 0.0.0.0) */
  readonly server: {readonly ns: string; readonly port: number; readonly bind?: string}
  /** UDP: one request datagram and its answer (connected = reply = closed = the answer arrived); TCP by default */
  readonly proto?: 'tcp' | 'udp'
  readonly client: {readonly ns: string; readonly src: string; readonly connect: string}
  /** the service address given to trace --vip (defaults to client.connect) */
  readonly vip?: string
  /** what the kernel is expected to do (documented; asserted so that a scenario keeps meaning what it says) */
  readonly expect: Connection
  /** what the kernel does once check's fix commands (told this flow) have run in the namespaces; asserted in the fix run */
  readonly fixed?: Connection
  /** namespace and temp-dir prefix (default ldt), so that suites running at once never collide */
  readonly prefix?: string
}

export const ROOT = resolve(import.meta.dirname, '../..')
export const CLIENT_PORT = 40000

/** Why the kernel suite cannot run here, or undefined when it can. */
export function cannotRun(tools: readonly string[] = ['ip', 'iptables', 'python3', 'sysctl']): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need root'
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], {stdio: 'ignore'})
    } catch {
      return `${tool} is not installed`
    }
  }
  if (!existsSync(join(ROOT, 'dist/commands/snapshot.js'))) return 'dist/ is not built (npm run build): the snapshot command runs from it'
  return undefined
}

const prefixOf = (s: Scenario) => `${s.prefix ?? 'ldt'}-${s.name.slice(0, 20)}-`
const nsName = (s: Scenario, n: string) => `${prefixOf(s)}${n}`

function sh(args: readonly string[], input?: string): string {
  return execFileSync(args[0]!, args.slice(1), {encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000})
}

function inNs(ns: string, cmd: string): string {
  return sh(['ip', 'netns', 'exec', ns, 'sh', '-c', cmd])
}

/** Removes every namespace of the scenario (and any left over from an interrupted run of it). */
export function teardown(s: Scenario): void {
  let list = ''
  try {
    list = sh(['ip', 'netns', 'list'])
  } catch {
    return
  }
  const prefix = prefixOf(s)
  for (const line of list.split('\n')) {
    const n = line.split(' ')[0]
    if (n && n.startsWith(prefix)) {
      try {
        sh(['ip', 'netns', 'del', n])
      } catch {
        /* already gone */
      }
    }
  }
}

const SERVER_PY = `
import socket, sys, json
port, out, bind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
st = {"accepted": False, "request": False, "eof": False}
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((bind, port)); s.listen(4); s.settimeout(8)
open(out + ".ready", "w").close()
try:
    c, _ = s.accept(); st["accepted"] = True; c.settimeout(4)
    if c.recv(100).startswith(b"REQUEST"):
        st["request"] = True
        c.sendall(b"RESPONSE")
    while True:
        d = c.recv(100)
        if not d:
            st["eof"] = True
            break
    c.close()
except Exception as e:
    st["error"] = str(e)
open(out, "w").write(json.dumps(st))
# still listening while the namespaces are snapshotted (ss-ltnu.txt), as a real service is; killed afterwards
import time
time.sleep(120)
`

const UDP_SERVER_PY = `
import socket, sys, json, time
port, out, bind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
st = {"accepted": False, "request": False, "eof": False}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((bind, port)); s.settimeout(8)
open(out + ".ready", "w").close()
try:
    d, peer = s.recvfrom(100); st["accepted"] = True
    if d.startswith(b"REQUEST"):
        st["request"] = True
        s.sendto(b"RESPONSE", peer)
        st["eof"] = True
except Exception as e:
    st["error"] = str(e)
open(out, "w").write(json.dumps(st))
# still bound while the namespaces are snapshotted (ss-ltnu.txt); killed afterwards
time.sleep(120)
`

// a connected UDP socket, so that an ICMP error for the request (port unreachable, host prohibited) is reported
const UDP_CLIENT_PY = `
import socket, sys, json
src, dst, port, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = {"connected": False, "reply": False, "eof": False}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
try:
    s.connect((dst, port))
    s.settimeout(1.5)
    s.send(b"REQUEST")
    if s.recv(100).startswith(b"RESPONSE"):
        r["connected"] = r["reply"] = r["eof"] = True
except Exception as e:
    r["error"] = str(e)
print(json.dumps(r))
`

const CLIENT_PY = `
import socket, sys, json, struct
src, dst, port, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = {"connected": False, "reply": False, "eof": False}
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((src, sport))
# a blocking connect bounded by SO_SNDTIMEO: it succeeds when the socket reaches ESTABLISHED (a timeout-mode
# connect would also report the soft error of an ICMP that arrives right after, through SO_ERROR)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 1, 500000))
try:
    s.connect((dst, port)); r["connected"] = True
    s.settimeout(1.5)
    s.sendall(b"REQUEST")
    if s.recv(100).startswith(b"RESPONSE"):
        r["reply"] = True
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(100)
            if not d:
                r["eof"] = True
                break
except Exception as e:
    r["error"] = str(e)
print(json.dumps(r))
`

export interface KernelRun {
  readonly result: Connection
  readonly detail: string
  /** snapshot directories, one per namespace */
  readonly snapshots: readonly string[]
  readonly dir: string
}

/** Builds the scenario, runs the exchange, snapshots every namespace, tears it down. */
export async function runScenario(s: Scenario, o: {keep?: boolean} = {}): Promise<KernelRun> {
  teardown(s)
  const dir = mkdtempSync(join(tmpdir(), `${s.prefix ?? 'ldt'}-${s.name}-`))
  let server: ChildProcess | undefined
  try {
    for (const n of Object.keys(s.ns)) {
      sh(['ip', 'netns', 'add', nsName(s, n)])
      inNs(nsName(s, n), 'ip link set lo up; sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1')
    }
    for (const [a, ai, acidr, b, bi, bcidr] of s.links) {
      sh(['ip', 'link', 'add', ai, 'netns', nsName(s, a), 'type', 'veth', 'peer', 'name', bi, 'netns', nsName(s, b)])
      inNs(nsName(s, a), `ip addr add ${acidr} dev ${ai} && ip link set ${ai} up`)
      inNs(nsName(s, b), `ip addr add ${bcidr} dev ${bi} && ip link set ${bi} up`)
    }
    for (const [k, ports] of (s.lans ?? []).entries()) {
      const sw = nsName(s, `sw${k}`)
      sh(['ip', 'netns', 'add', sw])
      inNs(sw, 'ip link set lo up; ip link add br0 type bridge; ip link set br0 up')
      for (const [n, iface, cidr] of ports) {
        sh(['ip', 'link', 'add', iface, 'netns', nsName(s, n), 'type', 'veth', 'peer', 'name', `${iface}p`, 'netns', sw])
        inNs(sw, `ip link set ${iface}p master br0 && ip link set ${iface}p up`)
        inNs(nsName(s, n), `ip addr add ${cidr} dev ${iface} && ip link set ${iface} up`)
      }
    }
    for (const [n, spec] of Object.entries(s.ns)) for (const c of spec.setup) inNs(nsName(s, n), c)
    const status = join(dir, 'server.json')
    const udp = s.proto === 'udp'
    server = spawn('ip', ['netns', 'exec', nsName(s, s.server.ns), 'python3', '-c', udp ? UDP_SERVER_PY : SERVER_PY, String(s.server.port), status, s.server.bind ?? '0.0.0.0'], {stdio: 'ignore'})
    for (let i = 0; i < 100 && !existsSync(status + '.ready'); i++) execFileSync('sleep', ['0.05'])
    const [dst, port] = splitEp(s.client.connect)
    const out = sh(['ip', 'netns', 'exec', nsName(s, s.client.ns), 'python3', '-c', udp ? UDP_CLIENT_PY : CLIENT_PY, s.client.src, dst, port, String(CLIENT_PORT)])
    const cr = JSON.parse(out.trim()) as {connected: boolean; reply: boolean; eof: boolean; error?: string}
    // give the server's FIN and the client's last ACK a moment, then look for a server socket stuck in LAST-ACK
    execFileSync('sleep', ['0.4'])
    const lastAck = inNs(nsName(s, s.server.ns), 'ss -Htan state last-ack').trim()
    for (let i = 0; cr.reply && i < 60 && !existsSync(status); i++) execFileSync('sleep', ['0.1'])
    const st = existsSync(status) ? (JSON.parse(readFileSync(status, 'utf8')) as {eof: boolean}) : {eof: false}
    const result: Connection = {connected: cr.connected, reply: cr.reply, closed: cr.reply && cr.eof && st.eof && lastAck === ''}
    // every namespace is snapshotted at once with lvsdoctor's own `snapshot`
    const snapshots = Object.keys(s.ns).map((n) => join(dir, n))
    await Promise.all(
      Object.entries(s.ns).map(([n, spec]) =>
        run(['ip', 'netns', 'exec', nsName(s, n), 'node', join(ROOT, 'bin/run.js'), 'snapshot', '-o', join(dir, n), '--name', n, '--role', spec.role, '--json']),
      ),
    )
    return {result, detail: `client ${out.trim()} server ${JSON.stringify(st)} last-ack ${JSON.stringify(lastAck)}`, snapshots, dir}
  } finally {
    server?.kill('SIGKILL')
    if (!o.keep) teardown(s)
  }
}

export function cleanup(run: KernelRun | undefined): void {
  if (run) rmSync(run.dir, {recursive: true, force: true})
}

function run(argv: readonly string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const p = spawn(argv[0]!, argv.slice(1), {stdio: ['ignore', 'ignore', 'pipe']})
    let err = ''
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000)
    p.on('close', (code) => {
      clearTimeout(t)
      if (code === 0) ok()
      else fail(new Error(`${argv.join(' ')} exited ${code}: ${err}`))
    })
  })
}

function splitEp(ep: string): [string, string] {
  const i = ep.lastIndexOf(':')
  return [ep.slice(0, i), ep.slice(i + 1)]
}
