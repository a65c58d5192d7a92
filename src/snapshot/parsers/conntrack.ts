// STUB
import type {ConntrackEntry} from '../../model/misc.js'

export function parseConntrack(_text: string, _file: string): ConntrackEntry[] {
  return []
}
