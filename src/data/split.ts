/** Seeded train/validation splitting. */
import { Rng } from '../util/rng.js';

/**
 * Deterministically holds out a random `fraction` of `items` for validation.
 * The validation size is `round(fraction * n)`, at least 1 when `fraction > 0`, and at most
 * `n - 1` so that training always keeps at least one item. Both parts keep the input order
 * (only membership is random), and the same (items, fraction, seed) always gives the same split.
 * @param items the items to split (not modified).
 * @param fraction share of items for validation, in [0, 1).
 * @param seed PRNG seed (any finite number).
 * @returns `{ train, val }`, a partition of `items` (each item in exactly one part).
 * @throws RangeError when `fraction` is not in [0, 1), when `items` is empty, or when
 *   `fraction > 0` but there are fewer than 2 items (no room for both parts).
 */
export function holdOut<T>(items: readonly T[], fraction: number, seed: number): { train: T[]; val: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`holdOut: fraction must be in [0, 1), got ${fraction}`);
  const n = items.length;
  if (n === 0) throw new RangeError('holdOut: no items to split');
  if (fraction === 0) return { train: items.slice(), val: [] };
  if (n < 2) throw new RangeError(`Only ${n} normal training image(s): a validation image cannot be held out and training needs at least 2. Add normal images (3 or more keep a validation image for threshold calibration; 2 work with --val-fraction 0).`);
  const nVal = Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
  const perm = new Rng(seed).permutation(n);
  const isVal = new Uint8Array(n);
  for (let i = 0; i < nVal; i++) isVal[perm[i]!] = 1;
  const train: T[] = [];
  const val: T[] = [];
  for (let i = 0; i < n; i++) (isVal[i] ? val : train).push(items[i]!);
  return { train, val };
}
