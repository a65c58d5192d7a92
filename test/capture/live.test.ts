// Live capture through the built CLI inside network namespaces: traffic on a veth, the process ends by
// itself within its bound (seconds, count, Ctrl-C) and keeps what it captured; without the pcap module it
// says what to install and exits 2.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {analyseCaptureFile} from '../../src/capture/analyse.js'
import {buildFilter} from '../../src/capture/live.js'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {addVethPair, clientTraffic, removeNamespaces, runIn, type Run} from '../netns.js'

const ROOT = join(import.meta.dirname, '../..')
const CLI = join(ROOT, 'bin/run.js')
const tag = String(process.pid % 10000)
const A = `ldc-la${tag}`
const B = `ldc-lb${tag}`
const VA = `ldc-va${tag}`
const VB = `ldc-vb${tag}`

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces'
  if (!existsSync(join(ROOT, 'dist/commands/capture.js'))) return 'needs the build (npm run build)'
  if (!existsSync(join(ROOT, 'node_modules/pcap/build/Release/pcap_binding.node'))) return 'the optional pcap module is not built'
  try {
    execFileSync('ip', ['-V'], {stdio: 'ignore'})
  } catch {
    return 'needs iproute2'
  }
  return undefined
}
const skip = why()
if (skip) console.log(`live capture tests skipped: ${skip}`)

let dir: string
const peers: ChildProcess[] = []

function traffic(seconds: number): ChildProcess {
  // a client in A connecting to a server in B over and over
  const p = clientTraffic(A, '10.68.0.2', 8080, seconds)
  peers.push(p)
  return p
}

function cli(args: string[], opts: {env?: NodeJS.ProcessEnv; onStderr?: (s: string, p: ChildProcess) => void} = {}): Promise<Run> {
  return runIn(A, [process.execPath, CLI, ...args], opts)
}

describe.skipIf(skip)('live capture (netns)', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ldc-live-'))
    addVethPair({a: A, b: B, va: VA, vb: VB, net: '10.68.0'})
    const srv = spawn('ip', ['netns', 'exec', B, 'python3', join(import.meta.dirname, 'tcp-peer.py'), 'server', '8080', '60'], {stdio: 'ignore'})
    peers.push(srv)
  })

  afterAll(() => {
    removeNamespaces([A, B], peers)
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  it('captures for --seconds 2, writes -w, and exits by itself within the bound', async () => {
    const file = join(dir, 'two-seconds.pcap')
    traffic(2.5)
    const r = await cli(['capture', '--iface', VA, '--seconds', '2', '--vip', '10.68.0.2:8080', '--json', '-w', file])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.ms).toBeLessThan(2000 + 4000)
    expect(r.ms).toBeGreaterThanOrEqual(2000)
    const j = JSON.parse(r.stdout)
    expect(j.capture).toMatchObject({source: 'live', iface: VA, stoppedBy: 'seconds', written: file, filter: '(host 10.68.0.2 and port 8080) or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080'})
    expect(j.packets).toBeGreaterThan(10)
    expect(j.symptoms).toEqual([])
    const again = await analyseCaptureFile(file)
    expect(again.packets).toBe(j.packets)
    expect(again.interfaces[0]!.linkType).toBe(1)
    expect(again.flows).toBeGreaterThan(1)
    const td = execFileSync('tcpdump', ['-nr', file], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']})
    expect(td.trim().split('\n')).toHaveLength(j.packets)
  })

  it('stops at --count packets', async () => {
    traffic(3)
    const r = await cli(['capture', '--iface', VA, '--count', '5', '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout)
    expect(j.capture.stoppedBy).toBe('count')
    expect(j.packets).toBe(5)
    expect(r.ms).toBeLessThan(3000 + 4000)
  })

  it('stops on Ctrl-C (SIGINT) keeping what it has', async () => {
    traffic(2)
    const r = await cli(['capture', '--iface', VA, '--seconds', '60'], {
      onStderr: (s, p) => {
        // once capturing, let traffic flow a moment, then Ctrl-C
        if (s.includes('capturing on') && !(p as ChildProcess & {sent?: boolean}).sent) {
          ;(p as ChildProcess & {sent?: boolean}).sent = true
          setTimeout(() => p.kill('SIGINT'), 1000)
        }
      },
    })
    expect(r.code).toBe(0)
    expect(r.ms).toBeLessThan(10_000)
    expect(r.stdout).toMatch(/stopped by (Ctrl-C|parent)/)
    expect(r.stdout).toMatch(/pcap, \d+ packets/)
    expect(Number(/pcap, (\d+) packets/.exec(r.stdout)![1])).toBeGreaterThan(0)
  })

  it('says what to install when the pcap module cannot load, exit 2', async () => {
    const r = await cli(['capture', '--iface', VA, '--seconds', '1'], {env: {LVSDOCTOR_PCAP_MODULE: '/nonexistent/pcap'}})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/apt-get install libpcap-dev/)
    expect(r.stderr).toMatch(/npm rebuild pcap/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('fails cleanly on an interface that does not exist', async () => {
    const r = await cli(['capture', '--iface', 'ldc-nosuch0', '--seconds', '1'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/cannot capture on ldc-nosuch0/)
  })
})

describe('BPF filter', () => {
  it('covers the VIP:port, the realservers and ICMP', () => {
    expect(buildFilter([])).toBe('')
    expect(buildFilter([parseEndpoint('192.0.2.10:80')!], [parseIp('10.0.0.5')!])).toBe('(host 192.0.2.10 and port 80) or host 10.0.0.5 or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080')
    expect(buildFilter([parseEndpoint('[2001:db8::10]:443')!])).toBe('(ip6 host 2001:db8::10 and port 443) or icmp or icmp6 or ip proto 4 or ip proto 41 or ip proto 47 or udp dst port 6080')
  })
})
