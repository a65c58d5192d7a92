// Random IPVS lab scenarios: the fixed scenarios of scenarios/ show one pitfall each; these combine the parts at
// random — forwarding method (NAT, DR, TUN), one to three realservers with weights (some 0), the scheduler,
// persistence (with or without a netmask), fwmark services and their mangle MARK rule, the director's filter rules
// (INPUT, FORWARD, OUTPUT; stateful or not; ctstate INVALID DROP; REJECT), sysctls (vs.conntrack, ip_forward,
// rp_filter, expire_nodest_conn), the realservers' gateway (the director or a router) and a realserver firewall —
// so that trace's IPVS model is judged by the kernel on combinations nobody wrote down. Deterministic for a seed.
//
// Each scenario is a lab script in the words of guest/lib.sh, written to a directory outside scenarios/ (lab.sh
// takes it with IPVS_LAB_EXTRA): generated scenarios are never fixed ones unless promoted on purpose.
//
// Destination order: the kernel keeps a service's destinations in the reverse order they were added (list_add
// at the head in __ip_vs_update_dest) and rr, wrr, sh, mh, ... walk that list, while ipvsadm -Ln/-Sn sort them
// by address (ipvs_sort_dests unless --nosort), so a snapshot cannot tell the kernel's order. The scenarios add
// the realservers from the highest address down: the kernel's list is then the listing's order, and which
// realserver the scheduler picks for the one client is something trace can be held to.
//
// Addresses (the fixed scenarios' topologies, with up to three realservers):
//   NAT: client 203.0.113.10 -- outside LAN -- director 203.0.113.1 (VIP 203.0.113.100 on eth0) / 10.1.0.1 --
//        inside LAN -- rsN 10.1.0.1N; router 203.0.113.254 / 10.1.0.254 on both LANs when it is the gateway
//   DR/TUN: client 198.51.100.10 -- wan -- router 198.51.100.1 / 10.0.0.254 -- LAN -- director 10.0.0.1
//        (VIP 10.0.0.100 on eth0), rsN 10.0.0.1N with the VIP on lo (DR) or tunl0 (TUN)
import {mulberry32} from '../../bench/kube-common.js'

export interface IpvsLabScenario {
  /** the scenario's name (its file is NAME.sh) */
  readonly name: string
  /** one line: what was drawn */
  readonly why: string
  /** realserver host -> its address (to compare the kernel's choice with trace's) */
  readonly realservers: Readonly<Record<string, string>>
  /** the script; `fixes` (host -> shell commands) are run at the end of setup(), for the fixed variant */
  script(fixes?: ReadonlyMap<string, readonly string[]>): string
}

export const DEFAULT_SEED = 20261121
export const DEFAULT_COUNT = 7

const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'dh', 'sed', 'nq', 'fo', 'ovf', 'lblc', 'lblcr'] as const

