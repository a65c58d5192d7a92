// Deterministic generator of a kube-proxy (iptables mode) style `iptables-save` dump, for benchmarks and tests.
//
// The layout follows what kube-proxy programs (pkg/proxy/iptables/proxier.go): filter KUBE-SERVICES /
// KUBE-FORWARD / KUBE-FIREWALL, nat KUBE-SERVICES → KUBE-SVC-<hash> (a KUBE-MARK-MASQ rule, then a statistic
// --mode random cascade over the endpoints) → KUBE-SEP-<hash> (KUBE-MARK-MASQ hairpin rule + DNAT), KUBE-NODEPORTS,
// KUBE-MARK-MASQ (MARK --set-xmark 0x4000/0x4000) and KUBE-POSTROUTING (MARK, MASQUERADE --random-fully). Services
// without endpoints get a filter REJECT. Large clusters run without rule comments, so comments are off unless asked
// for. With the defaults, 100,000 rules come with about 34,000 chains.
//
// Imports only bench/kube-common.ts (itself self-contained): bench/iptables-parse.js transpiles the two and loads
// them without a build step.

import {hashMaker, mulberry32} from './kube-common.js'

export interface KubeProxyDumpOptions {
  /** add the `-m comment --comment "ns/svc:port ..."` matches kube-proxy prints in small clusters */
  readonly comments?: boolean
  /** seed of the pseudo-random endpoint counts and chain hashes */
  readonly seed?: number
}

