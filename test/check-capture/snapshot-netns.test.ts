// `lvsdoctor snapshot --capture-seconds N` for real, in ldk- network namespaces: traffic on a veth, the
// snapshot's capture.pcap holds it and our reader parses it, the command ends within the bound plus the usual
// collection time, nothing on the host changes, and the capture's gaps (no such interface, no pcap module,
// not root) leave a snapshot without capture.pcap and a line saying why.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {execFileSync, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {analyseCaptureFile} from '../../src/capture/analyse.js'
import {readAll} from '../capture/helpers.js'
import {addVethPair, clientTraffic, ip, removeNamespaces, runIn, type Run} from '../netns.js'
import {runCheck} from '../../src/services/check-command.js'

const ROOT = join(import.meta.dirname, '../..')
const CLI = join(ROOT, 'bin/run.js')
const tag = String(process.pid % 10000)
const A = `ldk-sa${tag}`
const B = `ldk-sb${tag}`
const VA = `ldk-va${tag}`
const VB = `ldk-vb${tag}`

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces'
  if (!existsSync(join(ROOT, 'dist/snapshot/capture.js'))) return 'needs the build (npx tsc -p tsconfig.build.json)'
  if (!existsSync(join(ROOT, 'node_modules/pcap/build/Release/pcap_binding.node'))) return 'the optional pcap module is not built'
  for (const c of ['ip', 'iptables', 'python3', 'setpriv']) if (!has(c)) return `needs ${c}`
  return undefined
}
const skip = why()
if (skip) console.log(`snapshot capture netns tests skipped: ${skip}`)

const nsx = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', A, ...args], {encoding: 'utf8'})
let work = ''
const peers: ChildProcess[] = []

function traffic(seconds: number): void {
  peers.push(clientTraffic(A, '10.73.0.2', 8080, seconds))
}

function cli(args: string[], opts: {env?: NodeJS.ProcessEnv; prefix?: string[]} = {}): Promise<Run> {
  return runIn(A, [...(opts.prefix ?? []), process.execPath, CLI, ...args], {env: opts.env, cwd: ROOT})
}

