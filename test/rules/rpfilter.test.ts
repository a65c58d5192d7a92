// filter-blocks-vip on `-m rpfilter --invert -j DROP` says why the reverse path check fails (rules/engine/rpfilter-why.ts):
// snapshots of the kernel suite's rpf-asym and rpf-validmark (test/kernel/rpfilter-scenarios.ts), where the kernel
// dropped every packet of the client, and their working variants (--loose; the marks without --validmark).
import {describe, expect, it} from 'vitest'
import {checkHosts} from '../../src/services/check.js'
import {loadScenario} from './helpers.js'

const findings = (name: string) => checkHosts(loadScenario(name), {version: '0.0.0-test'}).findings

describe('filter-blocks-vip on -m rpfilter', () => {
  it('names the asymmetric route: the packets arrive on one device, the route back leaves by another', () => {
    const f = findings('raw-rpfilter-asymmetric')
    expect(f.map((x) => `${x.rule}@${x.host}`)).toEqual(['filter-blocks-vip@d'])
    expect(f[0]!.message).toContain("the client's packets arrive on lrp-d0, but d's route back to 203.0.113.10 leaves by lrp-d2")
    // the rule itself is made loose: sources with no route back at all are still dropped
    expect(f[0]!.fix?.commands).toEqual(['iptables -t raw -R PREROUTING 1 -m rpfilter --loose --invert -j DROP'])
  })
  it('names the mark that --validmark takes into the lookup', () => {
    const f = findings('mangle-rpfilter-validmark')
    expect(f[0]!.message).toContain("d has no unicast route back to 203.0.113.10 with the packets' mark 0x1 (--validmark): the route found is unreachable")
    // the route back is there without the mark: the rule without --validmark
    expect(f[0]!.fix?.commands).toEqual(['iptables -t mangle -R PREROUTING 2 -m rpfilter --invert -j DROP'])
  })
  it('is quiet where the kernel let the connection through', () => {
    expect(findings('raw-rpfilter-asymmetric-fixed')).toEqual([])
    expect(findings('mangle-rpfilter-validmark-fixed')).toEqual([])
  })
})
