// Shared by the kernel tests of `snapshot`: a network namespace (prefix `lds`) with rules in filter, nat,
// mangle and raw (and one in the legacy backend), policy routing, extra addresses and non-default sysctls;
// and helpers to run the built CLI inside it. Everything happens inside the namespace; it is deleted after.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = join(ROOT, 'bin/run.js')

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** Why the kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  for (const c of ['ip', 'iptables', 'iptables-legacy', 'ip6tables', 'nft', 'sysctl', 'setpriv']) if (!has(c)) return `needs ${c}`
  if (!existsSync(join(ROOT, 'dist/commands/snapshot.js'))) return 'needs a build (npx tsc -p tsconfig.build.json; node scripts/manifest.js)'
  return undefined
}

/** The setup, one command per line, run with `ip netns exec NS`. */
export const SETUP: readonly string[] = [
  'ip link set lo up',
  'ip link add ldsd0 type veth peer name ldsd1',
  'ip link set ldsd0 addrgenmode none',
  'ip link set ldsd1 addrgenmode none',
  'ip link set ldsd0 up',
  'ip link set ldsd1 up',
  'ip addr add 10.77.0.1/24 dev ldsd0',
  'ip addr add 10.77.1.1/24 dev ldsd0',
  'ip addr add 192.0.2.100/32 dev lo',
  'ip route add 198.51.100.0/24 via 10.77.0.2 dev ldsd0',
  'ip route add default via 10.77.0.254 dev ldsd0 table 100',
  'ip route add 203.0.113.0/24 dev ldsd0 table 100',
  'ip rule add from 10.77.1.0/24 lookup 100 priority 1000',
  'ip rule add fwmark 0x1 lookup 100 priority 1001',
  'iptables -A INPUT -p tcp --dport 22 -j ACCEPT',
  'iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP',
  'iptables -P FORWARD DROP',
  'iptables -t nat -A PREROUTING -d 192.0.2.100/32 -p tcp --dport 80 -j DNAT --to-destination 10.77.0.10:8080',
  'iptables -t nat -A POSTROUTING -o ldsd0 -j MASQUERADE',
  'iptables -t mangle -A PREROUTING -d 192.0.2.100/32 -p tcp --dport 80 -j MARK --set-mark 0x1',
  'iptables -t raw -A PREROUTING -p udp --dport 53 -j CT --notrack',
  'iptables -N LDS_CHAIN',
  'iptables -A INPUT -s 10.77.0.0/24 -j LDS_CHAIN',
  'iptables -A LDS_CHAIN -j RETURN',
  'ip6tables -A INPUT -p ipv6-icmp -j ACCEPT',
  'iptables-legacy -A INPUT -s 203.0.113.7/32 -j DROP',
  'nft add table inet lds_t',
  "nft add chain inet lds_t lds_in { type filter hook input priority 10 ; policy accept ; }",
  'nft add rule inet lds_t lds_in tcp dport 8443 accept',
  'sysctl -qw net.ipv4.ip_forward=1',
  'sysctl -qw net.ipv4.conf.all.arp_ignore=1',
  'sysctl -qw net.ipv4.conf.all.arp_announce=2',
  'sysctl -qw net.ipv4.conf.ldsd0.rp_filter=2',
  'sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0',
]

/** Non-default sysctls the setup makes. */
export const SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.ip_forward': '1',
  'net.ipv4.conf.all.arp_ignore': '1',
  'net.ipv4.conf.all.arp_announce': '2',
  'net.ipv4.conf.ldsd0.rp_filter': '2',
  'net.netfilter.nf_conntrack_tcp_loose': '0',
}

export function makeNamespace(tag: string): string {
  const ns = `lds-${tag}-${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  try {
    for (const line of SETUP) {
      // nft reads `{ ... ; }` as separate words: pass them as argv words, no shell
      execFileSync('ip', ['netns', 'exec', ns, ...line.split(' ')], {stdio: ['ignore', 'ignore', 'pipe']})
    }
  } catch (e) {
    deleteNamespace(ns)
    throw e
  }
  return ns
}

export function deleteNamespace(ns: string): void {
  spawnSync('ip', ['netns', 'del', ns])
}

export interface Ran {
  status: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs argv inside the namespace (optionally through a prefix such as setpriv or env). */
export function inNs(ns: string, argv: readonly string[], opts: {prefix?: readonly string[]; input?: string} = {}): Ran {
  const started = performance.now()
  const r = spawnSync('ip', ['netns', 'exec', ns, ...(opts.prefix ?? []), ...argv], {encoding: 'utf8', input: opts.input, timeout: 60_000, cwd: ROOT})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Math.round(performance.now() - started)}
}

/** Runs the built CLI inside the namespace. */
export function cli(ns: string, args: readonly string[], opts: {prefix?: readonly string[]} = {}): Ran {
  return inNs(ns, [process.execPath, BIN, ...args], opts)
}

/** Which program path to link when building a PATH that lacks some programs. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], {encoding: 'utf8'})
  return r.status === 0 ? r.stdout.trim() : undefined
}
