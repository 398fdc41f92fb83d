/**
 * AUPRO: area under the per-region-overlap (PRO) curve up to a false-positive-rate limit, normalised by the limit
 * (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 2021, Sec. 5.2; the MVTec AD evaluation code).
 *
 * For a threshold t: PRO(t) is the mean, over every connected defect region of every ground-truth mask
 * (8-connectivity), of the fraction of that region's pixels with score >= t; FPR(t) is the fraction of all normal
 * pixels (mask 0, over all test images) with score >= t. The curve is exact (every distinct score is a threshold),
 * starts at (0, 0), and is integrated with the trapezoid rule up to `fprLimit`, interpolating linearly at the limit.
 */

/**
 * Connected components of a binary mask with 8-connectivity (as scipy.ndimage.label with a 3x3 structure).
 * @param mask - [H * W] row-major, non-zero = defect. @returns labels [H * W] (0 = background, 1..count) and count.
 */
export function labelComponents(mask: ArrayLike<number>, h: number, w: number): { labels: Int32Array; count: number } {
  const labels = new Int32Array(h * w);
  const stack = new Int32Array(h * w);
  let count = 0;
  for (let start = 0; start < h * w; start++) {
    if (!mask[start] || labels[start]) continue;
    count++;
    let top = 0;
    stack[top++] = start;
    labels[start] = count;
    while (top) {
      const p = stack[--top]!;
      const y = (p / w) | 0, x = p - y * w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const q = yy * w + xx;
          if (mask[q] && !labels[q]) { labels[q] = count; stack[top++] = q; }
        }
      }
    }
  }
  return { labels, count };
}

/** PRO curve points, ascending in FPR, starting at (0, 0). */
export interface ProCurve {
  fpr: Float64Array;
  pro: Float64Array;
  regions: number;
}

/**
 * Exact PRO curve of a set of anomaly maps.
 * @param maps - [N * H * W] float32 scores, image-major. @param masks - [N * H * W] ground truth (non-zero = defect).
 * @returns null when there is no defect region or no normal pixel (the curve is undefined).
 */
export function proCurve(maps: ArrayLike<number>, masks: ArrayLike<number>, n: number, h: number, w: number): ProCurve | null {
  const hw = h * w;
  if (maps.length !== n * hw || masks.length !== n * hw) throw new RangeError(`proCurve: expected ${n} x ${h} x ${w} = ${n * hw} values, got maps ${maps.length}, masks ${masks.length}`);
  // Region pixel weights 1 / (size * regions); normal pixels counted for the FPR.
  const sizes: number[] = [];
  const regionOf = new Int32Array(n * hw).fill(-1);
  let normal = 0;
  for (let i = 0; i < n; i++) {
    const m = new Uint8Array(hw);
    for (let p = 0; p < hw; p++) m[p] = masks[i * hw + p] ? 1 : 0;
    const { labels, count } = labelComponents(m, h, w);
    const base = sizes.length;
    for (let k = 0; k < count; k++) sizes.push(0);
    for (let p = 0; p < hw; p++) {
      const l = labels[p]!;
      if (l) { regionOf[i * hw + p] = base + l - 1; sizes[base + l - 1]!++; } else normal++;
    }
  }
  const regions = sizes.length;
  if (regions === 0 || normal === 0) return null;
  const normalScores = new Float32Array(normal);
  const defectIdx: number[] = [];
  for (let p = 0, k = 0; p < n * hw; p++) {
    if (regionOf[p]! < 0) normalScores[k++] = maps[p]!;
    else defectIdx.push(p);
  }
  normalScores.sort(); // ascending; walked from the end
  const defectScores = Float64Array.from(defectIdx, (p) => maps[p]!);
  const order = Uint32Array.from(defectIdx.keys()).sort((a, b) => defectScores[b]! - defectScores[a]!);
  const fpr: number[] = [0], pro: number[] = [0];
  let ni = normal - 1, di = 0, fp = 0, proSum = 0;
  while (ni >= 0 || di < order.length) {
    const sN = ni >= 0 ? normalScores[ni]! : -Infinity;
    const sD = di < order.length ? defectScores[order[di]!]! : -Infinity;
    const t = Math.max(sN, sD);
    while (ni >= 0 && normalScores[ni]! === t) { fp++; ni--; }
    while (di < order.length && defectScores[order[di]!]! === t) { proSum += 1 / sizes[regionOf[defectIdx[order[di]!]!]!]!; di++; }
    fpr.push(fp / normal);
    pro.push(proSum / regions);
  }
  return { fpr: Float64Array.from(fpr), pro: Float64Array.from(pro), regions };
}

/**
 * Normalised AUPRO: trapezoid area under the PRO curve for FPR in [0, fprLimit], divided by fprLimit (1 = perfect).
 * @param fprLimit - in (0, 1], default 0.3 (the MVTec AD convention).
 * @returns null when the curve is undefined (see {@link proCurve}).
 */
export function aupro(maps: ArrayLike<number>, masks: ArrayLike<number>, n: number, h: number, w: number, fprLimit = 0.3): number | null {
  if (!(fprLimit > 0 && fprLimit <= 1)) throw new RangeError(`aupro: fprLimit must be in (0, 1], got ${fprLimit}`);
  const c = proCurve(maps, masks, n, h, w);
  if (!c) return null;
  let area = 0;
  for (let i = 1; i < c.fpr.length; i++) {
    const x0 = c.fpr[i - 1]!, x1 = c.fpr[i]!, y0 = c.pro[i - 1]!, y1 = c.pro[i]!;
    if (x0 >= fprLimit) break;
    if (x1 <= fprLimit) { area += ((x1 - x0) * (y0 + y1)) / 2; continue; }
    const y = y0 + ((y1 - y0) * (fprLimit - x0)) / (x1 - x0);
    area += ((fprLimit - x0) * (y0 + y)) / 2;
    break;
  }
  return area / fprLimit;
}
