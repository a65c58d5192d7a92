// trace replays one outcome of a random statistic cascade (a deterministic stand-in draws): it says which rules the
// draws took and skipped, once per host, instead of presenting the outcome as the only one. Deterministic
// probabilities (0, 1) are not draws.
import {expect, test} from 'vitest'
import {parseEndpoint, parseIp} from '../../src/model/ip.js'
import {traceConnection} from '../../src/services/trace.js'
import {editedScenario, loadScenario} from '../rules/helpers.js'

const flow = {vip: parseEndpoint('192.0.2.100:80')!, proto: 'tcp' as const, client: parseIp('203.0.113.10')!, clientPort: 40000}

test('the random draws of a DNAT cascade are stated: the rules taken and skipped, one assumption per host', () => {
  const t = traceConnection(loadScenario('statistic-cascade-naive-fixed'), flow)
  const draws = t.assumptions.filter((a) => a.includes('--mode random'))
  expect(draws).toHaveLength(1)
  expect(draws[0]).toMatch(/^director: -m statistic --mode random is a random draw; lvsdoctor's deterministic stand-in (took|skipped) iptables-save\.txt:\d/)
  // the rule with probability 1 (the cascade's last) is no draw and is never named
  expect(draws[0]).not.toContain('iptables-save.txt:9')
  // the backend the replay reached is the first rule the stand-in took, or the last rule when it skipped both draws
  const to = JSON.stringify(t).match(/destination -> (10\.0\.0\.1\d):80/)![1]
  const took = /took iptables-save\.txt:(\d)/.exec(draws[0]!)?.[1]
  expect(to).toBe(took ? `10.0.0.1${Number(took) - 6}` : '10.0.0.13')
})

test('no statistic rule, no such assumption', () => {
  const hosts = editedScenario('statistic-cascade-naive-fixed', 'director', (f, t) => (f === 'iptables-save.txt' ? t.replace(/ -m statistic --mode random --probability [\d.]+/g, '') : t))
  expect(traceConnection(hosts, flow).assumptions.filter((a) => a.includes('random'))).toEqual([])
})
