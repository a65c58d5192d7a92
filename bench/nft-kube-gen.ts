// Deterministic generator of a kube-proxy nftables-mode ruleset, as `nft -j list ruleset` prints it, for benchmarks
// and tests.
//
// The layout follows kube-proxy's nftables proxier (pkg/proxy/nftables/proxier.go and its expected dumps in
// proxier_test.go): one `ip kube-proxy` table; sets cluster-ips / nodeport-ips; verdict maps service-ips,
// service-nodeports, no-endpoint-services, no-endpoint-nodeports, firewall-ips; base chains at -110/0/-100/100;
// per service a `service-<hash>-<ns>/<svc>/<proto>/<port>` chain (masquerade check, then `numgen random mod N vmap`
// over the endpoints), per endpoint an `endpoint-<hash>-...__<ip>/<port>` chain (hairpin masquerade + dnat), per
// NodePort service an `external-<hash>-...` chain. Every 50th service has no endpoints and goes to reject-chain.
// Handles are numbered the way the kernel gives them when the ruleset is loaded from nft text (`nft -f`): chains,
// then named sets and maps, then rules in listing order, an anonymous set taking a handle just before its rule.
//
// Imports only bench/kube-common.ts (itself self-contained), so benchmarks can load it without a build.

import {hashMaker, mulberry32} from './kube-common.js'

export interface KubeProxyNftOptions {
  /** seed of the pseudo-random endpoint counts, hashes and names */
  readonly seed?: number
  /** nft version to print in metainfo */
  readonly version?: string
}

export interface KubeProxyNft {
  /** the `nft -j list ruleset` output (one line and a newline, as nft prints it) */
  readonly json: string
  readonly rules: number
  readonly services: number
  readonly endpoints: number
}

type J = null | boolean | number | string | J[] | {[k: string]: J}

/** JSON the way nft (jansson) prints it: `, ` and `: ` separators, keys in insertion order, one line. */
export function nftStringify(v: J): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return '[' + v.map(nftStringify).join(', ') + ']'
  const parts: string[] = []
  for (const k in v) parts.push(JSON.stringify(k) + ': ' + nftStringify(v[k]!))
  return '{' + parts.join(', ') + '}'
}

const NAMESPACES = ['payments', 'checkout', 'catalog', 'search', 'identity', 'billing', 'shipping', 'inventory', 'analytics', 'messaging', 'media', 'platform', 'observability', 'ingress-nginx', 'kube-system', 'data-pipeline']
const SERVICES = ['api', 'gateway', 'frontend', 'backend', 'worker', 'cache', 'db-proxy', 'auth', 'events', 'grpc-edge', 'web', 'admin', 'metrics', 'scheduler', 'notifier', 'indexer']
const PORTS: ReadonlyArray<readonly [string, number, string]> = [
  ['http', 80, 'tcp'],
  ['https', 443, 'tcp'],
  ['grpc', 9090, 'tcp'],
  ['metrics', 9100, 'tcp'],
  ['dns', 53, 'udp'],
  ['app', 8080, 'tcp'],
]

