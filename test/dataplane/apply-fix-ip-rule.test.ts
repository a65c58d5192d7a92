// trace --fix applies `ip rule add/del` to ip-rule.json as `ip -j rule show` prints the result. The expected JSON is
// what iproute2 6.1 printed in a network namespace after the same commands (kernel 6.18).
import {expect, test} from 'vitest'
import {applyFixes} from '../../src/dataplane/apply-fix.js'
import {hostFromFiles} from '../../src/snapshot/store.js'

const DEFAULTS = '[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]'
const host = (rules = DEFAULTS) => hostFromFiles('r', 'r', new Map([['ip-rule.json', rules]]))

test('ip rule add writes the rule where and as the kernel lists it (no pref: one below the first rule after local)', () => {
  const r = applyFixes(host(), [
    'ip rule add to 10.1.0.10 ipproto tcp dport 8080 lookup main pref 106',
    'ip rule add from 10.1.0.0/24 to 10.1.0.1 lookup main pref 99',
    'ip rule add from 10.1.0.10 ipproto udp sport 5353 lookup main pref 98',
    'ip rule add fwmark 0x7 lookup 107 pref 107',
    'ip rule add from 10.1.0.10 lookup 100',
  ])
  expect(r.outcomes.map((o) => o.applied)).toEqual([true, true, true, true, true])
  expect(JSON.parse(r.host.raw.get('ip-rule.json')!)).toEqual(
    JSON.parse(
      '[{"priority":0,"src":"all","table":"local"},{"priority":97,"src":"10.1.0.10","table":"100"},{"priority":98,"src":"10.1.0.10","ipproto":"udp","sport":5353,"table":"main"},{"priority":99,"src":"10.1.0.0","srclen":24,"dst":"10.1.0.1","table":"main"},{"priority":106,"src":"all","dst":"10.1.0.10","ipproto":"tcp","dport":8080,"table":"main"},{"priority":107,"src":"all","fwmark":"0x7","table":"107"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]',
    ),
  )
  const rule = r.host.rules!.find((x) => x.priority === 106)!
  expect(rule).toMatchObject({ipproto: 6, dport: [8080, 8080], table: 'main'})
  expect(rule.to?.value).toBe(0x0a01000an)
})

test('ip rule del removes the rule; one that is not there is an error, not a silent success', () => {
  const r = applyFixes(host('[{"priority":0,"src":"all","table":"local"},{"priority":100,"src":"10.1.0.0","srclen":24,"table":"100"},{"priority":32766,"src":"all","table":"main"}]'), ['ip rule del from 10.1.0.0/24 lookup 100 pref 100', 'ip rule del fwmark 0x1 lookup 101'])
  expect(r.outcomes.map((o) => o.applied)).toEqual([true, false])
  expect(r.host.rules!.map((x) => x.priority)).toEqual([0, 32766])
})
