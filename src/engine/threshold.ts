/**
 * Decision thresholds calibrated without test data (see docs/inspection.md for the rule and why).
 *
 * Image threshold (on the raw image score = anomaly-map maximum):
 *   image = (1 + margin) * max(mean + sigmas * std, max)        over the normal calibration scores
 * or, when labelled defective validation images are supplied, the F1-optimal threshold over normal + defective
 * validation scores (midpoint between consecutive scores; ties go to the higher threshold).
 * Pixel threshold (on anomaly-map values):
 *   pixel = min((1 + margin) * quantile_q(all normal calibration map pixels), image)
 * Defaults: margin 0.05, sigmas 3, q 0.999. Decisions are strict: anomalous when score > image, defective pixel when
 * map > pixel. Normalised score = raw score / image threshold (1.0 = at the threshold).
 */

/** Parameters of the calibration rule. */
export interface ThresholdRule {
  /** Relative safety margin applied to the normal-data limits (0.05 = 5 % above). */
  margin: number;
  /** Number of standard deviations above the mean normal score (Shewhart-style control limit). */
  sigmas: number;
  /** Quantile of all normal calibration map pixels used for the pixel threshold. */
  pixelQuantile: number;
}

/** The default rule: margin 5 %, mean + 3 std, 99.9 % pixel quantile. */
export const DEFAULT_THRESHOLD_RULE: Readonly<ThresholdRule> = Object.freeze({ margin: 0.05, sigmas: 3, pixelQuantile: 0.999 });

/** Thresholds stored in a checkpoint (CheckpointMeta.thresholds), in anomaly-map units. */
export interface Thresholds {
  /** Image threshold on the raw image score (map maximum): an image is anomalous when score > image. */
  image: number;
  /** Pixel threshold on anomaly-map values: a pixel is defective when map > pixel. Never above `image`. */
  pixel: number;
  /** `normal-tail`: (1 + margin) * max(mean + sigmas * std, max) of normal scores; `f1`: F1-optimal with defective validation images. */
  imageMethod: 'normal-tail' | 'f1';
  /**
   * Images the normal statistics come from: `validation` (held-out normal validation images of the split) or
   * `training` (fallback when there are no validation images: optimistic, expect more false alarms).
   */
  source: 'validation' | 'training';
  rule: ThresholdRule;
  /** Statistics of the normal calibration images: image-score mean / sample std / max, and the pixel quantile. */
  normal: { count: number; mean: number; std: number; max: number; tailLimit: number; pixels: number; pixelQuantileValue: number };
  /** Present when imageMethod is `f1`: counts and the F1 / precision / recall reached on the validation images. */
  f1?: { defectiveCount: number; f1: number; precision: number; recall: number };
  /** Caveats found during calibration (few images, training fallback, pixel threshold clipped, ...). */
  warnings: string[];
}

/** Inputs of {@link computeThresholds}. */
export interface CalibrationInput {
  /** Image scores [N] of normal calibration images (N >= 1). */
  normalScores: ArrayLike<number>;
  /** Their anomaly maps, all pixels [N * H * W] (any order). */
  normalMaps: ArrayLike<number>;
  /** Scores of labelled defective validation images (never test images); switches the image threshold to F1. */
  defectiveScores?: ArrayLike<number>;
  /** Where the normal images come from. */
  source: 'validation' | 'training';
}

/**
 * Quantile with linear interpolation between order statistics (numpy's default, "type 7"):
 * h = (n - 1) q, value = x[floor(h)] + (h - floor(h)) (x[floor(h) + 1] - x[floor(h)]).
 * @param sorted ascending values (not checked).
 * @throws RangeError when empty or q is outside [0, 1].
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('quantile of an empty set');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Quantile (see {@link quantileSorted}) of unsorted values; the input is not modified. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  return quantileSorted(sorted, q);
}

/** Mean and sample standard deviation (n - 1 denominator; 0 for a single value). */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) throw new RangeError('mean of an empty set');
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i]!;
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0 };
}

/**
 * Normal-data image threshold: (1 + margin) * max(mean + sigmas * std, max).
 * @returns the threshold and the statistics it used.
 */
export function normalTailThreshold(scores: ArrayLike<number>, rule: ThresholdRule = DEFAULT_THRESHOLD_RULE): { threshold: number; mean: number; std: number; max: number; tailLimit: number } {
  const { mean, std } = meanStd(scores);
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) max = Math.max(max, scores[i]!);
  const tailLimit = mean + rule.sigmas * std;
  return { threshold: (1 + rule.margin) * Math.max(tailLimit, max), mean, std, max, tailLimit };
}

/** Result of {@link f1OptimalThreshold}. */
export interface F1Choice {
  threshold: number;
  f1: number;
  precision: number;
  recall: number;
}

/**
 * F1-optimal image threshold on labelled scores (anomalous = positive, predicted anomalous when score > threshold).
 * Candidates: midpoints between consecutive distinct scores, and one just below the lowest score (everything
 * anomalous). Ties in F1 go to the higher threshold (fewer false alarms).
 * @returns undefined when there are no defective scores.
 */
