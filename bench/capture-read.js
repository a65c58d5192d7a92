#!/usr/bin/env node
// Benchmark of `capture --read`: packets per second and peak RSS reading and analysing a capture of
// 1,000,000 small TCP packets over 125,000 flows, measured in the same run against
// `TZ=UTC tcpdump -ttnr FILE > /dev/null` and node_pcap's offline decode. Runs against dist/ (build first).
//
//   node bench/capture-read.js [--packets N] [--window W] [--clients N] [--runs R] [--keep FILE]
//
// --clients: distinct client addresses (default 4096). tcpdump slows down with the number of distinct
// addresses it has printed (about 8k packets/s here with 65536 of them), so the default keeps it realistic.
// --window: how many flows are open at once (default 1000; 125000 keeps every flow open until the last
// FINs, the worst case for the flow table); each flow is SYN, SYN/ACK, ACK, request, response, FIN, FIN, ACK.
// tcpdump runs once: it keeps state for every TCP flow it ever saw, so it slows down as the flows add up.
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, statSync, openSync, writeSync, closeSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, dirname} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {createRequire} from 'node:module'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DIST = join(ROOT, 'dist/capture/analyse.js')

function arg(name, dflt) {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : dflt
}

// ---- child modes: one measurement per process, so RSS is the reader's own -----------------------------------
if (process.argv[2] === '--child-ours') {
  const {analyseCaptureFile} = await import(pathToFileURL(DIST).href)
  const t0 = process.hrtime.bigint()
  const r = await analyseCaptureFile(process.argv[3])
  const ns = Number(process.hrtime.bigint() - t0)
  process.stdout.write(JSON.stringify({packets: r.packets, flows: r.flows, symptoms: r.symptoms.length, seconds: ns / 1e9, maxRssMB: process.resourceUsage().maxRSS / 1024}))
  process.exit(0)
}
if (process.argv[2] === '--child-nodepcap') {
  const require = createRequire(import.meta.url)
  const pcap = require(join(ROOT, 'node_modules/pcap'))
  const t0 = process.hrtime.bigint()
  let packets = 0
  let errors = 0
  const s = pcap.createOfflineSession(process.argv[3], {})
  s.on('packet', (raw) => {
    packets++
    try {
      pcap.decode.packet(raw)
    } catch {
      errors++
    }
  })
  s.on('complete', () => {
    const ns = Number(process.hrtime.bigint() - t0)
    process.stderr.write(JSON.stringify({packets, errors, seconds: ns / 1e9, maxRssMB: process.resourceUsage().maxRSS / 1024}))
    process.exit(0)
  })
}

if (process.argv[2] && process.argv[2].startsWith('--child')) {
  // handled above (node_pcap ends on its 'complete' event)
} else await main()

// ---- the generator --------------------------------------------------------------------------------------------------

/** Writes N Ethernet/IPv4/TCP frames of 54 bytes (no payload bytes captured: snaplen 54) over N/8 flows. */
function generate(file, total, window, clients) {
  const flows = Math.ceil(total / 8)
  const fd = openSync(file, 'w')
  const head = Buffer.alloc(24)
  head.writeUInt32LE(0xa1b2c3d4, 0)
  head.writeUInt16LE(2, 4)
  head.writeUInt16LE(4, 6)
  head.writeUInt32LE(54, 16)
  head.writeUInt32LE(1, 20)
  writeSync(fd, head)
  const REC = 16 + 54
  const buf = Buffer.alloc(REC * 8192)
  let used = 0
  let written = 0
  const t0 = 1_700_000_000
  const flush = () => {
    writeSync(fd, buf, 0, used)
    used = 0
  }
  // per step: [from client?, flags, payload length on the wire]
  const steps = [
    [true, 0x02, 0], [false, 0x12, 0], [true, 0x10, 0], [true, 0x18, 100],
    [false, 0x18, 200], [true, 0x11, 0], [false, 0x11, 0], [true, 0x10, 0],
  ]
  const server = (10 << 24) | (100 << 16) | 1
  for (let base = 0; base < flows && written < total; base += window) {
    const end = Math.min(flows, base + window)
    for (let s = 0; s < 8; s++) {
      const [fromClient, flags, plen] = steps[s]
      for (let f = base; f < end && written < total; f++) {
        // `clients` client addresses in 172.16/16, each with as many source ports as it needs
        const caddr = (172 << 24) | (16 << 16) | (f % clients)
        const cport = 1024 + Math.floor(f / clients)
        const isn = (f * 2654435761) >>> 0
        const ssn = (f * 40503 + 7) >>> 0
        // sequence numbers as a real exchange has them
        const cseq = [isn, 0, isn + 1, isn + 1, 0, isn + 101, 0, isn + 102][s]
        const sseq = [0, ssn, 0, 0, ssn + 1, 0, ssn + 201, 0][s]
        const ack = [0, isn + 1, ssn + 1, ssn + 1, isn + 101, ssn + 201, isn + 102, ssn + 202][s]
        const o = used
        const t = t0 + written * 1e-6
        buf.writeUInt32LE(Math.floor(t), o)
        buf.writeUInt32LE(Math.round((t % 1) * 1e6) % 1e6, o + 4)
        buf.writeUInt32LE(54, o + 8)
        buf.writeUInt32LE(54 + plen, o + 12)
        const p = o + 16
        buf.fill(0, p, p + 54)
        buf[p] = 2
        buf[p + 5] = fromClient ? 1 : 2
        buf[p + 6] = 2
        buf[p + 11] = fromClient ? 2 : 1
        buf.writeUInt16BE(0x0800, p + 12)
        const ip = p + 14
        buf[ip] = 0x45
        buf.writeUInt16BE(40 + plen, ip + 2)
        buf[ip + 6] = 0x40
        buf[ip + 8] = 64
        buf[ip + 9] = 6
        buf.writeUInt32BE((fromClient ? caddr : server) >>> 0, ip + 12)
        buf.writeUInt32BE((fromClient ? server : caddr) >>> 0, ip + 16)
        let sum = 0
        for (let i = 0; i < 20; i += 2) sum += buf.readUInt16BE(ip + i)
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
        buf.writeUInt16BE(~sum & 0xffff, ip + 10)
        const tcp = ip + 20
        buf.writeUInt16BE(fromClient ? cport : 80, tcp)
        buf.writeUInt16BE(fromClient ? 80 : cport, tcp + 2)
        buf.writeUInt32BE((fromClient ? cseq : sseq) >>> 0, tcp + 4)
        buf.writeUInt32BE(s === 0 ? 0 : ack >>> 0, tcp + 8)
        buf[tcp + 12] = 0x50
        buf[tcp + 13] = flags
        buf.writeUInt16BE(64240, tcp + 14)
        used += REC
        written++
        if (used === buf.length) flush()
      }
    }
  }
  flush()
  closeSync(fd)
  return {packets: written, flows}
}

