// Real-world rulesets the real-world hunt found false errors on (fixtures/real-world/README.md, open/): check must
// agree with trace there.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {runRules} from '../../src/rules/index.js'
import {hostFromFiles} from '../../src/snapshot/store.js'

const open = (f: string) => readFileSync(join(import.meta.dirname, '../../fixtures/real-world/open', f), 'utf8')

describe('real-world rulesets that accept DNATed connections by their conntrack status', () => {
  test('OpenWrt fw3: -m conntrack --ctstate DNAT -j ACCEPT in FORWARD and INPUT under DROP policies passes the DNATed and REDIRECTed SYNs: no filter-blocks-vip', () => {
    const h = hostFromFiles('fw3', 'fw3', new Map([['iptables-save.txt', open('ctstate-dnat-accept.iptables-save')]]))
    const f = runRules({hosts: [h]})
    expect(f.filter((x) => x.rule === 'filter-blocks-vip')).toEqual([])
    // without the --ctstate DNAT accepts, the DROP policies do stop the service (the rule is not blind)
    const bare = open('ctstate-dnat-accept.iptables-save').replace(/-A (INPUT|FORWARD) -m conntrack --ctstate DNAT -j ACCEPT\n/g, '')
    const h2 = hostFromFiles('fw3', 'fw3', new Map([['iptables-save.txt', bare]]))
    expect(runRules({hosts: [h2]}).filter((x) => x.rule === 'filter-blocks-vip').length).toBeGreaterThan(0)
  })

  test('OpenWrt fw4: `ct status dnat accept`, and reflection DNATs for LAN sources only, give no filter-blocks-vip error', () => {
    const h = hostFromFiles('fw4', 'fw4', new Map([['nft-ruleset.json', open('fw4-redirect.json')]]))
    const f = runRules({hosts: [h]})
    expect(f.filter((x) => x.rule === 'filter-blocks-vip').map((x) => x.message)).toEqual([])
  })
})

describe('Zevenet nftlb: a weighted farm marks new connections with `ct mark 0x0 ct mark set numgen random mod 10 map {...}`', () => {
  test('the first element that matches wins (the mark it sets ends the match): both backends get their share, no statistic-cascade-skew', () => {
    const json = readFileSync(join(import.meta.dirname, '../../fixtures/real-world/nft/nftlb-001_snat_ipv4_tcp_weight.json'), 'utf8')
    const h = hostFromFiles('lb', 'lb', new Map([['nft-ruleset.json', json]]))
    const f = runRules({hosts: [h]})
    expect(f.filter((x) => x.rule === 'statistic-cascade-skew').map((x) => x.message)).toEqual([])
  })
})

describe('Zevenet nftlb: a per-source rate limit `add @new-rtlimit-lb01 { ip saddr limit rate over 10/second } drop`', () => {
  test('a source under the limit goes on (the dynset limit is read as the limit statement is): no filter-blocks-vip, no statistic-cascade-skew', () => {
    const json = readFileSync(join(import.meta.dirname, '../../fixtures/real-world/nft/nftlb-031_snat_ipv4_tcp_weight_newrtlimit.json'), 'utf8')
    const h = hostFromFiles('lb', 'lb', new Map([['nft-ruleset.json', json]]))
    const f = runRules({hosts: [h]})
    expect(f.filter((x) => x.severity !== 'info').map((x) => `${x.rule}: ${x.message}`)).toEqual([])
    // the same rule without the per-element limit drops every new connection: the rule is not blind
    const unlimited = json.replace(/,\s*"stmt":\s*\[\s*\{\s*"limit":\s*\{[^}]*\}\s*\}\s*\]/, '')
    expect(unlimited).not.toBe(json)
    const g = hostFromFiles('lb', 'lb', new Map([['nft-ruleset.json', unlimited]]))
    expect(runRules({hosts: [g]}).map((x) => x.rule)).toContain('filter-blocks-vip')
  })
})
