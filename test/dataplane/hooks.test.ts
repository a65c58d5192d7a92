import {expect, test} from 'vitest'
import {HOOK_TABLE, NF_IP_PRI, hookManip} from '../../src/dataplane/hooks.js'

test('every hook lists its functions in priority order', () => {
  for (const entries of Object.values(HOOK_TABLE)) {
    const prios = entries.map((e) => e.priority)
    expect([...prios].sort((a, b) => a - b)).toEqual(prios)
  }
})

test('LOCAL_IN: filter INPUT sees the VIP packet before IPVS, IPVS before nat INPUT, confirm last (ip_vs_ops4)', () => {
  const names = HOOK_TABLE.INPUT.map((e) => (e.fn.kind === 'table' ? e.fn.table : e.fn.kind))
  expect(names).toEqual(['mangle', 'filter', 'security', 'ipvs-out', 'ipvs-in', 'nat', 'conntrack-confirm'])
  expect(HOOK_TABLE.INPUT.find((e) => e.fn.kind === 'ipvs-in')!.priority).toBe(NF_IP_PRI.NAT_SRC - 1)
})

test('FORWARD: LVS-NAT replies are un-NATed after filter FORWARD (ip_vs_reply4 at 100)', () => {
  const names = HOOK_TABLE.FORWARD.map((e) => (e.fn.kind === 'table' ? e.fn.table : e.fn.kind))
  expect(names.indexOf('ipvs-out')).toBeGreaterThan(names.indexOf('filter'))
})

test('PREROUTING/OUTPUT: raw, conntrack, mangle, nat; conntrack at -200', () => {
  for (const h of ['PREROUTING', 'OUTPUT'] as const) {
    const names = HOOK_TABLE[h].map((e) => (e.fn.kind === 'table' ? e.fn.table : e.fn.kind))
    expect(names.slice(0, 4)).toEqual(['raw', 'conntrack-in', 'mangle', 'nat'])
  }
  expect(HOOK_TABLE.OUTPUT.map((e) => e.priority).slice(3, 6)).toEqual([-100, -99, -98])
  expect(HOOK_TABLE.POSTROUTING.at(-1)!.fn.kind).toBe('conntrack-confirm')
  expect(hookManip('PREROUTING')).toBe('dst')
  expect(hookManip('POSTROUTING')).toBe('src')
  expect(hookManip('FORWARD')).toBeUndefined()
})
