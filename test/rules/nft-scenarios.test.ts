// The checks of the rule-engine issue fire on the nft versions of their fixtures exactly as on the iptables
// versions (issue 7): fixtures/rules/nft-<scenario>/ holds real `nft -j list ruleset` output of the scenario's
// rules said in nft syntax (scripts/fixtures/nft-rules-fixtures.sh); its expected.json names the iptables
// scenario. Their fixed variants fire nothing, the fixes are nft commands, and applied by trace --fix's applier
// to copies of the snapshots they make the findings go away.
import {readdirSync} from 'node:fs'
import {describe, expect, test} from 'vitest'
import {checkHosts} from '../../src/services/check.js'
import {applyFixes} from '../../src/dataplane/apply-fix.js'
import {expected, loadScenario, scenarioNames} from './helpers.js'

const VERSION = '0.0.0-test'
const fired = (name: string) => {
  const r = checkHosts(loadScenario(name), {version: VERSION})
  return {report: r, ids: [...new Set(r.findings.map((f) => f.rule))].sort()}
}

const NFT = scenarioNames().filter((n) => n.startsWith('nft-'))

describe('nft scenarios', () => {
  test('there are nft versions of the required scenarios, each with its fixed variant', () => {
    for (const s of [
      'nft-lvs-howto-29.1-dr-state-new',
      'nft-lvs-howto-29.14-rh-firewall',
      'nft-lvs-howto-29.15-nat-output',
      'nft-lvs-users-nat-unnat',
      'nft-localhost-dnat-3306',
      'nft-zevenet-l4xnat-dnat',
      'nft-filter-blocks-vip',
      'nft-firewalld-dr',
    ]) {
      expect(NFT).toContain(s)
      expect(NFT).toContain(`${s}-fixed`)
    }
  })

  test('the nft versions hold no iptables-save, only nft-ruleset.json', () => {
    for (const n of NFT) {
      const hosts = loadScenario(n)
      expect(hosts.some((h) => h.nft && h.nft.tables.length > 0), n).toBe(true)
      for (const h of hosts) expect(h.files, `${n}/${h.name}`).not.toContain('iptables-save.txt')
    }
  })
})

describe.each(NFT)('%s', (name) => {
  const e = expected(name) as ReturnType<typeof expected> & {iptables?: string}
  const {report, ids} = fired(name)

  test('loads without errors, and the nft rules are evaluated (no "not evaluated" gap)', () => {
    expect(report.errors).toEqual([])
    expect(report.findings.filter((f) => / could not run$/.test(f.title))).toEqual([])
  })

  if (e.iptables) {
    test(`fires exactly what ${e.iptables} (iptables) fires`, () => {
      const ipt = fired(e.iptables!)
      expect(ids, report.findings.map((f) => `${f.host} ${f.rule}: ${f.message}`).join('\n')).toEqual(ipt.ids)
      expect(ids).toEqual([...e.fires].sort())
      // and on the same hosts
      const hostsOf = (r: typeof report) => [...new Set(r.findings.map((f) => `${f.host}/${f.rule}`))].sort()
      expect(hostsOf(report)).toEqual(hostsOf(ipt.report))
    })
  } else {
    test(`fires exactly [${e.fires.join(', ')}]`, () => {
      expect(ids, report.findings.map((f) => `${f.host} ${f.rule}: ${f.message}`).join('\n')).toEqual([...e.fires].sort())
    })
  }

  if (e.fires.length > 0) {
    test('evidence quotes nft rules with their table, chain and handle; fixes are nft commands', () => {
      const nftEvidence = report.findings.flatMap((f) => f.evidence).filter((x) => x.file === 'nft-ruleset.json')
      // a scenario whose rules decide (every one but the NAT return-path one, whose filter accepts all) quotes them
      if (loadScenario(name).some((h) => (h.nft?.ruleCount ?? 0) > 0)) expect(nftEvidence.length).toBeGreaterThan(0)
      for (const x of nftEvidence) expect(x.text).toMatch(/^(?:(?:ip|ip6|inet) \S+ \S+: .* # handle \d+(?: \(element .*\))?|chain (?:ip|ip6|inet) \S+ \S+ \{ type .*\})$/)
      const commands = report.findings.flatMap((f) => f.fix?.commands ?? [])
      expect(commands.filter((c) => /^ip6?tables/.test(c))).toEqual([])
    })

    test('its fixes, applied by trace --fix to copies of the snapshots, make the findings go away', () => {
      const hosts = loadScenario(name)
      const fixed = hosts.map((h) => {
        const cmds = report.findings.filter((f) => f.host === h.name).flatMap((f) => f.fix?.commands ?? [])
        const r = applyFixes(h, cmds)
        expect(r.outcomes.filter((o) => !o.applied)).toEqual([])
        expect(r.host.errors).toEqual([])
        return r.host
      })
      const again = checkHosts(fixed, {version: VERSION})
      expect(again.findings.filter((f) => e.fires.includes(f.rule)).map((f) => `${f.host} ${f.rule}: ${f.message}`)).toEqual([])
    })
  }
})

test('nft-firewalld-dr: `ct state invalid drop` of the firewalld table drops the DR service\'s FIN, and the fix accepts the service before it', () => {
  const {report} = fired('nft-firewalld-dr')
  const f = report.findings.find((x) => x.rule === 'dr-stateful-filter')!
  expect(f.evidence.some((x) => /inet firewalld filter_INPUT: ct state invalid drop # handle \d+/.test(x.text))).toBe(true)
  expect(f.fix!.commands).toEqual([expect.stringMatching(/^nft insert rule inet firewalld filter_INPUT position \d+ ip daddr 192\.0\.2\.100 tcp dport 80 accept$/)])
})

test('the nft fixture directories are all scenarios', () => {
  expect(readdirSync('fixtures/rules').filter((d) => d.startsWith('nft-')).sort()).toEqual(NFT)
})