/** A shell word for dash: single-quoted. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export function randomIpvsScenarios(seed: number, count: number): IpvsLabScenario[] {
  const rnd = mulberry32(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const chance = (p: number) => rnd() < p
  /** 1..max draws from xs (repeats possible, as in test/kernel/random-scenarios.ts) */
  const some = <T>(xs: readonly T[], max: number): T[] => {
    const out: T[] = []
    for (let n = 1 + Math.floor(rnd() * max); n > 0; n--) out.push(pick(xs))
    return out
  }
  // the rarer parts: their own stream, so that adding them left the first stream's draws (and so every
  // scenario's base for a seed) unchanged
  const rnd2 = mulberry32((seed ^ 0x5bd1e995) >>> 0)
  const chance2 = (p: number) => rnd2() < p
  const pick2 = <T>(xs: readonly T[]): T => xs[Math.floor(rnd2() * xs.length)]!
  // a third stream for where the client is and a local destination (added later: the first two streams' draws stay)
  const rnd3 = mulberry32((seed ^ 0x27d4eb2f) >>> 0)
  // a fourth stream (added later; the first three streams' draws stay) for what persistence is for: a second
  // client (of the same -M network or not), realservers drained between a client's connections (ipvsadm -e -w 0,
  // what keepalived's inhibit_on_failure does after a failed health check) with or without
  // net.ipv4.vs.expire_quiescent_template, and a port-zero service (-t VIP:0, all ports; keepalived's
  // `virtual_server VIP 0`). Eight draws per scenario whatever is used, so that each scenario's stay the same.
  // Not for the default seed: its scenarios are the ones CI runs, and stay as they were reviewed.
  const rnd4 = mulberry32((seed ^ 0x165667b1) >>> 0)
  const extra4 = seed !== DEFAULT_SEED
  const out: IpvsLabScenario[] = []
  for (let i = 0; i < count; i++) {
    const x4 = Array.from({length: 8}, () => rnd4())
    const method = pick(['nat', 'nat', 'nat', 'dr', 'dr', 'tun'] as const)
    const nat = method === 'nat'
    const nrs = 1 + Math.floor(rnd() * 3)
    const rsNames = Array.from({length: nrs}, (_, k) => `rs${k + 1}`)
    const rsAddr = (k: number) => (nat ? `10.1.0.${11 + k}` : `10.0.0.${11 + k}`)
    const vip = nat ? '203.0.113.100' : '10.0.0.100'
    const client = nat ? '203.0.113.10' : '198.51.100.10'
    const rport = nat ? pick([8080, 8080, 80]) : 80
    const weights = rsNames.map(() => pick([1, 1, 1, 2, 3, 0]))
    const scheduler = pick(SCHEDULERS)
    const persistent = chance(0.25)
    const netmask = persistent && chance(0.5) ? pick(['255.255.255.0', '255.255.0.0']) : undefined
    const fwmark = chance(0.2)
    const marking = fwmark ? pick(['marked', 'marked', 'marked', 'unmarked', 'other-port', 'other-mark'] as const) : undefined
    const conntrack = chance(0.4)
    const ipForward = nat ? (chance(0.85) ? 1 : 0) : chance(0.5) ? 1 : 0
    const gw = nat ? pick(['director', 'director', 'router'] as const) : pick(['router', 'router', 'router', 'director'] as const)
    const masq = nat && gw === 'router' && chance(0.5)
    const expireNodest = chance(0.3) ? 1 : 0
    const rpDirector = pick([0, 0, 0, 1, 2])
    const tunStrict = method === 'tun' && chance(0.3)
    const why: string[] = [`${method.toUpperCase()}, ${nrs} realserver(s) weights ${weights.join('/')}, ${scheduler}`]
    if (persistent) why.push(`persistent${netmask ? ` -M ${netmask}` : ''}`)
    if (fwmark) why.push(`fwmark ${marking}`)
    why.push(`vs.conntrack=${conntrack ? 1 : 0}`, `ip_forward=${ipForward}`, `gateway ${gw}${masq ? ' + MASQUERADE' : ''}`)
    if (rpDirector) why.push(`director rp_filter=${rpDirector}`)
    if (tunStrict) why.push('tunl0 rp_filter=1')

    const d: string[] = []
    // the director's filter rules
    if (chance(0.35)) {
      why.push('director INPUT')
      const pol = pick(['ACCEPT', 'ACCEPT', 'DROP'])
      for (const r of some([
        '-i lo -j ACCEPT',
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-p tcp -m state --state NEW -m tcp --dport 80 -j ACCEPT',
        '-p tcp -m tcp --dport 80 -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
        `-d ${vip}/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset`,
        '-p tcp -m tcp --dport 22 -j ACCEPT',
        '-j REJECT --reject-with icmp-port-unreachable',
      ], 3)) d.push(`iptables -A INPUT ${r}`)
      d.push(`iptables -P INPUT ${pol}`)
    }
    if (chance(nat ? 0.4 : 0.2)) {
      why.push('director FORWARD')
      const pol = pick(['ACCEPT', 'ACCEPT', 'DROP'])
      const inside = nat ? '10.1.0.0/24' : '10.0.0.0/24'
      for (const r of some([
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
        `-p tcp -m state --state NEW -m tcp --dport ${rport} -j ACCEPT`,
        `-s ${inside} -j ACCEPT`,
        `-d ${inside} -j ACCEPT`,
        `-p tcp -m tcp --sport ${rport} -j ACCEPT`,
        '-j REJECT --reject-with icmp-host-prohibited',
      ], 3)) d.push(`iptables -A FORWARD ${r}`)
      d.push(`iptables -P FORWARD ${pol}`)
    }
    if (chance(0.3)) {
      why.push('director OUTPUT')
      const pol = pick(['ACCEPT', 'DROP'])
      for (const r of some([
        '-o lo -j ACCEPT',
        '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
        `-p tcp -m tcp --sport ${rport} -j ACCEPT`,
        `-p tcp -m tcp --dport ${rport} -j ACCEPT`,
        `-o ${nat ? 'eth1' : 'eth0'} -j ACCEPT`,
      ], 3)) d.push(`iptables -A OUTPUT ${r}`)
      d.push(`iptables -P OUTPUT ${pol}`)
    }
    // the service
    const portZero = extra4 && persistent && !fwmark && x4[0]! < 0.25
    if (portZero) why.push('port-zero service (-t VIP:0)')
    const svc = fwmark ? '-f 1' : `-t ${vip}:${portZero ? 0 : 80}`
    if (fwmark && marking !== 'unmarked') {
      const dport = marking === 'other-port' ? 443 : 80
      const mark = marking === 'other-mark' ? 2 : 1
      d.push(`iptables -t mangle -A PREROUTING -d ${vip}/32 -p tcp -m tcp --dport ${dport} -j MARK --set-xmark 0x${mark}/0xffffffff`)
    }
    d.push(`ipvsadm -A ${svc} -s ${scheduler}${persistent ? ' -p 60' : ''}${netmask ? ` -M ${netmask}` : ''}`)
    const flag = method === 'nat' ? '-m' : method === 'dr' ? '-g' : '-i'
    // from the highest address down: the kernel's list is then the listing's order (see the head comment)
    for (let k = nrs - 1; k >= 0; k--) d.push(`ipvsadm -a ${svc} -r ${rsAddr(k)}:${rport} ${flag} -w ${weights[k]}`)
    if (masq) d.push('iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE')

    // realserver firewalls: on one of them or on all
    const rsRules = new Map<string, string[]>()
    if (chance(0.3)) {
      const which = nrs > 1 && chance(0.6) ? [pick(rsNames)] : rsNames
      const kind = pick(['drop-port', 'reject-port', 'drop-client-net', 'stateful', 'invalid-drop'] as const)
      why.push(`realserver firewall ${kind} on ${which.join(',')}`)
      const cnet = nat ? '203.0.113.0/24' : '198.51.100.0/24'
      const rules =
        kind === 'drop-port' ? [`iptables -A INPUT -p tcp -m tcp --dport ${rport} -j DROP`]
        : kind === 'reject-port' ? [`iptables -A INPUT -p tcp -m tcp --dport ${rport} -j REJECT --reject-with tcp-reset`]
        : kind === 'drop-client-net' ? [`iptables -A INPUT -s ${cnet} -j DROP`]
        : kind === 'stateful' ? ['iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', `iptables -A INPUT -p tcp -m state --state NEW -m tcp --dport ${rport} -j ACCEPT`, 'iptables -P INPUT DROP']
        : ['iptables -A INPUT -m conntrack --ctstate INVALID -j DROP']
      for (const h of which) rsRules.set(h, rules)
    }

    // rarer parts (second stream)
    const dportMismatch = !nat && chance2(0.15)
    if (dportMismatch) why.push('destinations on port 8080 (DR/TUN keep the port: the servers listen on 80)')
    const notrack = chance2(0.12) ? pick2(['NOTRACK', 'CT --notrack']) : undefined
    if (notrack) why.push(`director raw ${notrack} for the VIP`)
    const tcpLoose0 = chance2(0.15)
    if (tcpLoose0) why.push('director nf_conntrack_tcp_loose=0')
    const noVip = !nat && nrs > 0 && chance2(0.12) ? pick2(rsNames) : undefined
    if (noVip) why.push(`${noVip} without the VIP`)
    const noRoute = chance2(0.08) ? pick2(rsNames) : undefined
    if (noRoute) why.push(`${noRoute} without a default route`)
    // the client: an outside host, or (third stream) a realserver (NAT: its own VIP from behind the director) or
    // the director itself (IPVS at LOCAL_OUT)
    const c3 = rnd3()
    const clientAt = nat && c3 < 0.2 ? 'rs1' : c3 > 0.9 ? 'director' : 'client'
    const clientFrom = clientAt === 'rs1' ? rsAddr(0) : clientAt === 'director' ? (nat ? '10.1.0.1' : '10.0.0.1') : client
    if (clientAt !== 'client') why.push(`the client is ${clientAt} (${clientFrom})`)
    // fourth stream: a second client and draining, for a persistent service
    const client2 = extra4 && persistent && clientAt === 'client' && x4[1]! < 0.6
    const client2From = nat ? '203.0.113.11' : '198.51.100.11'
    if (client2) why.push(`a second client ${client2From}`)
    let quiesce = extra4 && persistent && x4[2]! < 0.6 ? rsNames.filter((_, k) => x4[3 + k]! < 0.5) : []
    if (extra4 && persistent && x4[2]! < 0.6 && quiesce.length === 0) quiesce = rsNames
    const expireQuiescent = quiesce.length > 0 && x4[6]! < 0.4
    if (quiesce.length > 0) why.push(`${quiesce.join(',')} drained (weight 0) before the client connects again${expireQuiescent ? ', vs.expire_quiescent_template=1' : ''}`)
    // a local destination: the director itself, LVS-NAT only (third stream)
    const localDest = nat && rnd3() < 0.15
    if (localDest) {
      why.push(`the director 10.1.0.1:${rport} is a destination too`)
      d.push(`ipvsadm -a ${svc} -r 10.1.0.1:${rport} -m -w 1`)
    }
    if (dportMismatch) for (let k = 0; k < d.length; k++) d[k] = d[k]!.replace(/^(ipvsadm -a .* -r [\d.]+):80 /, '$1:8080 ')
    if (notrack) d.unshift(`iptables -t raw -A PREROUTING -d ${vip}/32 -p tcp -m tcp --dport 80 -j ${notrack}`)

    const name = `rnd-${seed}-${i}`
    const title = why[0]!
    const script = (fixes?: ReadonlyMap<string, readonly string[]>): string => {
      const L: string[] = []
      L.push(`# Generated by test/ipvs-lab/random-scenarios.ts: seed ${seed}, scenario ${i}. Not a fixed scenario (it lives`)
      L.push(`# outside scenarios/); the kernel's outcome is what trace is held to.`)
      L.push(`# Reproduces: random combination (${why.join('; ')})`)
      L.push(`TITLE=${sq(title)}`)
      L.push(`SOURCE="test/ipvs-lab/random-scenarios.ts seed ${seed} #${i}"`)
      L.push(`NOTES=${sq(why.join('; ') + (fixes ? '; with check\'s fixes applied' : ''))}`)
      L.push('', 'setup() {')
      const s = (line: string) => L.push(`  ${line}`)
      if (nat) {
        s('host client client')
        s('host director director')
        for (const h of rsNames) s(`host ${h} realserver`)
        if (gw === 'router') s('host router router')
        if (client2) s('host client2 client')
        s(`lan outside client:eth0:203.0.113.10/24 director:eth0:203.0.113.1/24${gw === 'router' ? ' router:eth0:203.0.113.254/24' : ''}${client2 ? ` client2:eth0:${client2From}/24` : ''}`)
        s(`lan inside director:eth1:10.1.0.1/24 ${rsNames.map((h, k) => `${h}:eth0:${rsAddr(k)}/24`).join(' ')}${gw === 'router' ? ' router:eth1:10.1.0.254/24' : ''}`)
        if (gw === 'router') s('sysctls router net.ipv4.ip_forward=1')
        s(`on director ip addr add ${vip}/32 dev eth0`)
        s('route client default via 203.0.113.1')
        if (client2) s('route client2 default via 203.0.113.1')
        for (const h of rsNames) if (h !== noRoute) s(`route ${h} default via ${gw === 'router' ? '10.1.0.254' : '10.1.0.1'}`)
      } else {
        s('host client client')
        s('host router router')
        s('host director director')
        for (const h of rsNames) s(`host ${h} realserver`)
        if (client2) s('host client2 client')
        s(`lan wan client:eth0:198.51.100.10/24 router:eth0:198.51.100.1/24${client2 ? ` client2:eth0:${client2From}/24` : ''}`)
        s(`lan lan router:eth1:10.0.0.254/24 director:eth0:10.0.0.1/24 ${rsNames.map((h, k) => `${h}:eth0:${rsAddr(k)}/24`).join(' ')}`)
        s('sysctls router net.ipv4.ip_forward=1')
        s(`on director ip addr add ${vip}/32 dev eth0`)
        s('route client default via 198.51.100.1')
        if (client2) s('route client2 default via 198.51.100.1')
        s('route director default via 10.0.0.254')
        for (const h of rsNames) if (h !== noRoute) s(`route ${h} default via ${gw === 'router' ? '10.0.0.254' : '10.0.0.1'}`)
        for (const h of rsNames) {
          if (h === noVip) {
            if (method === 'tun') s(`on ${h} ip link set tunl0 up`)
            continue
          }
          if (method === 'dr') s(`dr_vip ${h} ${vip}`)
          else {
            s(`on ${h} ip link set tunl0 up`)
            s(`dr_vip ${h} ${vip} tunl0`)
            s(`sysctls ${h} net.ipv4.conf.all.rp_filter=${tunStrict ? 1 : 0} net.ipv4.conf.tunl0.rp_filter=${tunStrict ? 1 : 0}`)
          }
        }
      }
      const sysctl = [`net.ipv4.ip_forward=${ipForward}`, `net.ipv4.vs.conntrack=${conntrack ? 1 : 0}`, `net.ipv4.vs.expire_nodest_conn=${expireNodest}`]
      if (rpDirector) sysctl.push(`net.ipv4.conf.all.rp_filter=${rpDirector}`)
      if (tcpLoose0) sysctl.push('net.netfilter.nf_conntrack_tcp_loose=0')
      if (expireQuiescent) sysctl.push('net.ipv4.vs.expire_quiescent_template=1')
      s(`sysctls director ${sysctl.join(' ')}`)
      for (const c of d) s(`on director ${c}`)
      for (const [h, rules] of rsRules) for (const c of rules) s(`on ${h} ${c}`)
      // check's fixes: at the end of setup, or (realservers drained in run()) before the connection judged
      const fixLines = [...(fixes ?? [])].flatMap(([h, cmds]) => cmds.map((c) => `on ${h} sh -c ${sq(c)}`))
      if (quiesce.length === 0) for (const c of fixLines) s(c)
      for (const h of rsNames) s(`server ${h} ${rport}`)
      if (localDest) s(`server director ${rport}`)
      const first = `exchange ${clientAt} ${clientFrom} ${vip}:80`
      if (!client2 && quiesce.length === 0) L.push('}', '', `run() { ${first}; }`, '')
      else {
        // several exchanges: the flow's client connects first and last; the last connection is the one judged
        L.push('}', '', 'run() {', `  ${first}`)
        if (client2) L.push(`  exchange client2 ${client2From} ${vip}:80`)
        const flag = method === 'nat' ? '-m' : method === 'dr' ? '-g' : '-i'
        const port = dportMismatch ? 8080 : rport
        for (const h of quiesce) L.push(`  on director ipvsadm -e ${svc} -r ${rsAddr(rsNames.indexOf(h))}:${port} ${flag} -w 0`)
        if (quiesce.length > 0) for (const c of fixLines) L.push(`  ${c}`)
        L.push(`  ${first}`, '}', '')
      }
      return L.join('\n')
    }
    out.push({name, why: why.join('; '), realservers: Object.fromEntries(rsNames.map((h, k) => [h, rsAddr(k)])), script})
  }
  return out
}
