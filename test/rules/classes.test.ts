// Address classes (engine/classes.ts) and the evaluations shared per class (engine/path.ts): two addresses of
// one class must meet exactly the same fate at every hook, whatever the rules; a rule that tells them apart
// must put them in different classes.
import fc from 'fast-check'
import {describe, expect, test} from 'vitest'
import {formatIp, type IpAddr} from '../../src/model/ip.js'
import {hostFromFiles} from '../../src/snapshot/store.js'
import {addrClass, type Scope} from '../../src/rules/engine/classes.js'
import {HostView} from '../../src/rules/engine/host.js'
import {ctView} from '../../src/rules/engine/ctmodel.js'
import {flowPacket} from '../../src/rules/engine/packets.js'
import {hookByDstClass, received, receivedBySrcClass, receivedSharingTail} from '../../src/rules/engine/path.js'
import type {HookResult} from '../../src/rules/engine/firewall.js'

const v4 = (n: number): IpAddr => ({family: 4, value: BigInt(n >>> 0)})
const CLIENT = v4(0xcb007100 + 10) // 203.0.113.10

function host(filter: readonly string[], nat: readonly string[] = []): HostView {
  const text = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':N - [0:0]',
    '-A POSTROUTING -j N',
    ...nat.map((r) => `-A N ${r}`),
    'COMMIT',
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':F - [0:0]',
    '-A FORWARD -j F',
    ...filter.map((r) => `-A F ${r}`),
    'COMMIT',
    '',
  ].join('\n')
  return new HostView(hostFromFiles('h', 'test', new Map([['iptables-save.txt', text]])))
}

/** What a hook decided, comparable across packets. */
function fate(r: HookResult | undefined): string {
  if (!r) return '-'
  return `${r.verdict}|${r.decision?.loc.line ?? ''}|${r.nat?.kind ?? ''}|${r.nat?.decision.loc.line ?? ''}|${r.runs.map((x) => `${x.table}:${x.decision.loc.line}`).join(',')}|${r.packet.mark}|${r.ctMark}`
}

// addresses near a few prefixes, so that the random rules often contain them and often not
const addr = fc.tuple(fc.constantFrom(0x0af40100, 0x0af40180, 0x7f000000, 0x0a600000), fc.integer({min: 0, max: 300})).map(([base, off]) => v4(base + off))
const prefix = fc.tuple(addr, fc.constantFrom(8, 16, 24, 25, 26, 30, 32)).map(([a, len]) => `${formatIp(a)}/${len}`)
const range = fc.tuple(addr, fc.integer({min: 0, max: 200})).map(([a, n]) => `${formatIp(a)}-${formatIp(v4(Number(a.value) + n))}`)
const target = fc.constantFrom('-j ACCEPT', '-j DROP', '-j REJECT', '-j MARK --set-xmark 0x4000/0x4000', '-j RETURN')
const rule = (dir: 's' | 'd') =>
  fc.oneof(
    fc.tuple(fc.boolean(), prefix, target).map(([neg, p, t]) => `${neg ? '! ' : ''}-${dir} ${p} ${t}`),
    fc.tuple(range, target).map(([r, t]) => `-m iprange --${dir === 's' ? 'src' : 'dst'}-range ${r} ${t}`),
    fc.tuple(fc.constantFrom('LOCAL', 'UNICAST', 'BROADCAST'), target).map(([ty, t]) => `-m addrtype --${dir === 's' ? 'src' : 'dst'}-type ${ty} ${t}`),
    fc.tuple(fc.constantFrom('0x4000/0x4000', '0x0/0x4000'), target).map(([m, t]) => `-m mark --mark ${m} ${t}`),
    fc.constant('-p tcp -m tcp --dport 8080 -j ACCEPT'),
  )

