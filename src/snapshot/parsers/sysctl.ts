// STUB
import type {Sysctls} from '../../model/misc.js'

export function parseSysctl(_text: string, _file: string): Sysctls {
  return new Map()
}
