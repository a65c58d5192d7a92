// Lists in finding messages stay readable on big rulesets: a kube-proxy node has thousands of services, and a
// message naming all of them is a wall nobody reads (the evidence, and --json, still carry every one).

/** `a, b, c` up to `max` items; beyond that the first `max` and `and N more`. */
export function listSome(items: readonly string[], max = 10): string {
  if (items.length <= max) return items.join(', ')
  return `${items.slice(0, max).join(', ')} and ${(items.length - max).toLocaleString('en-US')} more`
}
