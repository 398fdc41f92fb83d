/**
 * Exact ROC AUC (area under the receiver operating characteristic curve), numerically matching
 * `sklearn.metrics.roc_auc_score` for binary labels, including its tie handling: equal scores
 * form one ROC step that is integrated with the trapezoid rule, which equals the Mann-Whitney
 * statistic `P(s_pos > s_neg) + 0.5 * P(s_pos == s_neg)`.
 *
 * Implementation: one pass splits the scores by class; each class is sorted ascending (an LSD
 * radix sort on order-preserving 32-bit keys for Float32Array input, the native typed-array sort
 * on float64 otherwise); a merge walk over the two sorted lists counts, for every distinct score,
 * how many positives lie above it. The sum is accumulated in exact integers (doubles below 2^53
 * for up to ~67 million samples), so the result differs from sklearn's only by float rounding
 * in the final division (< 1e-15).
 */

/** Sorted per-class scores. `keys` compare like the scores (ascending); `-0` is folded into `+0`. */
interface ClassSorted {
  pos: Float64Array | Uint32Array;
  neg: Float64Array | Uint32Array;
  /** Converts a key back to the score it came from. */
  toScore: (key: number) => number;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Order-preserving map float32 -> uint32 (NaN already excluded, -0 folded into +0 by the caller). */
export function floatKey(bits: number): number {
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}
function keyToFloat(key: number): number {
  u32[0] = key & 0x80000000 ? key & 0x7fffffff : ~key >>> 0;
  return f32[0]!;
}

/** LSD radix sort of uint32 keys, ascending, 11+11+10 bit digits. Returns a sorted array (may be a new one). */
function radixSortU32(keys: Uint32Array): Uint32Array {
  const n = keys.length;
  if (n < 2) return keys;
  if (n < 4096) return keys.sort();
  const c0 = new Uint32Array(2048);
  const c1 = new Uint32Array(2048);
  const c2 = new Uint32Array(1024);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    c0[k & 2047]++;
    c1[(k >>> 11) & 2047]++;
    c2[k >>> 22]++;
  }
  let src: Uint32Array = keys;
  let dst: Uint32Array = new Uint32Array(n);
  const passes: Array<[Uint32Array, number, number]> = [
    [c0, 0, 2047],
    [c1, 11, 2047],
    [c2, 22, 1023],
  ];
  for (const [count, shift, mask] of passes) {
    // Skip a pass when every key has the same digit (common for the high digit).
    let nonEmpty = 0;
    for (let b = 0; b < count.length && nonEmpty < 2; b++) if (count[b]! > 0) nonEmpty++;
    if (nonEmpty < 2) continue;
    let sum = 0;
    for (let b = 0; b < count.length; b++) {
      const c = count[b]!;
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const k = src[i]!;
      const d = (k >>> shift) & mask;
      dst[count[d]++] = k;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}

function validate(scores: ArrayLike<number>, labels: ArrayLike<number>, fn: string): void {
  if (scores.length !== labels.length) {
    throw new RangeError(`${fn}: scores (${scores.length}) and labels (${labels.length}) must have the same length`);
  }
}

function badLabel(fn: string, i: number, v: number): RangeError {
  return new RangeError(`${fn}: labels must be 0 or 1, got ${v} at index ${i}`);
}

/** Splits by class and sorts each class ascending. Returns null when a class is empty. */
function sortByClass(scores: ArrayLike<number>, labels: ArrayLike<number>, fn: string): ClassSorted | null {
  validate(scores, labels, fn);
  const n = scores.length;
  let nPos = 0;
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    if (l === 1) nPos++;
    else if (l !== 0) throw badLabel(fn, i, l);
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return null;

  if (scores instanceof Float32Array) {
    const bits = new Uint32Array(scores.buffer, scores.byteOffset, n);
    const pos = new Uint32Array(nPos);
    const neg = new Uint32Array(nNeg);
    let p = 0;
    let q = 0;
    for (let i = 0; i < n; i++) {
      let b = bits[i]!;
      if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) throw new RangeError(`${fn}: score at index ${i} is NaN`);
      if (b === 0x80000000) b = 0; // -0 -> +0 (they tie, as in numpy)
      const k = floatKey(b);
      if (labels[i] === 1) pos[p++] = k;
      else neg[q++] = k;
    }
    return { pos: radixSortU32(pos), neg: radixSortU32(neg), toScore: keyToFloat };
  }

  const pos = new Float64Array(nPos);
  const neg = new Float64Array(nNeg);
  let p = 0;
  let q = 0;
  for (let i = 0; i < n; i++) {
    let s = +scores[i]!;
    if (Number.isNaN(s)) throw new RangeError(`${fn}: score at index ${i} is NaN`);
    if (s === 0) s = 0; // -0 -> +0
    if (labels[i] === 1) pos[p++] = s;
    else neg[q++] = s;
  }
  pos.sort();
  neg.sort();
  return { pos, neg, toScore: (k) => k };
}

/**
 * Exact binary ROC AUC, identical (to ~1e-15) to `sklearn.metrics.roc_auc_score(labels, scores)`.
 * Higher scores mean "more anomalous" (label 1). Ties count one half.
 * Runs in O(n) for Float32Array scores (radix sort), O(n log n) otherwise; about 6 million
 * pixels take well under a second on a laptop-class CPU.
 * @param scores anomaly scores, any finite or infinite numbers (Float32Array is fastest).
 * @param labels ground truth of the same length, each exactly 0 (normal) or 1 (anomalous),
 *   e.g. a flattened Uint8Array mask.
 * @returns the AUC in [0, 1], or null when only one class is present (AUC undefined; sklearn raises).
 * @throws RangeError on different lengths, a label other than 0/1, or a NaN score.
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  const s = sortByClass(scores, labels, 'auroc');
  if (s === null) return null;
  const { pos, neg } = s;
  const P = pos.length;
  const N = neg.length;
  // acc = sum over negatives of (2 * #pos strictly above + #pos equal), exact integer in a double.
  let acc = 0;
  let i = 0; // pos[0..i) < current value
  let j = 0;
  while (j < N) {
    const v = neg[j]!;
    let cn = 0;
    while (j < N && neg[j] === v) {
      cn++;
      j++;
    }
    while (i < P && pos[i]! < v) i++;
    let cp = 0;
    while (i + cp < P && pos[i + cp] === v) cp++;
    acc += cn * (2 * (P - i - cp) + cp);
  }
  return acc / (2 * P * N);
}

/** A (downsampled) ROC curve. Arrays are parallel, ordered by decreasing threshold. */
export interface RocCurve {
  /** False positive rate at each threshold, non-decreasing, from 0 to 1. */
  fpr: number[];
  /** True positive rate at each threshold, non-decreasing, from 0 to 1. */
  tpr: number[];
  /**
   * Decision thresholds (predict anomalous when score >= threshold), decreasing.
   * The first one is `Infinity` (nothing predicted anomalous), as in sklearn >= 1.3.
   * Note: `Infinity` becomes `null` under JSON.stringify.
   */
  thresholds: number[];
}

/**
 * ROC curve as `sklearn.metrics.roc_curve(labels, scores, drop_intermediate=True)` computes it
 * (collinear intermediate points dropped, a leading `(0, 0, Infinity)` point added), then, if it
 * still has more than `maxPoints` points, evenly subsampled by point index keeping the first and
 * last points. For plotting/reporting; use {@link auroc} for the exact area.
 * @param scores anomaly scores (higher = more anomalous).
 * @param labels 0/1 ground truth of the same length.
 * @param maxPoints upper bound on the number of returned points (default 1000, minimum 2).
 * @returns the curve, or null when only one class is present.
 * @throws RangeError on different lengths, a label other than 0/1, a NaN score, or maxPoints < 2.
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>, maxPoints = 1000): RocCurve | null {
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new RangeError(`rocCurve: maxPoints must be an integer >= 2, got ${maxPoints}`);
  const s = sortByClass(scores, labels, 'rocCurve');
  if (s === null) return null;
  const { pos, neg, toScore } = s;
  const P = pos.length;
  const N = neg.length;
  // Distinct thresholds, descending, with cumulative counts (sklearn's _binary_clf_curve).
  const fps: number[] = [];
  const tps: number[] = [];
  const thr: number[] = [];
  let i = P - 1;
  let j = N - 1;
  let tp = 0;
  let fp = 0;
  while (i >= 0 || j >= 0) {
    const v = i < 0 ? neg[j]! : j < 0 ? pos[i]! : Math.max(pos[i]!, neg[j]!);
    while (i >= 0 && pos[i] === v) {
      tp++;
      i--;
    }
    while (j >= 0 && neg[j] === v) {
      fp++;
      j--;
    }
    fps.push(fp);
    tps.push(tp);
    thr.push(toScore(v));
  }
  // drop_intermediate: keep the ends and every point where either count's second difference != 0.
  let keep: number[] = [];
  const m = fps.length;
  if (m > 2) {
    keep.push(0);
    for (let k = 1; k < m - 1; k++) {
      if (fps[k - 1]! - 2 * fps[k]! + fps[k + 1]! !== 0 || tps[k - 1]! - 2 * tps[k]! + tps[k + 1]! !== 0) keep.push(k);
    }
    keep.push(m - 1);
  } else {
    keep = Array.from({ length: m }, (_, k) => k);
  }
  const fpr = [0];
  const tpr = [0];
  const thresholds = [Infinity];
  for (const k of keep) {
    fpr.push(fps[k]! / N);
    tpr.push(tps[k]! / P);
    thresholds.push(thr[k]!);
  }
  if (fpr.length <= maxPoints) return { fpr, tpr, thresholds };
  const L = fpr.length;
  const out: RocCurve = { fpr: [], tpr: [], thresholds: [] };
  let last = -1;
  for (let k = 0; k < maxPoints; k++) {
    const idx = Math.round((k * (L - 1)) / (maxPoints - 1));
    if (idx === last) continue;
    last = idx;
    out.fpr.push(fpr[idx]!);
    out.tpr.push(tpr[idx]!);
    out.thresholds.push(thresholds[idx]!);
  }
  return out;
}
