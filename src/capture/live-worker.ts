// The child process that holds the libpcap handle (see live.ts for why it is a child). It is the only code
// that touches node_pcap: it opens the live handle, writes each packet with our own PcapWriter, and on a
// bound, a signal or the parent's word it closes the handle, flushes the file, reports and exits: node_pcap's
// close() leaves its poll handle in the event loop, so this process ends with process.exit, never by itself.
import {createRequire} from 'node:module'
import {endianness} from 'node:os'
import {PcapWriter} from './writer.js'
import type {WorkerReply, WorkerStart} from './live.js'

/** node_pcap as far as we use it (its own typings are incomplete). */
interface PcapModule {
  warningHandler: (msg: string) => void
  createSession(device: string, options: {filter?: string; buffer_timeout?: number; snap_length?: number; promiscuous?: boolean}): PcapSession
}

interface PcapSession {
  readonly link_type: string
  on(event: 'packet', cb: (p: {buf: Buffer; header: Buffer}) => void): void
  close(): void
  stats(): {ps_recv: number; ps_drop: number; ps_ifdrop: number}
  /** internals used to drain the ring before closing */
  readonly session?: {dispatch(buf: Buffer, header: Buffer): number}
  readonly buf?: Buffer
  readonly header?: Buffer
}

const LINK_TYPES: Record<string, number> = {
  LINKTYPE_NULL: 0,
  LINKTYPE_ETHERNET: 1,
  LINKTYPE_RAW: 101,
  LINKTYPE_IEEE802_11_RADIO: 127,
  LINKTYPE_LINUX_SLL: 113,
}

/** node_pcap names a few link types and prints "Unknown linktype N" (a DLT number) for the others. */
export function linkTypeNumber(name: string): number {
  const known = LINK_TYPES[name]
  if (known !== undefined) return known
  const m = /(\d+)\s*$/.exec(name)
  return m ? Number(m[1]) : -1
}

function send(msg: WorkerReply, then?: () => void): void {
  if (process.send) process.send(msg, () => then?.())
  else then?.()
}

function run(start: WorkerStart): void {
  let pcap: PcapModule
  try {
    const require = createRequire(import.meta.url)
    pcap = require(process.env.LVSDOCTOR_PCAP_MODULE ?? 'pcap') as PcapModule
  } catch (e) {
    send({type: 'error', unavailable: true, message: (e as Error).message.split('\n')[0]!}, () => process.exit(3))
    return
  }
  const warnings: string[] = []
  pcap.warningHandler = (w: string) => void warnings.push(w)
  let session: PcapSession
  try {
    session = pcap.createSession(start.iface, {filter: start.filter, buffer_timeout: 0, snap_length: start.snaplen, promiscuous: false})
  } catch (e) {
    send({type: 'error', unavailable: false, message: `cannot capture on ${start.iface}: ${(e as Error).message}`}, () => process.exit(3))
    return
  }
  const linkType = linkTypeNumber(session.link_type)
  let writer: PcapWriter
  try {
    writer = new PcapWriter(start.out, {linkType, snaplen: start.snaplen})
  } catch (e) {
    session.close()
    send({type: 'error', unavailable: false, message: `cannot write ${start.out}: ${(e as Error).message}`}, () => process.exit(3))
    return
  }
  const le = endianness() === 'LE'
  let stopped = false
  const stop = (by: 'seconds' | 'count' | 'signal' | 'parent'): void => {
    if (stopped) return
    stopped = true
    // drain what the kernel already holds, then close the handle and the file
    try {
      if (session.session && session.buf && session.header) session.session.dispatch(session.buf, session.header)
    } catch {
      // the handle may already be gone: keep what we have
    }
    let drops = 0
    try {
      const st = session.stats()
      drops = st.ps_drop + st.ps_ifdrop
    } catch {
      // stats are best effort
    }
    try {
      session.close()
    } catch {
      // closing a handle that failed is not worth a crash
    }
    writer.close()
    send({type: 'done', packets: writer.packets, stoppedBy: by, drops, linkType, warnings}, () => process.exit(0))
  }
  session.on('packet', (p) => {
    if (stopped) return
    const h = p.header
    const sec = le ? h.readUInt32LE(0) : h.readUInt32BE(0)
    const usec = le ? h.readUInt32LE(4) : h.readUInt32BE(4)
    const caplen = le ? h.readUInt32LE(8) : h.readUInt32BE(8)
    const len = le ? h.readUInt32LE(12) : h.readUInt32BE(12)
    writer.write(sec, usec, p.buf.subarray(0, Math.min(caplen, p.buf.length)), len)
    if (writer.packets % 256 === 0) writer.flush()
    if (start.count !== undefined && writer.packets >= start.count) stop('count')
  })
  send({type: 'started', linkType, warnings})
  if (start.seconds !== undefined) setTimeout(() => stop('seconds'), start.seconds * 1000)
  // flush now and then so that a killed worker still leaves a readable file
  setInterval(() => writer.flush(), 500).unref()
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => stop('signal'))
  process.on('message', (m: {type?: string}) => {
    if (m?.type === 'stop') stop('parent')
  })
  process.on('disconnect', () => stop('parent'))
}

let order: WorkerStart | undefined
try {
  order = JSON.parse(process.argv[2] ?? '') as WorkerStart
} catch {
  order = undefined
}
if (order?.type === 'start') run(order)
else {
  process.stderr.write('live-worker: expected a start order as its argument\n')
  process.exit(2)
}