/** A kube-proxy style dump with exactly `rules` `-A` lines (at least the fixed ones, 25). */
export function generateKubeProxyDump(rules: number, options: KubeProxyDumpOptions = {}): string {
  const comments = options.comments === true
  const rand = mulberry32(options.seed ?? 0x5eed)
  const hash = hashMaker(rand, 16)
  const cm = (text: string): string => (comments ? ` -m comment --comment "${text}"` : '')
  const ip = (base: readonly [number, number], n: number): string => `${base[0]}.${base[1] + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`

  const filterChains = ['KUBE-EXTERNAL-SERVICES', 'KUBE-FIREWALL', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-SERVICES']
  const filterRules = new Map<string, string[]>([['INPUT', []], ['FORWARD', []], ['OUTPUT', []], ...filterChains.map((c) => [c, []] as [string, string[]])])
  const natOrder = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-SERVICES']
  const natRules = new Map<string, string[]>(natOrder.map((c) => [c, []] as [string, string[]]))
  let count = 0
  const add = (m: Map<string, string[]>, chain: string, rest: string): void => {
    let list = m.get(chain)
    if (!list) {
      list = []
      m.set(chain, list)
    }
    list.push(`-A ${chain}${rest}`)
    count++
  }

  // fixed rules (25)
  add(filterRules, 'INPUT', ` -m conntrack --ctstate NEW${cm('kubernetes load balancer firewall')} -j KUBE-PROXY-FIREWALL`)
  add(filterRules, 'INPUT', `${cm('kubernetes health check service ports')} -j KUBE-NODEPORTS`)
  add(filterRules, 'INPUT', ` -m conntrack --ctstate NEW${cm('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES`)
  add(filterRules, 'INPUT', ' -j KUBE-FIREWALL')
  add(filterRules, 'FORWARD', ` -m conntrack --ctstate NEW${cm('kubernetes load balancer firewall')} -j KUBE-PROXY-FIREWALL`)
  add(filterRules, 'FORWARD', `${cm('kubernetes forwarding rules')} -j KUBE-FORWARD`)
  add(filterRules, 'FORWARD', ` -m conntrack --ctstate NEW${cm('kubernetes service portals')} -j KUBE-SERVICES`)
  add(filterRules, 'FORWARD', ` -m conntrack --ctstate NEW${cm('kubernetes externally-visible service portals')} -j KUBE-EXTERNAL-SERVICES`)
  add(filterRules, 'OUTPUT', ` -m conntrack --ctstate NEW${cm('kubernetes load balancer firewall')} -j KUBE-PROXY-FIREWALL`)
  add(filterRules, 'OUTPUT', ` -m conntrack --ctstate NEW${cm('kubernetes service portals')} -j KUBE-SERVICES`)
  add(filterRules, 'OUTPUT', ' -j KUBE-FIREWALL')
  add(filterRules, 'KUBE-FIREWALL', ` ! -s 127.0.0.0/8 -d 127.0.0.0/8${cm('block incoming localnet connections')} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`)
  add(filterRules, 'KUBE-FIREWALL', `${cm('kubernetes firewall for dropping marked packets')} -m mark --mark 0x8000/0x8000 -j DROP`)
  add(filterRules, 'KUBE-FORWARD', ' -m conntrack --ctstate INVALID -j DROP')
  add(filterRules, 'KUBE-FORWARD', `${cm('kubernetes forwarding rules')} -m mark --mark 0x4000/0x4000 -j ACCEPT`)
  add(filterRules, 'KUBE-FORWARD', `${cm('kubernetes forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
  add(natRules, 'PREROUTING', `${cm('kubernetes service portals')} -j KUBE-SERVICES`)
  add(natRules, 'OUTPUT', `${cm('kubernetes service portals')} -j KUBE-SERVICES`)
  add(natRules, 'POSTROUTING', `${cm('kubernetes postrouting rules')} -j KUBE-POSTROUTING`)
  add(natRules, 'KUBE-MARK-MASQ', ' -j MARK --set-xmark 0x4000/0x4000')
  add(natRules, 'KUBE-POSTROUTING', ' -m mark ! --mark 0x4000/0x4000 -j RETURN')
  add(natRules, 'KUBE-POSTROUTING', ' -j MARK --set-xmark 0x4000/0x0')
  add(natRules, 'KUBE-POSTROUTING', `${cm('kubernetes service traffic requiring SNAT')} -j MASQUERADE --random-fully`)
  // the nodeports jump must stay last in nat KUBE-SERVICES: it is added after the services
  const fixedTail = 2
  const budget = rules - fixedTail
  if (budget < count) throw new RangeError(`a kube-proxy dump needs at least ${count + fixedTail} rules`)

  let svc = 0
  let ep = 0
  const vip = (n: number): string => ip([10, 96], n)
  const podIp = (n: number): string => ip([10, 244], n)
  for (;;) {
    const left = budget - count
    if (left <= 0) break
    const name = `ns${svc % 97}/svc-${svc}:http`
    const port = 80 + (svc % 7) * 1000
    const proto = svc % 11 === 10 ? 'udp' : 'tcp'
    const nodePort = svc % 10 === 3 ? 30000 + (svc % 2768) : 0
    const endpoints = svc % 25 === 24 ? 0 : 1 + Math.floor(rand() * 27)
    const cost = endpoints === 0 ? 1 : 2 + 3 * endpoints + (nodePort ? 1 : 0)
    if (endpoints === 0 || cost > left) {
      // a service without endpoints: one filter REJECT (also fills the last few rules exactly)
      add(filterRules, 'KUBE-SERVICES', ` -d ${vip(svc)}/32 -p ${proto}${cm(`${name} has no endpoints`)} -m ${proto} --dport ${port} -j REJECT --reject-with icmp-port-unreachable`)
      svc++
      continue
    }
    const svcChain = `KUBE-SVC-${hash()}`
    add(natRules, 'KUBE-SERVICES', ` -d ${vip(svc)}/32 -p ${proto}${cm(`${name} cluster IP`)} -m ${proto} --dport ${port} -j ${svcChain}`)
    if (nodePort) add(natRules, 'KUBE-NODEPORTS', ` -p ${proto}${cm(name)} -m ${proto} --dport ${nodePort} -j ${svcChain}`)
    add(natRules, svcChain, ` ! -s 10.244.0.0/16 -d ${vip(svc)}/32 -p ${proto}${cm(`${name} cluster IP`)} -m ${proto} --dport ${port} -j KUBE-MARK-MASQ`)
    for (let i = 0; i < endpoints; i++) {
      const sep = `KUBE-SEP-${hash()}`
      const addr = podIp(ep++)
      const stat = i < endpoints - 1 ? ` -m statistic --mode random --probability ${(1 / (endpoints - i)).toFixed(11)}` : ''
      add(natRules, svcChain, `${cm(`${name} -> ${addr}:8080`)}${stat} -j ${sep}`)
      add(natRules, sep, ` -s ${addr}/32${cm(name)} -j KUBE-MARK-MASQ`)
      add(natRules, sep, ` -p ${proto}${cm(name)} -m ${proto} -j DNAT --to-destination ${addr}:8080`)
    }
    svc++
  }
  add(natRules, 'KUBE-SERVICES', `${cm('kubernetes service nodeports; NOTE: this must be the last rule in this chain')} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`)
  add(filterRules, 'KUBE-NODEPORTS', `${cm('kubernetes health check rules')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)

  const out: string[] = ['# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 2026', '*filter']
  out.push(':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]')
  for (const c of filterChains) out.push(`:${c} - [0:0]`)
  for (const list of filterRules.values()) for (const r of list) out.push(r)
  out.push('COMMIT', '# Completed on Thu Jan  1 00:00:00 2026')
  out.push('# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 2026', '*nat')
  out.push(':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]')
  for (const c of natRules.keys()) if (!['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'].includes(c)) out.push(`:${c} - [0:0]`)
  for (const list of natRules.values()) for (const r of list) out.push(r)
  out.push('COMMIT', '# Completed on Thu Jan  1 00:00:00 2026', '')
  if (count !== rules) throw new Error(`generator bug: ${count} rules instead of ${rules}`)
  return out.join('\n')
}
