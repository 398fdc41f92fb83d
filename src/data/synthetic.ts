import { createRng, type Rng } from '../util/rng.js';

/**
 * Synthetic defects pasted into normal images, with their pixel masks: a validation signal built from normal images
 * only (no defect labels), in the spirit of CutPaste (Li et al., CVPR 2021) and DRAEM (Zavrtanik et al., ICCV 2021).
 * Two kinds, alternating: `cutpaste` (a rectangle of the same image moved elsewhere, with a brightness / contrast
 * jitter) and `noise` (an elliptical blob of smooth value noise, 2 octaves, alpha-blended).
 */
export type SyntheticKind = 'cutpaste' | 'noise';

/** One synthetic defect image. */
export interface SyntheticDefect {
  /** [size, size, 3] float32, in the same (normalised) value space as the input image. */
  image: Float32Array;
  /** [size, size] uint8 0/1: exactly the pixels the defect changed. */
  mask: Uint8Array;
  kind: SyntheticKind;
  /** Bounding box of the mask in pixels (x0, y0 inclusive; x1, y1 exclusive). */
  box: { x0: number; y0: number; x1: number; y1: number };
}

/** Side of a defect as a fraction of the image side: small defects stay in the range (4 .. 16 %). */
const MIN_SIDE = 0.04, MAX_SIDE = 0.16;

function side(rng: Rng, size: number): number {
  return Math.max(2, Math.round(size * rng.uniform(MIN_SIDE, MAX_SIDE)));
}

function channelStats(img: Float32Array): { mean: number[]; std: number[] } {
  const n = img.length / 3, mean = [0, 0, 0], sq = [0, 0, 0];
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) { const v = img[i * 3 + c]!; mean[c]! += v; sq[c]! += v * v; }
  const m = mean.map((s) => s / n);
  return { mean: m, std: sq.map((s, c) => Math.sqrt(Math.max(s / n - m[c]! ** 2, 1e-12))) };
}

function cutPaste(img: Float32Array, size: number, rng: Rng, out: Float32Array, mask: Uint8Array): SyntheticDefect['box'] {
  const w = side(rng, size), h = side(rng, size);
  const sx = rng.int(size - w + 1), sy = rng.int(size - h + 1);
  // The target is at least one patch side away from the source, so the pasted content really moved.
  let tx = 0, ty = 0;
  for (let tries = 0; tries < 20; tries++) {
    tx = rng.int(size - w + 1); ty = rng.int(size - h + 1);
    if (Math.abs(tx - sx) >= w || Math.abs(ty - sy) >= h) break;
  }
  const gain = rng.uniform(0.7, 1.3), shift = rng.uniform(-0.5, 0.5);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = ((sy + y) * size + sx + x) * 3, t = ((ty + y) * size + tx + x) * 3;
      for (let c = 0; c < 3; c++) out[t + c] = img[s + c]! * gain + shift;
      mask[(ty + y) * size + tx + x] = 1;
    }
  }
  return { x0: tx, y0: ty, x1: tx + w, y1: ty + h };
}

/** Smooth value noise in [0, 1] on a w x h patch: bilinear interpolation of random grids, two octaves. */
function valueNoise(w: number, h: number, rng: Rng): Float32Array {
  const out = new Float32Array(w * h);
  for (const [cells, amp] of [[3, 0.65], [7, 0.35]] as const) {
    const g = new Float32Array((cells + 1) * (cells + 1)).map(() => rng.next());
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const fx = (x / Math.max(w - 1, 1)) * cells, fy = (y / Math.max(h - 1, 1)) * cells;
        const ix = Math.min(Math.floor(fx), cells - 1), iy = Math.min(Math.floor(fy), cells - 1), ax = fx - ix, ay = fy - iy;
        const at = (i: number, j: number): number => g[j * (cells + 1) + i]!;
        out[y * w + x]! += amp * ((1 - ay) * ((1 - ax) * at(ix, iy) + ax * at(ix + 1, iy)) + ay * ((1 - ax) * at(ix, iy + 1) + ax * at(ix + 1, iy + 1)));
      }
    }
  }
  return out;
}

function noiseBlob(img: Float32Array, size: number, rng: Rng, out: Float32Array, mask: Uint8Array): SyntheticDefect['box'] {
  const w = side(rng, size), h = side(rng, size);
  const x0 = rng.int(size - w + 1), y0 = rng.int(size - h + 1);
  const { mean, std } = channelStats(img);
  const noise = [0, 1, 2].map(() => valueNoise(w, h, rng));
  const alpha = rng.uniform(0.6, 1);
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (((x - cx) / (w / 2)) ** 2 + ((y - cy) / (h / 2)) ** 2 > 1) continue;
      const p = ((y0 + y) * size + x0 + x) * 3;
      // Noise values span mean +- 3 std of each channel: clearly foreign, never outside the image's own range scale.
      for (let c = 0; c < 3; c++) out[p + c] = (1 - alpha) * img[p + c]! + alpha * (mean[c]! + 3 * std[c]! * (2 * noise[c]![y * w + x]! - 1));
      mask[(y0 + y) * size + x0 + x] = 1;
    }
  }
  return { x0, y0, x1: x0 + w, y1: y0 + h };
}

/**
 * Makes one synthetic defect image from a normal image. Deterministic for a given `seed`.
 * @param img - [size, size, 3] float32 (any value space; the defect is built from the image's own values and
 *   per-channel statistics). Not modified.
 * @param kind - which defect to paste.
 * @returns a new image and a mask marking exactly the changed pixels (so pixel AUROC on it is well defined).
 * @throws Error when `img` is not size * size * 3 values or size < 8.
 */
export function makeSyntheticDefect(img: Float32Array, size: number, kind: SyntheticKind, seed: number): SyntheticDefect {
  if (img.length !== size * size * 3) throw new Error(`makeSyntheticDefect: ${img.length} values for a ${size} x ${size} x 3 image`);
  if (size < 8) throw new Error(`makeSyntheticDefect: image side ${size} < 8`);
  const rng = createRng(seed);
  const image = Float32Array.from(img), mask = new Uint8Array(size * size);
  const box = kind === 'cutpaste' ? cutPaste(img, size, rng, image, mask) : noiseBlob(img, size, rng, image, mask);
  // A pixel counts as defective only where the value really changed (a cut-paste of a flat region can leave some equal).
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    let changed = false;
    for (let c = 0; c < 3; c++) if (Math.abs(image[i * 3 + c]! - img[i * 3 + c]!) > 1e-6) changed = true;
    if (!changed) mask[i] = 0;
  }
  return { image, mask, kind, box };
}

/**
 * A synthetic defect for each of `images` (kinds alternate cutpaste / noise), seeded per image from `seed`.
 * @param images - [N] x [size, size, 3] float32. @returns [N] defects in the same order.
 */
export function syntheticDefectSet(images: readonly Float32Array[], size: number, seed: number): SyntheticDefect[] {
  return images.map((img, i) => makeSyntheticDefect(img, size, i % 2 ? 'noise' : 'cutpaste', (seed * 2654435761 + i * 40503) >>> 0));
}