export function f1OptimalThreshold(normalScores: ArrayLike<number>, defectiveScores: ArrayLike<number>): F1Choice | undefined {
  const P = defectiveScores.length;
  if (P === 0) return undefined;
  const items: { s: number; y: 0 | 1 }[] = [];
  for (let i = 0; i < normalScores.length; i++) items.push({ s: normalScores[i]!, y: 0 });
  for (let i = 0; i < P; i++) items.push({ s: defectiveScores[i]!, y: 1 });
  items.sort((a, b) => a.s - b.s);
  // Sweep the threshold upwards: below the lowest score everything is predicted anomalous.
  let tp = P, fp = normalScores.length;
  const f1 = (tpv: number, fpv: number): number => (tpv === 0 ? 0 : (2 * tpv) / (2 * tpv + fpv + (P - tpv)));
  const lowest = items[0]!.s;
  let best: F1Choice = { threshold: lowest - Math.max(Math.abs(lowest) * 1e-6, 1e-12), f1: f1(tp, fp), precision: tp / (tp + fp), recall: 1 };
  for (let i = 0; i < items.length; ) {
    const s = items[i]!.s;
    while (i < items.length && items[i]!.s === s) {
      if (items[i]!.y === 1) tp--;
      else fp--;
      i++;
    }
    if (i === items.length) break; // above the highest score nothing is anomalous: F1 = 0
    const t = (s + items[i]!.s) / 2;
    const v = f1(tp, fp);
    if (v >= best.f1) best = { threshold: t, f1: v, precision: tp + fp ? tp / (tp + fp) : 0, recall: tp / P };
  }
  return best;
}

/**
 * Computes image and pixel thresholds from normal calibration images (and optional labelled defective validation
 * images) with `rule` (see the module comment and docs/inspection.md).
 * @throws Error when there are no normal scores or maps, or when a value is not finite.
 */
export function computeThresholds(input: CalibrationInput, rule: ThresholdRule = DEFAULT_THRESHOLD_RULE): Thresholds {
  const n = input.normalScores.length;
  if (n === 0) throw new Error('Cannot calibrate thresholds: no normal images (neither validation nor training).');
  if (input.normalMaps.length === 0) throw new Error('Cannot calibrate the pixel threshold: no anomaly-map pixels.');
  for (const arr of [input.normalScores, input.defectiveScores ?? []])
    for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i]!)) throw new Error(`Cannot calibrate thresholds: non-finite score ${arr[i]}.`);
  const warnings: string[] = [];
  if (input.source === 'training')
    warnings.push('no validation images: thresholds were calibrated on the TRAINING images, whose scores are optimistically low (the model was fitted to them), so expect more false alarms; hold out validation images (--val-fraction > 0) or set --threshold.');
  if (n < 10)
    warnings.push(`only ${n} normal calibration image(s): the image threshold is uncertain (about 1 in ${n + 1} new normal images may exceed the largest normal score before the margin); use more validation images or set --threshold.`);

  const tail = normalTailThreshold(input.normalScores, rule);
  const sortedPixels = Float32Array.from(input.normalMaps as ArrayLike<number>).sort();
  const qv = quantileSorted(sortedPixels, rule.pixelQuantile);
  if (!Number.isFinite(qv)) throw new Error('Cannot calibrate the pixel threshold: non-finite anomaly-map values.');
  let image = tail.threshold;
  let imageMethod: Thresholds['imageMethod'] = 'normal-tail';
  let f1: Thresholds['f1'];
  const def = input.defectiveScores;
  if (def && def.length) {
    const choice = f1OptimalThreshold(input.normalScores, def)!;
    image = choice.threshold;
    imageMethod = 'f1';
    f1 = { defectiveCount: def.length, f1: choice.f1, precision: choice.precision, recall: choice.recall };
    if (input.source === 'training') warnings.push('F1 threshold uses training images as the normal class (no validation images).');
  }
  let pixel = (1 + rule.margin) * qv;
  if (pixel > image) {
    warnings.push(`pixel threshold ${pixel.toPrecision(6)} lowered to the image threshold ${image.toPrecision(6)} so that every anomalous image has defective pixels.`);
    pixel = image;
  }
  return {
    image, pixel, imageMethod, source: input.source, rule: { ...rule },
    normal: { count: n, mean: tail.mean, std: tail.std, max: tail.max, tailLimit: tail.tailLimit, pixels: sortedPixels.length, pixelQuantileValue: qv },
    ...(f1 ? { f1 } : {}),
    warnings,
  };
}

/** Raw score divided by the image threshold: 1.0 = at the threshold, > 1 anomalous. */
export function normalizedScore(score: number, imageThreshold: number): number {
  return score / imageThreshold;
}

/** Decision for one image score: strictly above the threshold is anomalous. */
export function isAnomalous(score: number, imageThreshold: number): boolean {
  return score > imageThreshold;
}

/** One-line human summary of thresholds, for logs. */
export function describeThresholds(t: Thresholds): string {
  const how = t.imageMethod === 'f1'
    ? `F1-optimal on ${t.normal.count} normal + ${t.f1!.defectiveCount} defective validation images (F1 ${t.f1!.f1.toFixed(3)})`
    : `(1 + ${t.rule.margin}) x max(mean + ${t.rule.sigmas} std, max) of ${t.normal.count} normal ${t.source} scores`;
  return `image ${t.image.toPrecision(6)} [${how}], pixel ${t.pixel.toPrecision(6)} [(1 + ${t.rule.margin}) x q${t.rule.pixelQuantile} of ${t.normal.pixels} ${t.source} pixels]`;
}
