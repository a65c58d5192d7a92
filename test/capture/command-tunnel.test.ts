// The capture command on LVS-TUN captures (fixtures/captures/tunnel, see its README): the JSON report counts the
// packets seen inside a tunnel, and --gue-port reaches the decoder (the built CLI refuses a port out of range).
import {describe, expect, it} from 'vitest'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {runCapture, type CaptureReport} from '../../src/services/capture.js'

const ROOT = join(import.meta.dirname, '../..')
const TUN = join(ROOT, 'fixtures/captures/tunnel')

async function json(o: Partial<Parameters<typeof runCapture>[0]>): Promise<CaptureReport> {
  let out = ''
  await runCapture({vips: [], json: true, version: '0.0.0', out: (s) => (out += s), err: () => {}, ...o})
  return JSON.parse(out) as CaptureReport
}

describe('capture --read of tunnelled traffic', () => {
  it('says how many packets were seen inside a tunnel, and leaves the field out when none were', async () => {
    expect((await json({read: join(TUN, 'ipip-healthy-director.pcap')})).tunnelled).toBe(10)
    expect((await json({read: join(ROOT, 'fixtures/captures/healthy-dnat-client.pcap')})).tunnelled).toBeUndefined()
  })
  it('takes --gue-port to the decoder: GUE (variant 0) on another port is unwrapped only when the port is given', async () => {
    // the realserver's GUE capture with its tunnel port 6080 rewritten to 5555 (UDP checksum cleared: optional in IPv4) and the inner header's checksum spoiled
    const buf = Buffer.from(readFileSync(join(TUN, 'gue-healthy-rs.pcap')))
    const sll2 = buf.readUInt32LE(20) === 276
    let off = 24
    let moved = 0
    while (off + 16 <= buf.length) {
      const incl = buf.readUInt32LE(off + 8)
      const pkt = off + 16
      // Linux cooked v2 (the `any` capture: protocol first, 20 bytes) or Ethernet; IPv4, UDP to 6080
      const [etype, ip] = sll2 ? [buf.readUInt16BE(pkt), pkt + 20] : [buf.readUInt16BE(pkt + 12), pkt + 14]
      if (etype === 0x0800 && buf[ip + 9] === 17) {
        const udp = ip + (buf[ip]! & 0x0f) * 4
        if (buf.readUInt16BE(udp + 2) === 6080) {
          buf.writeUInt16BE(5555, udp + 2)
          buf.writeUInt16BE(0, udp + 6)
          // and a wrong checksum in the inner IPv4 header (after the 4-byte GUE header): on a port it is not told
          // about, the decoder then has no reason to take the payload for GUE
          buf.writeUInt16BE(buf.readUInt16BE(udp + 8 + 4 + 10) ^ 0xffff, udp + 8 + 4 + 10)
          moved++
        }
      }
      off = pkt + incl
    }
    expect([1, 276]).toContain(buf.readUInt32LE(20))
    expect(moved).toBeGreaterThan(0)
    const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-gue-'))
    const file = join(dir, 'gue-5555.pcap')
    writeFileSync(file, buf)
    try {
      const plain = await json({read: file})
      const given = await json({read: file, guePorts: [5555]})
      expect(plain.tunnelled ?? 0).toBe(0)
      expect(given.tunnelled).toBe(moved)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
  it('the CLI refuses a port out of range with exit code 2 and no stack trace', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'capture', '--read', join(TUN, 'gue-healthy-rs.pcap'), '--gue-port', '70000'], {encoding: 'utf8'})
    expect(r.status).toBe(2)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
