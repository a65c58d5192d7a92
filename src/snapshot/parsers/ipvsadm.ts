// STUB: replaced by the ipvsadm parsers (issue 2).
import type {IpvsConn, IpvsService} from '../../model/ipvs.js'

export function parseIpvsadmSave(_text: string, _file: string): IpvsService[] {
  return []
}
export function parseIpvsadmList(_text: string, _file: string): IpvsService[] {
  return []
}
export function parseIpvsadmConns(_text: string, _file: string): IpvsConn[] {
  return []
}
