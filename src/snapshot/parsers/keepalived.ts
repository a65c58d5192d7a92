// STUB
import type {KeepalivedConfig} from '../../model/misc.js'

export function parseKeepalived(_text: string, _file: string): KeepalivedConfig {
  return {services: [], vrrpAddresses: [], vrrpStrict: false}
}
