// JSON output: the contract of ARCHITECTURE.md, bigint-safe.
export function renderJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n'
}
