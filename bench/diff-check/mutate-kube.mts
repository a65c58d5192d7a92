// Generated kube-proxy dumps (300-3,300 rules, random seeds, some with comments) with up to five filter/nat rules
// inserted that split backends into classes (prefixes, ranges, ports, addrtype, interfaces, SNAT, loopback DNAT).
// OUT=dir SEED=n N=count npx tsx bench/diff-check/mutate-kube.mts
import {writeFileSync, mkdirSync, rmSync} from 'node:fs'
import {generateKubeProxyDump} from '../gen-kube-proxy.js'
let seed = Number(process.env.SEED ?? 1)
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
const pick = <T,>(a: T[]): T => a[Math.floor(rnd() * a.length)]!
const OUT = process.env.OUT ?? '/tmp/ldi-diff/kube-cases'
rmSync(OUT, {recursive: true, force: true})
for (let n = 0; n < Number(process.env.N ?? 20); n++) {
  const rules = 300 + Math.floor(rnd() * 3000)
  const lines = generateKubeProxyDump(rules, {seed: Math.floor(rnd() * 1e9), comments: rnd() < 0.3}).split('\n')
  const pref = () => `10.244.${Math.floor(rnd() * 4)}.${Math.floor(rnd() * 256)}/${pick([32, 30, 28, 24, 20])}`
  const extra = [
    () => ['*filter', `-A FORWARD -s ${pref()} -j DROP`],
    () => ['*filter', `-A FORWARD -d ${pref()} -p tcp -m tcp --dport ${pick(['80', '1080', '8080', '1:2000'])} -j DROP`],
    () => ['*filter', `-A INPUT -d 10.96.0.${Math.floor(rnd() * 40)}/32 -j REJECT --reject-with icmp-host-prohibited`],
    () => ['*filter', `-A FORWARD -m conntrack --ctstate INVALID -j DROP`],
    () => ['*filter', `-A FORWARD -m iprange --src-range 10.244.0.${Math.floor(rnd() * 100)}-10.244.0.${100 + Math.floor(rnd() * 150)} -j DROP`],
    () => ['*nat', `-A POSTROUTING -s ${pref()} -j SNAT --to-source 192.0.2.${Math.floor(rnd() * 250)}`],
    () => ['*nat', `-A POSTROUTING -d ${pref()} -j RETURN`],
    () => ['*filter', `-A FORWARD -m addrtype --dst-type LOCAL -j DROP`],
    () => ['*nat', `-A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 9${Math.floor(rnd() * 99)} -j DNAT --to-destination 127.0.0.1:80`],
    () => ['*filter', `-A FORWARD -o eth${Math.floor(rnd() * 2)} -j DROP`],
  ]
  for (let k = Math.floor(rnd() * 6); k > 0; k--) {
    const [table, line] = pick(extra)()
    const ti = lines.indexOf(table)
    const ci = lines.indexOf('COMMIT', ti)
    const first = lines.findIndex((l, i) => i > ti && l.startsWith('-A '))
    const at = first + Math.floor(rnd() * (ci - first))
    lines.splice(rnd() < 0.5 ? first : at, 0, line)
  }
  mkdirSync(`${OUT}/${String(n).padStart(3, '0')}/h`, {recursive: true})
  writeFileSync(`${OUT}/${String(n).padStart(3, '0')}/h/iptables-save.txt`, lines.join('\n'))
}
