// `check`: load snapshots, run the rules, build the report of the JSON contract.
import {SEVERITY_ORDER, type Finding, type Severity} from '../model/finding.js'
import type {HostSnapshot, Role} from '../model/snapshot.js'
import type {NotModelled} from '../model/source.js'
import {loadSnapshots} from '../snapshot/store.js'
import {RULES, runRules} from '../rules/index.js'
import {UsageError} from '../model/source.js'
import {formatEndpoint} from '../model/ip.js'
import type {FlowHint, Rule} from '../rules/types.js'

export interface HostCounts {
  iptablesRules: number
  ip6tablesRules: number
  nftRules: number
  ipvsServices: number
  ipvsDestinations: number
  routes: number
  addresses: number
}

export interface HostReport {
  name: string
  role: Role
  roleInferred: boolean
  source: string
  files: string[]
  counts: HostCounts
  notModelled: NotModelled[]
}

export interface InputProblem {
  host: string
  file: string
  line?: number
  message: string
}

export interface CheckReport {
  tool: 'lvsdoctor'
  version: string
  hosts: HostReport[]
  findings: Finding[]
  errors: InputProblem[]
}

export interface CheckOptions {
  version: string
  ignore?: readonly string[]
  rules?: readonly Rule[]
  /** `--vip`: connections asked about; the rules also check that these very flows are served */
  flows?: readonly FlowHint[]
}

export function hostCounts(h: HostSnapshot): HostCounts {
  return {
    iptablesRules: (h.iptables?.ruleCount ?? 0) + (h.iptablesLegacy?.ruleCount ?? 0),
    ip6tablesRules: h.ip6tables?.ruleCount ?? 0,
    // rules made by iptables-nft are counted once, under iptablesRules, when iptables-save is beside them
    nftRules: (h.nft?.ruleCount ?? 0) - (h.nft && h.iptables && h.iptables.backend !== 'legacy' ? h.nft.xtRules : 0),
    ipvsServices: h.ipvs?.services.length ?? 0,
    ipvsDestinations: h.ipvs?.services.reduce((n, s) => n + s.dests.length, 0) ?? 0,
    routes: h.routes?.length ?? 0,
    addresses: h.interfaces?.reduce((n, i) => n + i.addresses.length, 0) ?? 0,
  }
}

