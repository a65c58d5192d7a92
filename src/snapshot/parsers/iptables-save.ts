// STUB: replaced by the iptables-save parser (issue 2).
import type {Family} from '../../model/ip.js'
import type {IptablesRuleset} from '../../model/iptables.js'

export function parseIptablesSave(_text: string, file: string, family: Family): IptablesRuleset {
  return {family, file, tables: new Map(), notModelled: [], ruleCount: 0}
}