describe('address classes', () => {
  test('a rule that never looks at the source leaves every source in one class', () => {
    const h = host(['! -s 127.0.0.0/8 -d 127.0.0.0/8 -j DROP', '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'])
    const scope: Scope = {hooks: ['FORWARD'], nat: false}
    expect(addrClass(h, scope, 'src', v4(0x0af40101))).toBe(addrClass(h, scope, 'src', v4(0x0af40202)))
    expect(addrClass(h, scope, 'src', v4(0x7f000001))).not.toBe(addrClass(h, scope, 'src', v4(0x0af40202)))
    // the destination is another field: its prefixes make its classes
    expect(addrClass(h, scope, 'dst', v4(0x7f000001))).not.toBe(addrClass(h, scope, 'dst', v4(0x0af40202)))
  })

  test('the nat table counts only where it is consulted', () => {
    const h = host([], ['-s 10.244.1.5/32 -j MASQUERADE'])
    const a = v4(0x0af40105)
    const b = v4(0x0af40106)
    expect(addrClass(h, {hooks: ['POSTROUTING'], nat: false}, 'src', a)).toBe(addrClass(h, {hooks: ['POSTROUTING'], nat: false}, 'src', b))
    expect(addrClass(h, {hooks: ['POSTROUTING'], nat: true}, 'src', a)).not.toBe(addrClass(h, {hooks: ['POSTROUTING'], nat: true}, 'src', b))
  })

  test('two sources of one class meet the same fate at FORWARD and POSTROUTING (random rules)', () => {
    fc.assert(
      fc.property(fc.array(rule('s'), {maxLength: 8}), fc.array(rule('s'), {maxLength: 3}), addr, addr, (filter, nat, a, b) => {
        const h = host(filter, nat.map((r) => r.replace(/-j (ACCEPT|DROP|REJECT|RETURN)$/, '-j MASQUERADE')))
        const scope: Scope = {hooks: ['FORWARD', 'POSTROUTING'], nat: true}
        if (addrClass(h, scope, 'src', a) !== addrClass(h, scope, 'src', b)) return
        for (const hook of ['FORWARD', 'POSTROUTING'] as const) {
          const run = (src: IpAddr) => h.fw!.runHook(hook, flowPacket({src, sport: 8080, dst: CLIENT, dport: 40000, proto: 'tcp'}, 'SYN'), h.env({iif: 'eth0', oif: 'eth1', ct: ctView('NEW')}), true)
          expect(fate(run(a))).toBe(fate(run(b)))
        }
      }),
      {numRuns: 300},
    )
  })

  test('two destinations of one class meet the same fate (random rules), and hookByDstClass answers as runHook does', () => {
    fc.assert(
      fc.property(fc.array(rule('d'), {maxLength: 8}), fc.array(rule('d'), {maxLength: 3}), fc.array(addr, {minLength: 2, maxLength: 6}), (filter, nat, dsts) => {
        const h = host(filter, nat.map((r) => r.replace(/-j (ACCEPT|DROP|REJECT|RETURN)$/, '-j MASQUERADE')))
        for (const dst of dsts) {
          const e = {src: CLIENT, sport: 40000, dst, dport: 8080, proto: 'tcp' as const}
          for (const hook of ['FORWARD', 'POSTROUTING'] as const) {
            const exact = h.fw!.runHook(hook, flowPacket(e, 'SYN'), h.env({iif: 'eth0', oif: 'eth1', ct: ctView('NEW')}), true)
            expect(fate(hookByDstClass(h, hook, e, 'SYN', {state: 'NEW', iif: 'eth0', oif: 'eth1'}, true))).toBe(fate(exact))
          }
        }
      }),
      {numRuns: 200},
    )
  })

  test('receivedBySrcClass and receivedSharingTail decide as received does (random rules)', () => {
    fc.assert(
      fc.property(fc.array(rule('s'), {maxLength: 6}), fc.array(rule('d'), {maxLength: 4}), fc.array(addr, {minLength: 2, maxLength: 6}), (fs, fd, addrs) => {
        const h = host([...fs, ...fd])
        for (const x of addrs) {
          const e = {src: x, sport: 8080, dst: CLIENT, dport: 40000, proto: 'tcp' as const}
          for (const kind of ['SYNACK', 'RDATA'] as const) {
            const o = {state: 'ESTABLISHED' as const, dir: 'REPLY' as const, iif: 'eth1', local: false}
            const exact = received(h, flowPacket(e, kind), o)
            const byClass = receivedBySrcClass(h, e, kind, o).result
            expect(byClass.hooks.map(fate)).toEqual(exact.hooks.map(fate))
            expect(byClass.guesses).toEqual(exact.guesses)
          }
          // a forwarded request to x: FORWARD and POSTROUTING shared by destination class
          const req = flowPacket({src: CLIENT, sport: 40000, dst: x, dport: 8080, proto: 'tcp'}, 'SYN')
          const o = {state: 'NEW' as const, iif: 'eth0', oif: 'eth1'}
          const exact = received(h, req, o)
          const shared = receivedSharingTail(h, req, o)
          expect(shared.hooks.map(fate)).toEqual(exact.hooks.map(fate))
          expect(shared.blocked?.decision.loc.line).toBe(exact.blocked?.decision.loc.line)
          expect(shared.to).toBe(exact.to)
        }
      }),
      {numRuns: 200},
    )
  })
})