/** what capturing must not change: rules, routes, addresses, link flags (no PROMISC), sysctls */
function state(): string {
  const sysctl = nsx('sysctl', 'net.ipv4.conf', 'net.ipv4.ip_forward').split('\n').sort().join('\n')
  return [nsx('iptables-save').replace(/^#.*\n/gm, ''), nsx('ip', '-d', 'link', 'show'), nsx('ip', 'addr'), nsx('ip', 'route', 'show', 'table', 'all'), nsx('ip', 'rule'), sysctl].join('\n--\n')
}

let plainMs = 0

describe.skipIf(skip)('snapshot --capture-seconds (netns)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ldk-snapns-'))
    chmodSync(work, 0o777)
    addVethPair({a: A, b: B, va: VA, vb: VB, net: '10.73.0'}, (ns) => {
      // no IPv6 link-local addresses going through DAD while the state is compared
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])
    })
    ip('-n', A, 'route', 'add', 'default', 'via', '10.73.0.2')
    // a DNAT service on A: its VIP and realserver make the filter
    nsx('iptables', '-t', 'nat', '-A', 'PREROUTING', '-d', '10.73.0.100/32', '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.73.0.2:8080')
    peers.push(spawn('ip', ['netns', 'exec', B, 'python3', join(ROOT, 'test/capture/tcp-peer.py'), 'server', '8080', '90'], {stdio: 'ignore'}))
    // the usual collection time here, without a capture
    const r = await cli(['snapshot', '-o', join(work, 'plain'), '--json'])
    if (r.code !== 0) throw new Error(`snapshot failed (${r.code}): ${r.stderr}`)
    plainMs = r.ms
  }, 60_000)

  afterAll(() => {
    removeNamespaces([A, B], peers)
    if (work) rmSync(work, {recursive: true, force: true})
  })

  it('--capture-seconds 2 --iface: capture.pcap holds the traffic, within the bound plus the collection time, read-only', async () => {
    const dir = join(work, 'two')
    const before = state()
    traffic(4)
    const r = await cli(['snapshot', '-o', dir, '--capture-seconds', '2', '--iface', VA, '--json'])
    const after = state()
    expect(r.code, r.stderr).toBe(0)
    console.log(`snapshot without capture ${plainMs} ms; with --capture-seconds 2: ${r.ms} ms`)
    expect(r.ms).toBeGreaterThanOrEqual(2000)
    // the bound, the collection as measured without a capture, and the capture worker's start (node + libpcap)
    expect(r.ms).toBeLessThan(2000 + plainMs + 1500)
    expect(after).toBe(before)
    expect(after).not.toMatch(/PROMISC/)
    const j = JSON.parse(r.stdout)
    expect(j.files).toContain('capture.pcap')
    const filter = '(host 10.73.0.100 and port 80) or host 10.73.0.2 or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080'
    expect(j.capture).toMatchObject({iface: VA, filter, seconds: 2, snaplen: 512, exitCode: 0, stoppedBy: 'seconds'})
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
    expect(m.commands['capture.pcap']).toMatchObject({argv: ['libpcap', '--iface', VA, '--seconds', '2', '--snaplen', '512', '--filter', filter], packets: j.capture.packets})
    const a = await analyseCaptureFile(join(dir, 'capture.pcap'))
    expect(a.packets).toBe(j.capture.packets)
    expect(a.packets).toBeGreaterThan(10)
    expect(a.flows).toBeGreaterThan(1)
    expect(a.symptoms).toEqual([])
    expect(a.interfaces[0]!.linkType).toBe(1)
    const {seen} = await readAll(join(dir, 'capture.pcap'))
    // the client's packets to the server and the server's answers (the filter lets only 10.73.0.2 and ICMP in)
    expect(seen.filter((p) => p.dport === 8080).length).toBeGreaterThan(5)
    expect(seen.filter((p) => p.sport === 8080).length).toBeGreaterThan(5)
    // check reads the capture of the snapshot
    let out = ''
    const code = await runCheck([dir], {format: 'json', failOn: 'none', ignore: [], version: 't', out: (s) => void (out += s), err: () => {}})
    expect(code).toBe(0)
    expect(JSON.parse(out).captures).toMatchObject([{host: expect.any(String), file: 'capture.pcap', packets: a.packets, vips: ['10.73.0.100:80'], symptoms: 0}])
  }, 30_000)

  it('without --iface: the default route\'s interface; a .tar.gz keeps the capture', async () => {
    const tgz = join(work, 'default.tar.gz')
    traffic(2)
    const r = await cli(['snapshot', '-o', tgz, '--capture-seconds', '1', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).capture).toMatchObject({iface: VA, exitCode: 0})
    const list = execFileSync('tar', ['-tzf', tgz], {encoding: 'utf8'})
    expect(list).toMatch(/\/capture\.pcap$/m)
  }, 30_000)

  it('progress: the capture is a line of the task list on stderr', async () => {
    const r = await cli(['snapshot', '-o', join(work, 'progress'), '--capture-seconds', '1', '--iface', VA])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/capture\.pcap: 1 s on ldk-va\d+, once the rest is collected/)
    expect(r.stderr).toMatch(/capture\.pcap \(\d+ packets on ldk-va\d+ in 1\.\d s, stopped by seconds\)/)
    expect(r.stdout).toMatch(/ {2}capture\.pcap: \d+ packets on ldk-va\d+/)
  }, 30_000)

  it.each([
    ['no such interface', ['--iface', 'ldk-nosuch0'], {}, undefined, /cannot capture on ldk-nosuch0/],
    ['no pcap module', ['--iface', VA], {LVSDOCTOR_PCAP_MODULE: '/nonexistent/pcap'}, undefined, /apt-get install libpcap-dev.*npm rebuild pcap/],
    ['not root', ['--iface', VA], {}, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'env', 'HOME=/tmp'], /^permission denied \(run as root\): cannot capture on ldk-va/],
  ] as const)('gap: %s: the snapshot is written without capture.pcap, the manifest says why', async (name, args, env, prefix, expected) => {
    const parent = join(work, `gap-${name.replace(/ /g, '-')}`)
    mkdirSync(parent, {mode: 0o777})
    chmodSync(parent, 0o777)
    const dir = join(parent, 's')
    const r = await cli(['snapshot', '-o', dir, '--capture-seconds', '1', ...args, '--json'], {env, ...(prefix ? {prefix: [...prefix]} : {})})
    expect(r.code, r.stderr).toBe(0)
    expect(r.ms).toBeLessThan(plainMs + 1000 + 4000)
    expect(readdirSync(dir)).not.toContain('capture.pcap')
    const rec = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).commands['capture.pcap']
    expect(rec.exitCode).toBeNull()
    expect(rec.gap).toMatch(expected)
    expect(JSON.parse(r.stdout).gaps.find((g: {file: string}) => g.file === 'capture.pcap').gap).toBe(rec.gap)
  }, 30_000)
})
