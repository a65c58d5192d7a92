import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {loadSnapshots} from '../../src/snapshot/store.js'
import {checkHosts} from '../../src/services/check.js'
import {renderCheckText} from '../../src/render/check-text.js'

const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-bare-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

describe('a malformed bare file', () => {
  const file = join(dir, 'edge.rules')
  writeFileSync(file, '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.300 -j DROP\nCOMMIT\n')

  test('its error names the path the user gave, with the line', () => {
    const [h] = loadSnapshots([file])
    expect(h!.errors).toHaveLength(1)
    expect(h!.errors[0]!.file).toBe(file)
    expect(h!.errors[0]!.message).toBe(`${file}:3: expected an IPv4 address or prefix after -s, found "10.0.0.300"`)
  })

  test('the text report does not claim that everything is fine', () => {
    const text = renderCheckText(checkHosts(loadSnapshots([file]), {version: 'test'}))
    expect(text).not.toMatch(/^No problems found\.$/m)
    expect(text).toMatch(/1 file\(s\) could not be read/)
  })
})

describe('a clean report with items not modelled', () => {
  test('says that they were not checked (an IPv6 service and ip6tables rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-nm-'))
    try {
      writeFileSync(join(dir, 'ipvsadm-Sn.txt'), '-A -t [2001:db8::100]:80 -s rr\n-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -m -w 1\n')
      const text = renderCheckText(checkHosts(loadSnapshots([dir]), {version: 'test'}))
      expect(text).not.toMatch(/^No problems found\.$/m)
      expect(text).toMatch(/No problems found in what was modelled; 1 item\(s\) listed above as not modelled were not checked\./)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
