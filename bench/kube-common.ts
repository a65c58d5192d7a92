// What the kube-proxy generators (gen-kube-proxy.ts, nft-kube-gen.ts) share: their deterministic pseudo-random
// numbers and the base32 hashes kube-proxy names its chains with.
//
// Self-contained (no imports): bench/iptables-parse.js transpiles it with gen-kube-proxy.ts without a build step.

/** Pseudo-random numbers in [0, 1) from a 32-bit seed (mulberry32): the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** A maker of `length`-character base32 hashes (A-Z, 2-7) drawn from `rand`. */
export function hashMaker(rand: () => number, length: number): () => string {
  return (): string => {
    let s = ''
    for (let i = 0; i < length; i++) s += B32[Math.floor(rand() * 32)]
    return s
  }
}
