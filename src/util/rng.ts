/**
 * Small, fast, seeded pseudo-random number generator (mulberry32) for reproducible shuffles,
 * train/validation splits and sampling. Not cryptographically secure.
 *
 * The same seed always yields the same sequence on every platform (pure 32-bit integer
 * arithmetic via `Math.imul`), so runs are reproducible from the seed alone.
 */

/** Mixes an arbitrary finite number into a 32-bit unsigned seed (integers map directly modulo 2^32). */
function toSeed32(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`rng: seed must be a finite number, got ${seed}`);
  if (Number.isInteger(seed) && Math.abs(seed) <= Number.MAX_SAFE_INTEGER) {
    // Fold the high bits in so that seeds differing only above bit 32 differ too.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    return (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
  }
  // Non-integer (or huge) seeds: hash the float64 bit pattern.
  const f = new Float64Array([seed]);
  const u = new Uint32Array(f.buffer);
  return (u[0]! ^ Math.imul(u[1]!, 0x9e3779b1)) >>> 0;
}

/** Seeded PRNG (mulberry32, period 2^32). */
export class Rng {
  private state: number;

  /**
   * @param seed any finite number; integers in [0, 2^32) are used as-is.
   * @throws RangeError when the seed is NaN or infinite.
   */
  constructor(seed: number) {
    this.state = toSeed32(seed);
  }

  /** Next uniform 32-bit unsigned integer in [0, 2^32). */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Next uniform float in [0, 1) (32 bits of randomness). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Uniform float in [lo, hi) (defaults [0, 1)).
   * @throws RangeError when the bounds are not finite or hi < lo.
   */
  uniform(lo = 0, hi = 1): number {
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) {
      throw new RangeError(`rng.uniform: invalid range [${lo}, ${hi})`);
    }
    return lo + (hi - lo) * this.next();
  }

  /**
   * Uniform integer in [0, n), without modulo bias.
   * @throws RangeError unless n is an integer in [1, 2^32].
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new RangeError(`rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n); // largest multiple of n not above 2^32
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /**
   * Shuffles `items` in place (Fisher-Yates) and returns the same array.
   * Works on plain arrays and typed arrays.
   */
  shuffle<T extends { length: number; [i: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** A random permutation of 0..n-1 as an Int32Array. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

/** Creates a seeded generator; shorthand for `new Rng(seed)`. */
export function createRng(seed: number): Rng {
  return new Rng(seed);
}

/**
 * Returns a shuffled copy of `items` (the input is not modified), deterministic for a given seed.
 */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  return new Rng(seed).shuffle(items.slice());
}

/**
 * `count` uniform floats in [lo, hi) as a Float64Array, deterministic for a given seed.
 * @throws RangeError on an invalid range or a negative/non-integer count.
 */
export function uniform(count: number, seed: number, lo = 0, hi = 1): Float64Array {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`uniform: count must be a non-negative integer, got ${count}`);
  const rng = new Rng(seed);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.uniform(lo, hi);
  return out;
}
