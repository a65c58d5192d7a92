// Golden output of `check` for a few scenarios: text (no colour), markdown and JSON. Regenerate with
// `npx vitest run test/rules/golden.test.ts -u` after an intended change, and read the diff.
import chalk from 'chalk'
import {beforeAll, describe, expect, test} from 'vitest'
import {checkPaths} from '../../src/services/check.js'
import {renderCheckText} from '../../src/render/check-text.js'
import {renderCheckMarkdown} from '../../src/render/check-markdown.js'
import {renderJson} from '../../src/render/json.js'
import {hostDirs} from './helpers.js'

beforeAll(() => {
  chalk.level = 0
})

const report = (name: string) => checkPaths(hostDirs(name), {version: '0.0.0-golden'})

describe.each(['lvs-howto-29.1-dr-state-new', 'lvs-howto-29.14-rh-firewall', 'lvs-howto-29.15-nat-output', 'zevenet-dnat-foreign-gateway', 'localhost-dnat-3306'])('%s', (name) => {
  test('text', async () => {
    await expect(renderCheckText(report(name))).toMatchFileSnapshot(`__golden__/${name}.txt`)
  })
})

test('markdown', async () => {
  await expect(renderCheckMarkdown(report('lvs-howto-29.14-rh-firewall'))).toMatchFileSnapshot('__golden__/lvs-howto-29.14-rh-firewall.md')
})

test('json (the contract: tool, version, hosts[], findings[], errors[])', async () => {
  const r = report('lvs-users-nat-unnat')
  expect(Object.keys(r)).toEqual(['tool', 'version', 'hosts', 'findings', 'errors'])
  await expect(renderJson(r)).toMatchFileSnapshot('__golden__/lvs-users-nat-unnat.json')
})
