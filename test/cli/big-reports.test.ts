// Big rulesets give big reports: what a person reads stays readable, what a program reads stays whole, and a
// reader that stops early gets no stack trace.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'
import {generateKubeProxyDump} from '../../bench/gen-kube-proxy.js'
import {checkPaths} from '../../src/services/check.js'
import {renderCheckText, MAX_EVIDENCE} from '../../src/render/check-text.js'
import {renderCheckMarkdown} from '../../src/render/check-markdown.js'
import {listSome} from '../../src/rules/engine/list.js'

const ROOT = resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(join(tmpdir(), 'ldi-big-'))
const dump = join(dir, 'kube.iptables-save')
writeFileSync(dump, generateKubeProxyDump(5_000))
// more than a pipe buffer (64 KiB) of output in every format, so a reader that stops early makes the writer fail
const bigger = join(dir, 'kube20k.iptables-save')
writeFileSync(bigger, generateKubeProxyDump(20_000))

describe('reports of big rulesets', () => {
  test('listSome names the first items and counts the rest', () => {
    expect(listSome(['a', 'b'], 3)).toBe('a, b')
    expect(listSome(['a', 'b', 'c'], 3)).toBe('a, b, c')
    expect(listSome(['a', 'b', 'c', 'd', 'e'], 3)).toBe('a, b, c and 2 more')
    expect(listSome(Array.from({length: 1234}, (_, i) => String(i)), 1)).toBe('0 and 1,233 more')
  })

  const report = checkPaths([dump], {version: 'test'})
  const fwd = report.findings.find((f) => f.rule === 'ip-forward-off')!
  test('a finding about every service names ten of them; its evidence keeps all of them', () => {
    expect(fwd).toBeDefined()
    const services = fwd.evidence.length
    expect(services).toBeGreaterThan(100)
    expect(fwd.message).toMatch(new RegExp(`\\(TCP 10\\.96\\.0\\.0:80 \\(DNAT\\)(, [^,]+){9} and ${(services - 10).toLocaleString('en-US')} more\\)`))
  })
  test('text and markdown print the first evidence lines and count the rest; --json has them all', () => {
    const text = renderCheckText(report)
    const md = renderCheckMarkdown(report)
    const more = `... and ${fwd.evidence.length - MAX_EVIDENCE} more evidence line(s) (see --json)`
    expect(text).toContain(more)
    expect(md).toContain(more)
    expect(text).toContain(fwd.evidence[MAX_EVIDENCE - 1]!.text)
    expect(text).not.toContain(`:${fwd.evidence[MAX_EVIDENCE]!.line}  `)
    const json = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), 'check', '--json', '--fail-on', 'none', dump], {encoding: 'utf8', maxBuffer: 64 << 20})
    const parsed = JSON.parse(json.stdout) as typeof report
    expect(parsed.findings.find((f) => f.rule === 'ip-forward-off')!.evidence).toHaveLength(fwd.evidence.length)
  })
  test.each([['check', bigger], ['check', '--json', bigger], ['check', '--format', 'markdown', bigger], ['check', '--jsn', bigger]])(
    'a reader that stops after one line: no stack trace, the exit code of the command (%s)',
    (...args: string[]) => {
      const cmd = `"${process.execPath}" bin/run.js ${args.map((a) => `"${a}"`).join(' ')} | head -1 >/dev/null; echo "status \${PIPESTATUS[0]}"`
      const whole = spawnSync(process.execPath, [join(ROOT, 'bin/run.js'), ...args], {encoding: 'utf8', cwd: ROOT, maxBuffer: 64 << 20})
      if (!args.includes('--jsn')) expect(whole.stdout.length).toBeGreaterThan(65536)
      const r = spawnSync('bash', ['-c', cmd], {encoding: 'utf8', cwd: ROOT})
      expect(r.stderr).not.toMatch(/EPIPE|^\s+at /m)
      expect(r.stderr).toBe(whole.stderr)
      expect(r.stdout.trim()).toBe(`status ${whole.status}`)
    },
  )
})
