// conntrack-table-full: the fill level of the conntrack table from sysctl.txt (nf_conntrack_count of
// nf_conntrack_max): an error at the limit, a warning from 90%, nothing below or without a limit.
import {describe, expect, test} from 'vitest'
import {editedScenario, findingsOf, loadScenario} from './helpers.js'

const RULE = 'conntrack-table-full'
const withCount = (count: string, max = '262144') =>
  editedScenario('conntrack-full-fixed', 'lb', (f, t) => (f === 'sysctl.txt' ? t.replace(/^net\.netfilter\.nf_conntrack_count = .*$/m, `net.netfilter.nf_conntrack_count = ${count}`).replace(/^net\.netfilter\.nf_conntrack_max = .*$/m, `net.netfilter.nf_conntrack_max = ${max}`) : t))
const mine = findingsOf(RULE)

describe('conntrack-table-full', () => {
  test('at the limit: an error on that host with the doubled limit as fix; the fixed fixture (25%) is quiet', () => {
    const f = mine(loadScenario('conntrack-full'))
    expect(f.map((x) => [x.host, x.severity, x.fix?.commands])).toEqual([['lb', 'error', ['sysctl -w net.netfilter.nf_conntrack_max=524288']]])
    expect(f[0]!.message).toMatch(/262144 entries of net\.netfilter\.nf_conntrack_max = 262144 \(100%\): it is full/)
    expect(f[0]!.evidence.map((e) => e.text)).toEqual(expect.arrayContaining(['net.netfilter.nf_conntrack_count = 262144', 'net.netfilter.nf_conntrack_max = 262144']))
    expect(mine(loadScenario('conntrack-full-fixed'))).toEqual([])
  })

  test('from 90%: a warning; below, or with no limit (0), or without the count: nothing', () => {
    expect(mine(withCount('240000')).map((x) => x.severity)).toEqual(['warning'])
    expect(mine(withCount('235000'))).toEqual([])
    expect(mine(withCount('300000', '0'))).toEqual([])
    const noCount = editedScenario('conntrack-full', 'lb', (f, t) => (f === 'sysctl.txt' ? t.replace(/^net\.netfilter\.nf_conntrack_count = .*\n/m, '') : t))
    expect(mine(noCount)).toEqual([])
  })

  test('over the limit (the count may pass it for a moment): the fix doubles what is there', () => {
    expect(mine(withCount('270000'))[0]!.fix?.commands).toEqual(['sysctl -w net.netfilter.nf_conntrack_max=540000'])
  })
})
