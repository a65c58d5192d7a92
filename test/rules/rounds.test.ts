// check judges the hosts again as its fixes leave them (src/rules/rounds.ts): a problem hidden behind the first
// blocker is reported after it, marked hiddenBehind, with commands exact after the earlier ones and evidence in the
// files as given. Scenario dnat-notrack-forward-drop (namespaces): a NOTRACK keeps the DNAT from happening, and a
// FORWARD DROP policy waits behind it (the random kernel suite's rnd11-11 and rnd10-24, where check's fix alone
// left the connection dead).
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {RULES, runRuleChecks, runRules} from '../../src/rules/index.js'
import {INCOMPLETE, runRulesInRounds} from '../../src/rules/rounds.js'
import type {Rule} from '../../src/rules/types.js'
import {checkHosts} from '../../src/services/check.js'
import {traceWithFixes} from '../../src/services/trace-command.js'
import {renderCheckText} from '../../src/render/check-text.js'
import {renderCheckMarkdown} from '../../src/render/check-markdown.js'
import {connectionOk, editedScenario, loadScenario} from './helpers.js'

const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('198.51.100.7')!, clientPort: 40000}
const NAME = 'dnat-notrack-forward-drop'
const original = (file: string) => readFileSync(join('fixtures/rules', NAME, 'director', file), 'utf8').split('\n')

