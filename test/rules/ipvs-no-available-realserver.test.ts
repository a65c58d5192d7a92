// ipvs-no-available-realserver beyond its fixtures (fixtures/rules/ipvs-all-quiesced, ipvs-no-realserver): the
// ways a destination is unavailable, the listings that do not show weights, keepalived, and kube-proxy's many
// endpoint-less services.
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {checkPaths} from '../../src/services/check.js'

function host(files: Record<string, string>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'ldi-nar-')), 'director')
  mkdirSync(dir)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const ID = 'ipvs-no-available-realserver'
const run = (files: Record<string, string>) => checkPaths([host(files)], {version: 't'}).findings.filter((f) => f.rule === ID)
const HEAD = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn']

describe(ID, () => {
  test('one destination of weight 1 among weight-0 ones keeps it quiet; all 0 fires with one -e per destination, method kept', () => {
    expect(run({'ipvsadm-Sn.txt': '-A -t 198.51.100.1:443 -s rr\n-a -t 198.51.100.1:443 -r 10.0.0.1:8443 -m -w 0\n-a -t 198.51.100.1:443 -r 10.0.0.2:8443 -m -w 1\n'})).toEqual([])
    const [f, ...rest] = run({'ipvsadm-Sn.txt': '-A -t 198.51.100.1:443 -s rr\n-a -t 198.51.100.1:443 -r 10.0.0.1:8443 -m -w 0 -x 100\n-a -t 198.51.100.1:443 -r 10.0.0.2:8443 -m -w 0\n'})
    expect(rest).toEqual([])
    expect(f!.severity).toBe('error')
    expect(f!.evidence.map((e) => e.line)).toEqual([1, 2, 3])
    // -e resets what it is not given: the method and the upper threshold are named again
    expect(f!.fix?.commands).toEqual(['ipvsadm -e -t 198.51.100.1:443 -r 10.0.0.1:8443 -m -w 1 -x 100', 'ipvsadm -e -t 198.51.100.1:443 -r 10.0.0.2:8443 -m -w 1'])
  })

  test('destinations at their upper threshold (ipvsadm -Ln --thresholds shows thresholds and connections) are unavailable', () => {
    const listing = (active: number) => [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn',
      '  -> RemoteAddress:Port',
      // --thresholds prints the service line as the plain listing does (ipvsadm.c print_service_entry)
      'TCP  198.51.100.1:80 wlc',
      `  -> 10.0.0.1:80                   50         0          ${active}         0`,
      '',
    ].join('\n')
    const full = run({'ipvsadm-Ln.txt': listing(50)})
    expect(full.map((f) => f.message)).toEqual([expect.stringContaining('10.0.0.1:80 (50 connections, at its upper threshold 50)')])
    expect(run({'ipvsadm-Ln.txt': listing(49)})).toEqual([])
  })

  test('a listing without weights (ipvsadm -Ln --stats) is not read as weight 0', () => {
    const stats = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes', '  -> RemoteAddress:Port',
      'TCP  198.51.100.1:80                     5       10        0      600        0', '  -> 10.0.0.1:80                          5       10        0      600        0', ''].join('\n')
    expect(run({'ipvsadm-Ln.txt': stats})).toEqual([])
  })

  test('more than five services without destinations on a host are one finding (kube-proxy IPVS mode)', () => {
    const svcs = Array.from({length: 7}, (_, i) => `TCP  10.96.0.${10 + i}:80 rr`)
    const fs = run({'ipvsadm-Ln.txt': [...HEAD, 'TCP  10.96.0.1:443 rr', '  -> 192.168.1.10:6443            Masq    1      0          0', ...svcs, ''].join('\n')})
    expect(fs).toHaveLength(1)
    expect(fs[0]!.message).toMatch(/^7 virtual services have no realserver \(TCP 10\.96\.0\.10:80, /)
    expect(fs[0]!.evidence).toHaveLength(7)
    // five or fewer: one finding each
    expect(run({'ipvsadm-Ln.txt': [...HEAD, ...svcs.slice(0, 2), ''].join('\n')})).toHaveLength(2)
  })

  test('keepalived: no ipvsadm command (keepalived would undo it); a sorry_server answers a virtual_server without real_server', () => {
    const ka = (inner: string) => `virtual_server 198.51.100.1 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n${inner}}\n`
    const zero = run({'keepalived.conf': ka('    real_server 10.0.0.1 80 {\n        weight 0\n    }\n')})
    expect(zero).toHaveLength(1)
    expect(zero[0]!.fix?.commands ?? []).toEqual([])
    expect(zero[0]!.fix?.summary).toMatch(/keepalived/)
    expect(run({'keepalived.conf': ka('    sorry_server 10.0.0.99 80\n')})).toEqual([])
    expect(run({'keepalived.conf': ka('')})).toHaveLength(1)
  })
})

describe('findings that rest on files the snapshot lacks say so in their title', () => {
  test('fwmark-service-unmarked without a packet filter in the snapshot is info "(not verified)", as the other rules write it', () => {
    const fs = checkPaths([host({'ipvsadm-Sn.txt': '-A -f 1 -s wlc\n-a -f 1 -r 10.0.0.1:0 -m -w 1\n'})], {version: 't'}).findings
    const fw = fs.filter((f) => f.rule === 'fwmark-service-unmarked')
    expect(fw.map((f) => [f.severity, f.title])).toEqual([['info', 'an fwmark virtual service whose mark no rule sets (not verified)']])
    // every info finding with unverified items carries the suffix
    for (const f of fs) if (f.severity === 'info' && f.unverified?.length) expect(f.title, f.rule).toMatch(/\(not verified\)$/)
  })
})
