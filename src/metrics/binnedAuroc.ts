import { floatKey } from './auroc.js';

/** Bits of the order-preserving float32 key kept per bin: 22 of 32 (sign, exponent, 13 mantissa bits). */
const KEY_BITS = 22;
const BINS = 2 ** KEY_BITS;

/** Result of {@link BinnedAuroc.result}. */
export interface BinnedAurocResult {
  /** AUROC in [0, 1] counting pairs in the same bin as ties; null when only one class was seen. */
  auroc: number | null;
  /**
   * Largest possible |binned - exact| AUROC: half the share of (positive, negative) pairs that fall into one bin.
   * The exact value lies in [auroc - tieBound, auroc + tieBound].
   */
  tieBound: number;
  positives: number;
  negatives: number;
}

/**
 * ROC AUC accumulated over any number of chunks in constant memory (32 MiB), for pixel AUROC over test sets
 * whose anomaly maps do not fit in memory together. Values are binned by the top 22 bits of their order-preserving
 * float32 bit pattern (relative bin width 2^-13 = 1.2e-4 at any magnitude), so the ranking is exact except between
 * values closer than that; such pairs count one half, as exact ties do, and {@link BinnedAurocResult.tieBound}
 * states the largest error this can cause (about 1e-5 on MVTec AD maps at 256 px). Same orientation as
 * {@link auroc}: higher values mean "more anomalous" (label 1).
 */
export class BinnedAuroc {
  private readonly pos = new Uint32Array(BINS);
  private readonly neg = new Uint32Array(BINS);
  private nPos = 0;
  private nNeg = 0;

  /**
   * Adds one chunk.
   * @param values - float32 values (e.g. anomaly maps [B * H * W]). @param labels - 0/1 per value (e.g. masks).
   * @throws RangeError on different lengths, a label other than 0/1, or a NaN value.
   */
  add(values: Float32Array, labels: ArrayLike<number>): void {
    const n = values.length;
    if (labels.length !== n) throw new RangeError(`BinnedAuroc: ${n} values but ${labels.length} labels`);
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    for (let i = 0; i < n; i++) {
      let b = bits[i]!;
      if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) throw new RangeError(`BinnedAuroc: value at index ${i} is NaN`);
      if (b === 0x80000000) b = 0; // -0 -> +0
      const bin = floatKey(b) >>> (32 - KEY_BITS);
      const l = labels[i];
      if (l === 1) { this.pos[bin]!++; this.nPos++; } else if (l === 0) { this.neg[bin]!++; this.nNeg++; } else throw new RangeError(`BinnedAuroc: label at index ${i} is ${String(l)}, expected 0 or 1`);
    }
  }

  /** AUROC of everything added so far, with its error bound. */
  result(): BinnedAurocResult {
    const P = this.nPos, N = this.nNeg;
    if (P === 0 || N === 0) return { auroc: null, tieBound: 0, positives: P, negatives: N };
    let below = 0, acc = 0, same = 0;
    for (let b = 0; b < BINS; b++) {
      const p = this.pos[b]!, q = this.neg[b]!;
      if (p) { acc += p * (below + 0.5 * q); same += p * q; }
      below += q;
    }
    return { auroc: acc / P / N, tieBound: (0.5 * same) / P / N, positives: P, negatives: N };
  }
}
