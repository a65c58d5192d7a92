import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseIp, formatIp} from '../../src/model/ip.js'
import {ParseError} from '../../src/model/source.js'
import {listenerFor, looksLikeSockets, parseListeners} from '../../src/snapshot/parsers/sockets.js'
import {detectFileType} from '../../src/snapshot/store.js'

const DIR = join(import.meta.dirname, '../../fixtures/sockets')
const read = (f: string) => readFileSync(join(DIR, f), 'utf8')
const show = (f: string) =>
  parseListeners(read(f), 'ss-ltnu.txt').listeners.map((l) => `${l.proto} ${l.addr ? formatIp(l.addr) : l.family === 'both' ? '*' : l.family === 4 ? '0.0.0.0' : '[::]'}${l.dev ? `%${l.dev}` : ''}:${l.port}`)

describe('listening sockets (ss, netstat)', () => {
  test('ss -Hltnu: every listener, wildcards by family, device bindings, IPv4-mapped addresses', () => {
    expect(show('ss-Hltnu.txt').sort()).toEqual(
      ['udp 0.0.0.0:53', 'udp 127.0.0.53%lo:54', 'udp *:5353', 'tcp 0.0.0.0%lvt-d0:9100', 'tcp 127.0.0.1:3306', 'tcp 0.0.0.0:22', 'tcp 0.0.0.0:80', 'tcp 10.9.0.1:8080', 'tcp 10.9.0.1:8443', 'tcp [::]:22', 'tcp *:443', 'tcp ::1:631'].sort(),
    )
  })

  test('the header, extra columns (-e) and a one-protocol listing (-ltn) give the same listeners', () => {
    const base = show('ss-Hltnu.txt').sort()
    expect(show('ss-ltnu.txt').sort()).toEqual(base)
    expect(show('ss-ltnue.txt').sort()).toEqual(base)
    expect(show('ss-ltn.txt').sort()).toEqual(base.filter((x) => x.startsWith('tcp')))
  })

  test('ss -tuna: established connections are not listeners, and are said so', () => {
    const t = parseListeners(read('ss-tuna.txt'), 'ss-ltnu.txt')
    expect(t.listeners.map((l) => `${l.proto}:${l.port}`).sort()).toEqual(show('ss-Hltnu.txt').map((x) => x.replace(/ .*:/, ':')).sort())
    expect(t.notModelled.map((n) => n.what)).toEqual(["2 socket(s) 'tcp ESTAB': not a TCP/UDP/SCTP listener, not used"])
  })

  test('netstat -ltnu[p]: the same sockets; `:::` (tcp6) taken as taking IPv4 too; no device bindings', () => {
    const n = show('netstat-ltnu.txt').sort()
    expect(show('netstat-ltnup.txt').sort()).toEqual(n)
    expect(n).toContain('tcp *:443')
    expect(n).toContain('tcp *:22')
    expect(n).toContain('tcp 0.0.0.0:9100')
    expect(n).toContain('udp 127.0.0.53:54')
    expect(n).toHaveLength(12)
  })

  test('content detection: every listing is ss-ltnu.txt, a conntrack listing is not', () => {
    for (const f of ['ss-Hltnu.txt', 'ss-ltnu.txt', 'ss-ltnue.txt', 'ss-ltn.txt', 'ss-tuna.txt', 'netstat-ltnu.txt', 'netstat-ltnup.txt']) {
      expect(looksLikeSockets(read(f)), f).toBe(true)
      expect(detectFileType(Buffer.from(read(f))), f).toBe('ss-ltnu.txt')
    }
    const conntrack = 'tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1\n'
    expect(looksLikeSockets(conntrack)).toBe(false)
    expect(detectFileType(Buffer.from(conntrack))).toBe('conntrack.txt')
  })

  test('which listener takes a connection', () => {
    const ls = parseListeners(read('ss-Hltnu.txt'), 'ss-ltnu.txt').listeners
    const ip = (s: string) => parseIp(s)!
    expect(listenerFor(ls, 'tcp', ip('198.51.100.1'), 80, 'eth0')?.loc.line).toBe(7)
    expect(listenerFor(ls, 'tcp', ip('198.51.100.1'), 443, 'eth0')?.port).toBe(443)
    // [::]:22 is v6only; 0.0.0.0:22 takes IPv4
    expect(listenerFor(ls, 'tcp', ip('198.51.100.1'), 22)?.family).toBe(4)
    expect(listenerFor(ls, 'tcp', ip('198.51.100.1'), 3306)).toBeUndefined()
    expect(listenerFor(ls, 'tcp', ip('127.0.0.1'), 3306, 'lo')).toBeDefined()
    expect(listenerFor(ls, 'tcp', ip('10.9.0.1'), 8080, 'lvt-d0')).toBeDefined()
    expect(listenerFor(ls, 'tcp', ip('10.9.0.2'), 8080, 'lvt-d0')).toBeUndefined()
    // bound to lvt-d0: not for a packet that came in on another device
    expect(listenerFor(ls, 'tcp', ip('10.9.0.1'), 9100, 'lvt-d0')).toBeDefined()
    expect(listenerFor(ls, 'tcp', ip('10.9.0.1'), 9100, 'eth1')).toBeUndefined()
    expect(listenerFor(ls, 'udp', ip('10.9.0.1'), 53)).toBeDefined()
    expect(listenerFor(ls, 'tcp', ip('10.9.0.1'), 53)).toBeUndefined()
    expect(listenerFor(ls, 'udp', ip('10.9.0.1'), 5353)?.family).toBe('both')
  })

  test('an empty listing is known-empty; a garbled line is a parse error with its line', () => {
    expect(parseListeners('', 'ss-ltnu.txt').listeners).toEqual([])
    expect(() => parseListeners('tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:*\nthis is not ss\n', 'ss-ltnu.txt')).toThrow(ParseError)
    try {
      parseListeners('tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:*\ntcp LISTEN 0 128 0.0.0.0:99999 0.0.0.0:*\n', 'ss-ltnu.txt')
    } catch (e) {
      expect((e as ParseError).line).toBe(2)
      expect((e as ParseError).message).toMatch(/ss-ltnu.txt:2/)
    }
  })
})
