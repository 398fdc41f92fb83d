/**
 * Image-level F1-max: the best F1 score (harmonic mean of precision and recall, defective = positive) over all
 * thresholds "score >= t", as anomalib's F1Max and max(2PR / (P + R)) over sklearn's precision_recall_curve.
 * @param scores - [N] image-level anomaly scores. @param labels - [N] 0 normal / 1 defective.
 * @returns the F1-max and the threshold reaching it, or null when there is no defective image.
 */
export function f1Max(scores: ArrayLike<number>, labels: ArrayLike<number>): { f1: number; threshold: number } | null {
  if (scores.length !== labels.length) throw new RangeError(`f1Max: ${scores.length} scores but ${labels.length} labels`);
  const pos = Array.from(labels).filter((l) => l === 1).length;
  if (pos === 0) return null;
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let tp = 0, fp = 0, best = { f1: 0, threshold: Infinity };
  for (let i = 0; i < order.length; i++) {
    const t = scores[order[i]!]!;
    if (labels[order[i]!] === 1) tp++; else fp++;
    if (i + 1 < order.length && scores[order[i + 1]!] === t) continue; // ties form one threshold
    const f1 = (2 * tp) / (tp + fp + pos);
    if (f1 > best.f1) best = { f1, threshold: t };
  }
  return best;
}