describe('check judges again after its own fixes', () => {
  const hosts = loadScenario(NAME)

  test('one pass sees only the NOTRACK; its fix alone leaves the connection dead (trace --fix)', async () => {
    const first = runRules({hosts, flows: [flow]}, RULES, {maxRounds: 1})
    expect(first.map((f) => f.rule)).toEqual(['dnat-untracked'])
    const fixed = await traceWithFixes(hosts, flow, first)
    expect(connectionOk(fixed.result.connection)).toBe(false)
    expect(fixed.result.firstFailure?.reason).toMatch(/FORWARD/)
  })

  test('the FORWARD drop behind it follows, marked hiddenBehind, and all the fixes in report order connect', async () => {
    const all = runRules({hosts, flows: [flow]})
    expect(all.map((f) => [f.rule, f.hiddenBehind])).toEqual([
      ['dnat-untracked', undefined],
      ['filter-blocks-vip', ['dnat-untracked@director']],
    ])
    // written for the chain as the first fix leaves it
    expect(all[1]!.fix?.commands).toEqual(['iptables -t filter -A FORWARD -d 10.0.0.11/32 -p tcp -m tcp --dport 8080 -j ACCEPT'])
    const fixed = await traceWithFixes(hosts, flow, all)
    expect(fixed.outcomes.every((o) => o.applied)).toBe(true)
    expect(connectionOk(fixed.result.connection)).toBe(true)
  })

  test("the hidden finding's evidence and message point at the file as given (the fix deleted a line above them)", () => {
    const hidden = runRules({hosts}).find((f) => f.hiddenBehind)!
    const lines = original('iptables-save.txt')
    expect(hidden.evidence.length).toBeGreaterThan(0)
    for (const e of hidden.evidence) {
      expect(e.afterFixes).toBeUndefined()
      expect(lines[e.line - 1]).toBe(e.text)
    }
    const policy = lines.findIndex((l) => l.startsWith(':FORWARD DROP')) + 1
    expect(hidden.message).toContain(`iptables-save.txt:${policy}`)
  })

  test('check: report order puts what the fixes reveal after the rest; text and Markdown say what it hides behind', () => {
    const report = checkHosts(hosts, {version: 't'})
    expect(report.findings.map((f) => f.rule)).toEqual(['dnat-untracked', 'filter-blocks-vip'])
    expect(renderCheckText(report)).toMatch(/hidden behind: shows once the fixes of dnat-untracked on director \(above\) are applied/)
    expect(renderCheckMarkdown(report)).toMatch(/Hidden behind: shows once the fixes of dnat-untracked on director/)
    // ignoring the first rule also drops what only its fix reveals (its fix is not applied)
    expect(checkHosts(hosts, {version: 't', ignore: ['dnat-untracked']}).findings).toEqual([])
  })

  test('quiet: the fixed variant has nothing, and a report without fix commands has no second round', () => {
    expect(runRules({hosts: loadScenario(`${NAME}-fixed`)})).toEqual([])
    let calls = 0
    const counting = (ctx: Parameters<typeof runRuleChecks>[0], rules: readonly Rule[]) => {
      calls++
      return runRuleChecks(ctx, rules).filter((f) => f.rule !== 'dnat-untracked')
    }
    expect(runRulesInRounds({hosts}, RULES, counting)).toEqual([])
    expect(calls).toBe(1)
  })

  test('a finding whose own fix leaves it in place says so (the fix is incomplete); one whose fix works does not', () => {
    // a rule that fires whatever the sysctl says, with a fix that changes it: the copy still has the problem
    const stubborn: Rule = {
      meta: {id: 'stubborn'} as unknown as Rule['meta'],
      check: (ctx) => [{rule: 'stubborn', severity: 'error', host: ctx.hosts[0]!.name, title: 'stubborn', message: 'm', evidence: [{file: 'sysctl.txt', line: 1, text: 'x'}], fix: {summary: 's', ops: [{kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1'}]}}],
    }
    const f = runRulesInRounds({hosts}, [stubborn, ...RULES], runRuleChecks)
    expect(f.find((x) => x.rule === 'stubborn')!.unverified).toEqual([INCOMPLETE])
    expect(f.find((x) => x.rule === 'dnat-untracked')!.unverified ?? []).not.toContain(INCOMPLETE)
  })

  test('the same problem quoted with other evidence after its fix, with no command left: "incomplete" on the first, not a hidden duplicate', () => {
    // fires whatever the sysctl is, quoting it; with the value it proposes there is no command left to give
    const shifty: Rule = {
      meta: {id: 'shifty'} as unknown as Rule['meta'],
      check: (ctx) => {
        const h = ctx.hosts.find((x) => x.name === 'director')!
        const on = h.sysctl?.get('net.ipv4.ip_forward')?.value === '1'
        return [{rule: 'shifty', severity: 'error', host: h.name, title: 'shifty', message: 'm', evidence: [{file: 'sysctl.txt', line: 1, text: `ip_forward = ${on ? 1 : 0}`}], fix: {summary: 's', ops: on ? [] : [{kind: 'sysctl', key: 'net.ipv4.ip_forward', value: '1'}]}}]
      },
    }
    const off = editedScenario(`${NAME}-fixed`, 'director', (f, t) => (f === 'sysctl.txt' ? t.replace('net.ipv4.ip_forward = 1', 'net.ipv4.ip_forward = 0') : t))
    const f = runRulesInRounds({hosts: off}, [shifty], runRuleChecks)
    expect(f.map((x) => [x.rule, x.hiddenBehind, x.unverified])).toEqual([['shifty', undefined, [INCOMPLETE]]])
  })

  test('a fix command the snapshot copy cannot take stops the rounds: no judgement on a state that cannot be built', () => {
    const odd: Rule = {
      meta: {id: 'odd', title: 'odd', severity: 'error', summary: '', docs: ''} as unknown as Rule['meta'],
      check: (ctx) => [{rule: 'odd', severity: 'error', host: ctx.hosts[0]!.name, title: 'odd', message: 'odd', evidence: [{file: 'iptables-save.txt', line: 1, text: 'x'}], fix: {summary: 'odd', ops: [{kind: 'cmd', text: 'systemctl restart frobd'}]}}],
    }
    const rules = [odd, ...RULES]
    const f = runRulesInRounds({hosts}, rules, runRuleChecks)
    expect(f.map((x) => x.rule).sort()).toEqual(['dnat-untracked', 'odd'])
    expect(f.some((x) => x.hiddenBehind)).toBe(false)
  })
})