export function checkHosts(hosts: HostSnapshot[], opts: CheckOptions): CheckReport {
  const rules = opts.rules ?? RULES
  const ignore = new Set(opts.ignore ?? [])
  for (const id of ignore) {
    if (!rules.some((r) => r.meta.id === id)) throw new UsageError(`--ignore ${id}: no such rule (rules: ${rules.map((r) => r.meta.id).join(', ')})`)
  }
  // report order: host, severity, rule; fix commands are rendered in that order, so their positions are exact when
  // applied in it. Problems found once those fixes are applied follow (rounds.ts), in the same order among them.
  const findings = runRules(opts.flows?.length ? {hosts, flows: opts.flows} : {hosts}, rules, {
    filter: (f) => !ignore.has(f.rule),
    order: (raw) =>
      raw.sort(
        (a, b) =>
          hostIndex(hosts, a.host) - hostIndex(hosts, b.host) ||
          SEVERITY_ORDER[b.severity] - SEVERITY_ORDER[a.severity] ||
          // rule ids are ASCII kebab-case, where code-unit order is localeCompare's: no ICU collator to load (~2.5 MB, 5-8 ms)
          (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
      ),
  })
  return {
    tool: 'lvsdoctor',
    version: opts.version,
    hosts: hosts.map((h) => ({
      name: h.name,
      role: h.role,
      roleInferred: h.roleInferred,
      source: h.source,
      files: h.files,
      counts: hostCounts(h),
      notModelled: [...h.notModelled, ...ruleEngineGaps(h)],
    })),
    findings,
    errors: hosts.flatMap((h) => h.errors.map((e) => ({host: h.name, file: e.file, line: e.line, message: e.message}))),
  }
}

/**
 * What the load-balancer checks do not read: nft tables of families other than ip/inet (the engine looks at
 * IPv4; ip6, arp, bridge and netdev tables are kept and traced, not checked). Rules made by iptables-nft are
 * read from the iptables view when iptables-save is beside them.
 */
export function ruleEngineGaps(h: HostSnapshot): NotModelled[] {
  const out: NotModelled[] = []
  // IPv6: the service model and the rules are IPv4 (issue 4); an IPv6 service or ruleset is said, not skipped silently
  for (const s of h.ipvs?.services ?? []) {
    if (s.family === 4) continue
    const key = s.proto === 'fwmark' ? `fwmark ${s.fwmark}` : `${s.proto.toUpperCase()} ${s.vip ? formatEndpoint({ip: s.vip, port: s.port ?? 0}) : '?'}`
    out.push({file: s.loc.file, line: s.loc.line, what: `IPv6 virtual service ${key}: not evaluated by the load-balancer checks (they read IPv4 services)`})
  }
  // ipvsadm -Ln --stats/--rate/--thresholds/--persistent-conn print neither the forwarding method nor the weights: the NAT and DR
  // checks cannot tell which apply (trace states what it assumes)
  for (const s of h.ipvs?.services ?? []) {
    if (s.family !== 4) continue
    const unknown = s.dests.filter((d) => d.method === 'unknown').length
    if (unknown === 0) continue
    const key = s.proto === 'fwmark' ? `fwmark ${s.fwmark}` : `${s.proto.toUpperCase()} ${s.vip ? formatEndpoint({ip: s.vip, port: s.port ?? 0}) : '?'}`
    out.push({file: s.loc.file, line: s.loc.line, what: `virtual service ${key}: the listing does not show how its ${unknown} destination(s) are forwarded (ipvsadm -Ln --stats, --rate, --thresholds or --persistent-conn), so the NAT and DR checks did not evaluate them; ipvsadm -Sn or plain -Ln shows it`})
  }
  for (const t of h.nft?.tables ?? []) {
    if (t.family !== 'inet' || (t.xtables && h.iptables)) continue
    for (const c of t.chains.values()) {
      for (const r of c.rules) {
        if (r.stmts.some((st) => st.kind === 'nat' && st.family === 'ip6')) out.push({file: r.loc.file, line: r.loc.line, what: `NAT to IPv6 (${r.loc.text}): not evaluated by the load-balancer checks (they read IPv4)`})
      }
    }
  }
  if (h.ip6tables && h.ip6tables.ruleCount > 0) {
    out.push({file: h.ip6tables.file, line: 1, what: `${h.ip6tables.ruleCount} ip6tables rule(s): not evaluated by the load-balancer checks (they read IPv4: iptables-save and nft ip/inet tables)`})
  }
  for (const t of h.nft?.tables ?? []) {
    if (t.family === 'ip' || t.family === 'inet') continue
    if (t.xtables && h.iptables) continue
    let n = 0
    for (const c of t.chains.values()) n += c.rules.length
    if (n > 0) out.push({file: 'nft-ruleset.json', line: t.loc.line, what: `table ${t.family} ${t.name}: ${n} rule(s) not evaluated by the load-balancer checks (they read ip and inet tables)`})
  }
  return out
}

function hostIndex(hosts: readonly HostSnapshot[], name: string): number {
  const i = hosts.findIndex((h) => h.name === name)
  return i < 0 ? hosts.length : i
}

export function checkPaths(paths: readonly string[], opts: CheckOptions): CheckReport {
  return checkHosts(loadSnapshots(paths), opts)
}

/** Exit code of the contract: 2 for unreadable input, 1 for findings at or above failOn, else 0. */
export function checkExitCode(report: CheckReport, failOn: Severity | 'none'): 0 | 1 | 2 {
  if (report.errors.length > 0) return 2
  if (failOn === 'none') return 0
  return report.findings.some((f) => SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER[failOn]) ? 1 : 0
}