/** A kube-proxy nftables-mode ruleset with at least `targetRules` rules (it stops after the service that gets there). */
export function generateKubeProxyNft(targetRules: number, options: KubeProxyNftOptions = {}): KubeProxyNft {
  const rand = mulberry32(options.seed ?? 0x6b756265)
  const hash = hashMaker(rand, 8)
  const ip = (a: number, b: number, n: number): string => `${a}.${b + ((n >> 16) & 255)}.${(n >> 8) & 255}.${n & 255}`

  const family = 'ip'
  const table = 'kube-proxy'
  let handle = 0
  const next = (): number => ++handle
  const P = (protocol: string, field: string): J => ({payload: {protocol, field}})
  const M = (key: string): J => ({meta: {key}})
  const match = (left: J, right: J, op = '=='): J => ({match: {op, left, right}})
  const jump = (target: string): J => ({jump: {target}})
  const goto = (target: string): J => ({goto: {target}})
  const ctNew = match({ct: {key: 'state'}}, 'new', 'in')
  const daddrProtoPort: J = {concat: [P('ip', 'daddr'), M('l4proto'), P('th', 'dport')]}

  const sets: J[] = []
  const chainDefs: Array<{name: string; base?: {type: string; hook: string; prio: number}; comment?: string}> = []
  const rulesOf = new Map<string, Array<{expr: J[]; comment?: string}>>()
  let ruleCount = 0
  const chain = (name: string, base?: {type: string; hook: string; prio: number}, comment?: string): void => {
    chainDefs.push({name, ...(base ? {base} : {}), ...(comment ? {comment} : {})})
    rulesOf.set(name, [])
  }
  const rule = (chainName: string, expr: J[], comment?: string): void => {
    rulesOf.get(chainName)!.push({expr, ...(comment ? {comment} : {})})
    ruleCount++
  }

  const clusterIps: J[] = []
  const nodeportIps: J[] = ['192.168.0.2']
  const serviceIps: J[] = []
  const serviceNodeports: J[] = []
  const noEndpointServices: J[] = []
  const noEndpointNodeports: J[] = []

  // fixed chains, in kube-proxy's order
  chain('cluster-ips-check')
  chain('filter-prerouting-pre-dnat', {type: 'filter', hook: 'prerouting', prio: -110})
  chain('filter-output-pre-dnat', {type: 'filter', hook: 'output', prio: -110})
  chain('filter-forward', {type: 'filter', hook: 'forward', prio: 0})
  chain('filter-input', {type: 'filter', hook: 'input', prio: 0})
  chain('filter-output', {type: 'filter', hook: 'output', prio: 0})
  chain('firewall-check')
  chain('mark-for-masquerade')
  chain('masquerading')
  chain('nat-output', {type: 'nat', hook: 'output', prio: -100})
  chain('nat-postrouting', {type: 'nat', hook: 'postrouting', prio: 100})
  chain('nat-prerouting', {type: 'nat', hook: 'prerouting', prio: -100})
  chain('nodeport-endpoints-check')
  chain('reject-chain', undefined, 'helper for @no-endpoint-services / @no-endpoint-nodeports')
  chain('services')
  chain('service-endpoints-check')

  rule('cluster-ips-check', [match(P('ip', 'daddr'), '@cluster-ips'), {reject: {type: 'icmp', expr: 'port-unreachable'}}], 'Reject traffic to invalid ports of ClusterIPs')
  // kube-proxy writes `ip daddr { 172.30.0.0/16 }`; nft lists a one-element anonymous set as the bare prefix
  rule('cluster-ips-check', [match(P('ip', 'daddr'), {prefix: {addr: '172.30.0.0', len: 16}}), {drop: null}], 'Drop traffic to unallocated ClusterIPs')
  rule('filter-prerouting-pre-dnat', [ctNew, jump('firewall-check')])
  rule('filter-output-pre-dnat', [ctNew, jump('firewall-check')])
  rule('filter-forward', [ctNew, jump('service-endpoints-check')])
  rule('filter-forward', [ctNew, jump('cluster-ips-check')])
  rule('filter-input', [ctNew, jump('nodeport-endpoints-check')])
  rule('filter-input', [ctNew, jump('service-endpoints-check')])
  rule('filter-output', [ctNew, jump('service-endpoints-check')])
  rule('filter-output', [ctNew, jump('cluster-ips-check')])
  rule('firewall-check', [{vmap: {key: daddrProtoPort, data: '@firewall-ips'}}])
  rule('mark-for-masquerade', [{mangle: {key: M('mark'), value: {'|': [M('mark'), 16384]}}}])
  rule('masquerading', [match({'&': [M('mark'), 16384]}, 0), {return: null}])
  rule('masquerading', [{mangle: {key: M('mark'), value: {'^': [M('mark'), 16384]}}}])
  rule('masquerading', [{masquerade: {flags: 'fully-random'}}])
  rule('nat-output', [jump('services')])
  rule('nat-postrouting', [jump('masquerading')])
  rule('nat-prerouting', [jump('services')])
  rule('nodeport-endpoints-check', [match(P('ip', 'daddr'), '@nodeport-ips'), {vmap: {key: {concat: [M('l4proto'), P('th', 'dport')]}, data: '@no-endpoint-nodeports'}}])
  rule('reject-chain', [{reject: {type: 'icmp', expr: 'port-unreachable'}}])
  rule('services', [{vmap: {key: daddrProtoPort, data: '@service-ips'}}])
  rule('services', [match(P('ip', 'daddr'), '@nodeport-ips'), {vmap: {key: {concat: [M('l4proto'), P('th', 'dport')]}, data: '@service-nodeports'}}])
  rule('service-endpoints-check', [{vmap: {key: daddrProtoPort, data: '@no-endpoint-services'}}])

  let services = 0
  let endpoints = 0
  let podN = 0
  let nodePort = 30000
  while (ruleCount < targetRules) {
    const s = services++
    const ns = NAMESPACES[Math.floor(rand() * NAMESPACES.length)]!
    const svc = SERVICES[Math.floor(rand() * SERVICES.length)]! + `-${s.toString(36)}`
    const [portName, port, proto] = PORTS[Math.floor(rand() * PORTS.length)]!
    const clusterIp = ip(172, 30, s + 1)
    const id = `${ns}/${svc}/${proto}/${portName}`
    const svcHash = hash()
    clusterIps.push(clusterIp)
    if (s % 50 === 49) {
      noEndpointServices.push([{elem: {val: {concat: [clusterIp, proto, port]}, comment: `${ns}/${svc}:${portName}`}}, goto('reject-chain')])
      continue
    }
    const nEp = 1 + Math.floor(rand() * 5)
    const targetPort = port === 53 ? 53 : 8000 + Math.floor(rand() * 1000)
    const svcChain = `service-${svcHash}-${id}`
    const epChains: string[] = []
    chain(svcChain)
    rule(svcChain, [match(P('ip', 'daddr'), clusterIp), match(P(proto, 'dport'), port), match(P('ip', 'saddr'), {prefix: {addr: '10.0.0.0', len: 8}}, '!='), jump('mark-for-masquerade')])
    const vm: J[] = []
    for (let e = 0; e < nEp; e++) {
      const pod = ip(10, 180, podN++)
      const epChain = `endpoint-${hash()}-${id}__${pod}/${targetPort}`
      epChains.push(epChain)
      vm.push([e, goto(epChain)])
      endpoints++
    }
    rule(svcChain, [{vmap: {key: {numgen: {mode: 'random', mod: nEp, offset: 0}}, data: {set: vm}}}])
    for (let e = 0; e < nEp; e++) {
      const epChain = epChains[e]!
      const pod = epChain.slice(epChain.lastIndexOf('__') + 2, epChain.lastIndexOf('/'))
      chain(epChain)
      rule(epChain, [match(P('ip', 'saddr'), pod), jump('mark-for-masquerade')])
      rule(epChain, [match(M('l4proto'), proto), {dnat: {addr: pod, port: targetPort}}])
    }
    serviceIps.push([{concat: [clusterIp, proto, port]}, goto(svcChain)])
    if (s % 4 === 0) {
      const extChain = `external-${svcHash}-${id}`
      chain(extChain)
      rule(extChain, [jump('mark-for-masquerade')])
      rule(extChain, [goto(svcChain)])
      serviceNodeports.push([{concat: [proto, nodePort++]}, goto(extChain)])
    }
  }

  const out: J[] = [{metainfo: {version: options.version ?? '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1}}]
  out.push({table: {family, name: table, handle: 1}})
  const chainHandles = chainDefs.map(() => next())
  const set = (kind: 'set' | 'map', name: string, type: J, comment: string, elem: J[], map?: string): void => {
    const o: {[k: string]: J} = {family, name, table, type, handle: next(), comment}
    if (map) o.map = map
    if (elem.length) o.elem = elem
    sets.push({[kind]: o})
  }
  set('set', 'cluster-ips', 'ipv4_addr', 'Active ClusterIPs', clusterIps)
  set('set', 'nodeport-ips', 'ipv4_addr', 'IPs that accept NodePort traffic', nodeportIps)
  set('map', 'firewall-ips', ['ipv4_addr', 'inet_proto', 'inet_service'], 'destinations that are subject to LoadBalancerSourceRanges', [], 'verdict')
  set('map', 'no-endpoint-nodeports', ['inet_proto', 'inet_service'], 'vmap to drop or reject packets to service nodeports with no endpoints', noEndpointNodeports, 'verdict')
  set('map', 'no-endpoint-services', ['ipv4_addr', 'inet_proto', 'inet_service'], 'vmap to drop or reject packets to services with no endpoints', noEndpointServices, 'verdict')
  set('map', 'service-ips', ['ipv4_addr', 'inet_proto', 'inet_service'], 'ClusterIP, ExternalIP and LoadBalancer IP traffic', serviceIps, 'verdict')
  set('map', 'service-nodeports', ['inet_proto', 'inet_service'], 'NodePort traffic', serviceNodeports, 'verdict')
  out.push(...sets)
  chainDefs.forEach((c, i) => {
    // nft 1.0.6 does not print chain comments in JSON
    const o: {[k: string]: J} = {family, table, name: c.name, handle: chainHandles[i]!}
    if (c.base) Object.assign(o, {type: c.base.type, hook: c.base.hook, prio: c.base.prio, policy: 'accept'})
    out.push({chain: o})
  })
  for (const c of chainDefs) {
    for (const r of rulesOf.get(c.name)!) {
      if (nftStringify(r.expr).includes('{"set": ')) next() // the anonymous set's handle
      const o: {[k: string]: J} = {family, table, chain: c.name, handle: next()}
      if (r.comment) o.comment = r.comment
      o.expr = r.expr
      out.push({rule: o})
    }
  }
  return {json: nftStringify({nftables: out}) + '\n', rules: ruleCount, services, endpoints}
}
