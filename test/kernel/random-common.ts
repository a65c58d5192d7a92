// What the random kernel generators share (random-scenarios.ts, random-local-scenarios.ts, random-udp-scenarios.ts):
// the topology of scenarios.ts with the ldz prefix, the draws, and the realserver's filter rules.
//   c ldz-c0 203.0.113.10 ── ldz-d0 203.0.113.1  d  ldz-d1 10.1.0.1 ── ldz-r0 10.1.0.10  r
//   c ldz-c1 192.0.2.10   ── ldz-g1 192.0.2.1    g  ldz-g0 10.2.0.1 ── ldz-r1 10.2.0.10  r
import type {Scenario} from './harness.js'

export const VIP = '198.51.100.100'
export type Link = Scenario['links'][number]
export const CD: Link = ['c', 'ldz-c0', '203.0.113.10/24', 'd', 'ldz-d0', '203.0.113.1/24']
export const DR: Link = ['d', 'ldz-d1', '10.1.0.1/24', 'r', 'ldz-r0', '10.1.0.10/24']
export const RG: Link = ['r', 'ldz-r1', '10.2.0.10/24', 'g', 'ldz-g0', '10.2.0.1/24']
export const GC: Link = ['g', 'ldz-g1', '192.0.2.1/24', 'c', 'ldz-c1', '192.0.2.10/24']

/** Renames the ldz- interfaces of commands and links to another prefix (LVSDOCTOR_KERNEL_PREFIX): the rules name them. */
export function renamer(prefix: string): {dev: (s: string) => string; links: (ls: readonly Link[]) => Link[]} {
  const dev = (s: string) => (prefix === 'ldz' ? s : s.replace(/\bldz-/g, `${prefix}-`))
  return {dev, links: (ls) => ls.map((l) => l.map(dev) as unknown as Link)}
}

/** pick: one of the list; some: 0..max picks (a rule may repeat, as in real rulesets). */
export function draws(rnd: () => number): {pick: <T>(xs: readonly T[]) => T; some: <T>(xs: readonly T[], max: number) => T[]} {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const some = <T>(xs: readonly T[], max: number): T[] => {
    const out: T[] = []
    for (let n = Math.floor(rnd() * (max + 1)); n > 0; n--) out.push(pick(xs))
    return out
  }
  return {pick, some}
}

/** The realserver's INPUT rules the generators draw from, for its service port. */
export function realserverInput(proto: 'tcp' | 'udp', port: number): string[] {
  return [
    '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    `-p ${proto} -m state --state NEW -m ${proto} --dport ${port} -j ACCEPT`,
    `-p ${proto} --dport ${port} -j ACCEPT`,
    '-m conntrack --ctstate INVALID -j DROP',
    '-s 203.0.113.10/32 -j ACCEPT',
    '-s 10.1.0.1/32 -j ACCEPT',
    '-i ldz-r0 -j ACCEPT',
    '-j REJECT --reject-with icmp-port-unreachable',
  ]
}

/** The realserver's OUTPUT rules the generators draw from. */
export function realserverOutput(proto: 'tcp' | 'udp', port: number): string[] {
  return ['-m state --state ESTABLISHED -j ACCEPT', `-p ${proto} --sport ${port} -j ACCEPT`, '-m conntrack --ctstate INVALID -j DROP', '-o ldz-r1 -j DROP']
}
