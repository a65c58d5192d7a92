// Lists in finding messages stay readable on big rulesets: a kube-proxy node has thousands of services, and a
// message naming all of them is a wall nobody reads (the evidence, and --json, still carry every one).

/** `a, b, c` up to `max` items; beyond that the first `max` and `and N more`. */
export function listSome(items: readonly string[], max = 10): string {
  if (items.length <= max) return items.join(', ')
  return `${items.slice(0, max).join(', ')} and ${grouped(items.length - max)} more`
}

/**
 * A count with a comma between groups of three digits, as toLocaleString('en-US') writes a whole number (whose
 * first call loads the ICU number formatter: ~10 ms, more than the rest of a check's messages).
 */
function grouped(n: number): string {
  const s = String(n)
  if (!Number.isSafeInteger(n) || n < 0) return n.toLocaleString('en-US')
  let out = ''
  for (let i = 0; i < s.length; i++) {
    if (i > 0 && (s.length - i) % 3 === 0) out += ','
    out += s[i]
  }
  return out
}
