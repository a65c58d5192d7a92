// STUB: replaced by the ip -j parsers (issue 2).
import type {Interface, IpRule, Route} from '../../model/net.js'

export function parseIpAddr(_text: string, _file: string): Interface[] {
  return []
}
export function parseIpRoute(_text: string, _file: string): Route[] {
  return []
}
export function parseIpRule(_text: string, _file: string): IpRule[] {
  return []
}