function child(args, stdoutIsResult = true) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => stdoutIsResult && (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(stdoutIsResult ? out : err.slice(err.lastIndexOf('{'))))
      } catch {
        reject(new Error(`child ${args[0]} failed (${code}): ${err.slice(-500)}`))
      }
    })
  })
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main() {
  if (!existsSync(DIST)) {
    console.error('bench/capture-read.js: build first (npx tsc -p tsconfig.build.json)')
    process.exit(2)
  }
  const total = Number(arg('--packets', '1000000'))
  const window = Number(arg('--window', '1000'))
  const clients = Math.min(65536, Number(arg('--clients', '4096')))
  const runs = Number(arg('--runs', '3'))
  const dir = mkdtempSync(join(tmpdir(), 'ldc-bench-'))
  const file = arg('--keep', join(dir, 'bench.pcap'))
  try {
    let t = Date.now()
    const g = generate(file, total, window, clients)
    const mb = statSync(file).size / 1e6
    console.log(`generated ${g.packets} packets over ${g.flows} flows from ${clients} clients (${window} open at once), ${mb.toFixed(1)} MB in ${Date.now() - t} ms`)

    const ours = []
    for (let i = 0; i < runs; i++) ours.push(await child(['--child-ours', file]))
    const o = ours.map((r) => r.packets / r.seconds)
    const best = ours[o.indexOf(Math.max(...o))]

    const td = []
    const tcpdump = spawnSync('tcpdump', ['--version'], {stdio: 'ignore'}).status === 0
    if (tcpdump) {
      for (let i = 0; i < 1; i++) {
        t = process.hrtime.bigint()
        const r = spawnSync('tcpdump', ['-ttnr', file], {env: {...process.env, TZ: 'UTC'}, stdio: ['ignore', 'ignore', 'ignore']})
        if (r.status !== 0) throw new Error('tcpdump failed')
        td.push(total / (Number(process.hrtime.bigint() - t) / 1e9))
      }
    }

    const np = []
    const hasPcap = existsSync(join(ROOT, 'node_modules/pcap/build/Release/pcap_binding.node'))
    if (hasPcap) for (let i = 0; i < runs; i++) np.push(await child(['--child-nodepcap', file], false))

    const fmt = (x) => `${(x / 1e6).toFixed(2)}M packets/s`
    console.log(`lvsdoctor read+analyse : ${fmt(median(o))} (median of ${runs}; best ${fmt(Math.max(...o))}), peak RSS ${median(ours.map((r) => r.maxRssMB)).toFixed(0)} MB, ${best.flows} flows, ${best.symptoms} symptoms`)
    if (tcpdump) console.log(`TZ=UTC tcpdump -ttnr    : ${fmt(median(td))} (one run)`)
    else console.log('tcpdump                : not installed')
    if (hasPcap) console.log(`node_pcap offline decode: ${fmt(median(np.map((r) => r.packets / r.seconds)))}, peak RSS ${median(np.map((r) => r.maxRssMB)).toFixed(0)} MB, ${np[0].errors} decode errors`)
    else console.log('node_pcap              : not built')
    const target = median(o) >= 2.5e6 && median(ours.map((r) => r.maxRssMB)) < 100
    console.log(`target (>= 2.5M packets/s, RSS < 100 MB): ${target ? 'met' : 'NOT met'}`)
    console.log(JSON.stringify({bench: 'capture-read', packets: total, flows: g.flows, window, clients, ours: {pps: median(o), rssMB: median(ours.map((r) => r.maxRssMB))}, tcpdump: tcpdump ? {pps: median(td)} : null, nodePcap: hasPcap ? {pps: median(np.map((r) => r.packets / r.seconds))} : null}))
  } finally {
    if (!process.argv.includes('--keep')) rmSync(dir, {recursive: true, force: true})
  }
}
