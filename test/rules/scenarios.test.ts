// Each scenario fires exactly the rule ids of its expected.json; its fixed variant fires nothing at all; and
// applying the fixes lvsdoctor prints (in report order, to copies of the snapshots) makes the findings go away.
import {describe, expect, test} from 'vitest'
import {checkHosts} from '../../src/services/check.js'
import {applyFixes, expected, loadScenario, scenarioNames} from './helpers.js'

const VERSION = '0.0.0-test'

describe.each(scenarioNames())('%s', (name) => {
  const e = expected(name)
  const hosts = loadScenario(name)
  const report = checkHosts(hosts, {version: VERSION})

  test('loads without errors', () => {
    expect(report.errors).toEqual([])
  })

  test(`fires exactly [${e.fires.join(', ')}]`, () => {
    const fired = [...new Set(report.findings.map((f) => f.rule))].sort()
    expect(fired, report.findings.map((f) => `${f.host} ${f.rule}: ${f.message}`).join('\n')).toEqual([...e.fires].sort())
  })

  test('findings quote their evidence (file, line, text) and carry a fix', () => {
    for (const f of report.findings) {
      expect(f.evidence.length).toBeGreaterThan(0)
      for (const ev of f.evidence) {
        expect(ev.file).toMatch(/\.(txt|json|conf)$/)
        expect(ev.line).toBeGreaterThan(0)
        expect(ev.text.length).toBeGreaterThan(0)
      }
      if (f.severity !== 'info') expect(f.fix?.summary.length).toBeGreaterThan(0)
    }
  })

  if (e.fires.length > 0 && e.manualFix) {
    test(`its fix is a configuration change with no command (${e.manualFix}); the fixed variant is quiet`, () => {
      for (const f of report.findings) expect(f.fix?.commands ?? [], f.message).toEqual([])
      expect(e.fixedBy, 'a manual fix needs a fixed variant that shows it').toBeDefined()
      expect(checkHosts(loadScenario(e.fixedBy!), {version: VERSION}).findings).toEqual([])
    })
  } else if (e.fires.length > 0) {
    test('its fixes, applied in report order, make the findings go away', () => {
      const fixed = applyFixes(hosts, report.findings)
      const again = checkHosts(fixed, {version: VERSION})
      const still = again.findings.filter((f) => e.fires.includes(f.rule) && f.severity !== 'info')
      expect(still.map((f) => `${f.host} ${f.rule}: ${f.message}`)).toEqual([])
    })
  }
})
