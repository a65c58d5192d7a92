// Every real-world dump of the corpus is checked without a crash, and no load-balancer rule fires on a host
// that has neither IPVS services nor DNAT.
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {checkHosts} from '../../src/services/check.js'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {CORPUS} from '../parsers/iptables-corpus.js'

const DIR = CORPUS
const dumps = readdirSync(DIR).filter((f) => /\.ip6?tables-save$/.test(f)).sort()

describe.each(dumps)('%s', (f) => {
  test('checked without a crash; quiet unless it balances', () => {
    const hosts = loadSnapshots([`${DIR}/${f}`])
    const report = checkHosts(hosts, {version: 'test'})
    expect(report.findings.filter((x) => x.title.endsWith('could not run'))).toEqual([])
    const rs = [hosts[0]!.iptables, hosts[0]!.ip6tables].filter((r) => !!r)
    const dnat = rs.some((r) => [...(r!.tables.get('nat')?.chains.values() ?? [])].some((c) => c.rules.some((x) => x.target?.kind === 'DNAT')))
    const ipvs = (hosts[0]!.ipvs?.services.length ?? 0) > 0
    if (!dnat && !ipvs) expect(report.findings.map((x) => `${x.rule}: ${x.message}`)).toEqual([])
    // without addresses, routes or sysctls nothing firewall-dependent can be more than a lead
    for (const x of report.findings) expect(x.severity, `${x.rule}: ${x.message}`).toBe('info')
  })
})
