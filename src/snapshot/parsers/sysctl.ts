// `sysctl -a` output (`key = value`), also `key=value` and sysctl.conf's `#`/`;` comments. Keys are kept
// with dots; a key written with slashes (`net/ipv4/ip_forward`, sysctl.conf style) is turned into the
// dotted form, where a dot inside a name (a VLAN device `eth0.100`) becomes a slash, as sysctl(8) prints it.
import type {SysctlValue, Sysctls} from '../../model/misc.js'
import {ParseError} from '../../model/source.js'

const LINE = /^\s*([A-Za-z0-9_][^\s=]*)\s*=\s?(.*)$/

export function parseSysctl(text: string, file: string): Sysctls {
  const out = new Map<string, SysctlValue>()
  const lines = text.split('\n')
  if (text.trim() === '') throw new ParseError(file, 1, '`sysctl -a` output (key = value lines)', 'an empty file')
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '')
    if (raw.trim() === '' || /^\s*[#;]/.test(raw)) continue
    // sysctl's own complaints, when a hand-made snapshot captured stderr too (`sysctl -a 2>&1`): procps-ng prints
    // `sysctl: reading key "..."`, procps 3.2 `error: permission denied on key '...'` and `error: "..." reading key "..."`
    if (raw.startsWith('sysctl: ') || /^error: .*\bkey\b/.test(raw)) continue
    const m = LINE.exec(raw)
    if (!m) throw new ParseError(file, i + 1, 'a sysctl line `key = value`', raw)
    let key = m[1]!
    const slash = key.indexOf('/')
    const dot = key.indexOf('.')
    if (slash >= 0 && (dot < 0 || slash < dot)) key = key.replace(/[./]/g, (c) => (c === '/' ? '.' : '/'))
    out.set(key, {value: m[2]!.trim(), loc: {file, line: i + 1, text: raw}})
  }
  return out
}
