// Rules on real-world inputs (fixtures/real-world/README.md names each source).
import {describe, expect, test} from 'vitest'
import {checkPaths} from '../../src/services/check.js'

describe('fwmark-service-unmarked on a published fwmark director (fixtures/real-world/ipvsadm/fwmark-template)', () => {
  test("the fwmark persistence template ('IP ... 0.0.0.10:0') is not taken for a VIP or port 0", () => {
    const fs = checkPaths(['fixtures/real-world/ipvsadm/fwmark-template'], {version: 't'}).findings.filter((f) => f.rule === 'fwmark-service-unmarked')
    expect(fs).toHaveLength(1)
    const cmds = fs[0]!.fix?.commands ?? []
    expect(cmds).toEqual([
      'iptables -t mangle -A PREROUTING -d 172.16.0.100/32 -p tcp -m tcp --dport 80 -j MARK --set-mark 0xa',
      'iptables -t mangle -A PREROUTING -d 172.16.0.100/32 -p tcp -m tcp --dport 443 -j MARK --set-mark 0xa',
    ])
    expect(fs[0]!.message).not.toContain('0.0.0.10')
  })
})
