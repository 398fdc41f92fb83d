import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { chunks, toBatch, type ImageSet } from '../engine/batches.js';
import { gaussianBlur } from '../model/anomalyMap.js';
import type { LayerId } from '../model/config.js';
import { layerDistance } from '../model/loss.js';
import { studentForward, teacherForward } from '../model/networks.js';
import type { NTSNet } from '../model/ntsnet.js';
import { aupro } from '../metrics/aupro.js';
import { auroc } from '../metrics/auroc.js';
import { f1Max } from '../metrics/f1.js';
import type { Variant } from './plan.js';

/** Per-layer distance maps of a test set, upsampled to the input size (before fusion and smoothing). */
export interface LayerMaps {
  n: number;
  size: number;
  /** Layer -> [N * size * size] float32, image-major. */
  layers: Map<LayerId, Float32Array>;
}

/**
 * Per-layer anomaly maps (paper eq. 12 before the fusion): 0.5 x squared distance of the channel-normalised
 * features, bilinearly upsampled (half-pixel centres) to the input size, for every layer of the model's config.
 */
export function perLayerMaps(tf: Tf, model: NTSNet, set: ImageSet, batchSize: number): LayerMaps {
  const size = set.size, hw = size * size, n = set.images.length;
  const layers = new Map<LayerId, Float32Array>(model.config.layers.map((l) => [l, new Float32Array(n * hw)]));
  let at = 0;
  for (const idx of chunks([...Array(n).keys()], batchSize)) {
    const x = toBatch(tf, set, idx);
    const ds = tf.tidy(() => {
      const ft = teacherForward(tf, model.teacher, x, model.config);
      const fs = studentForward(tf, model.student, x, model.config, false);
      return ft.map((t, i) => tf.image.resizeBilinear(layerDistance(tf, t, fs[i]!), [size, size], false, true));
    });
    model.config.layers.forEach((l, i) => layers.get(l)!.set(ds[i]!.dataSync(), at * hw));
    for (const d of ds) d.dispose();
    x.dispose();
    at += idx.length;
  }
  return { n, size, layers };
}

/**
 * Fuses (sum or product, paper eq. 12 / STFPM) the chosen layers, smooths (eq. 13) and takes the maximum as the
 * image-level score: the same arithmetic as model/anomalyMap.ts, on precomputed per-layer maps.
 * @returns maps [N * H * W] and scores [N], float32.
 * @throws Error when the variant uses a layer that was not computed.
 */
export function variantMaps(tf: Tf, lm: LayerMaps, v: Variant, batchSize = 32): { maps: Float32Array; scores: Float32Array } {
  const hw = lm.size * lm.size;
  const fused = new Float32Array(lm.n * hw);
  v.layers.forEach((l, k) => {
    const d = lm.layers.get(l);
    if (!d) throw new Error(`variant ${v.name}: layer ${l} was not computed (model layers ${[...lm.layers.keys()].join(',')})`);
    if (k === 0) fused.set(d);
    else if (v.fusion === 'sum') for (let i = 0; i < fused.length; i++) fused[i] = fused[i]! + d[i]!;
    else for (let i = 0; i < fused.length; i++) fused[i] = fused[i]! * d[i]!;
  });
  const maps = new Float32Array(lm.n * hw);
  const scores = new Float32Array(lm.n);
  for (let s = 0; s < lm.n; s += batchSize) {
    const b = Math.min(batchSize, lm.n - s);
    const [m, sc] = tf.tidy(() => {
      const t = tf.tensor4d(fused.subarray(s * hw, (s + b) * hw), [b, lm.size, lm.size, 1]);
      const sm = gaussianBlur(tf, t, v.sigma) as Tensor4D;
      return [sm.dataSync(), tf.max(sm, [1, 2, 3]).dataSync()];
    });
    maps.set(m, s * hw);
    scores.set(sc, s);
  }
  return { maps, scores };
}

/** Metrics of one set of maps and scores. Null where undefined (one class only, or no masks). */
export interface MapMetrics {
  imageAuroc: number | null;
  pixelAuroc: number | null;
  /** Normalised AUPRO up to 30 % FPR (metrics/aupro.ts). */
  aupro: number | null;
  /** Image-level F1-max and its threshold (metrics/f1.ts). */
  f1Max: number | null;
  f1Threshold: number | null;
}

/**
 * Image AUROC, pixel AUROC, AUPRO (FPR <= 0.3) and image F1-max of maps [N * H * W] and scores [N].
 * @param gt - [N * H * W] binary masks, or null when some defective image has no mask (pixel metrics null).
 */
export function mapMetrics(scores: Float32Array, labels: readonly number[], maps: Float32Array, gt: Uint8Array | null, size: number): MapMetrics {
  const f1 = f1Max(scores, labels);
  return {
    imageAuroc: auroc(scores, labels),
    pixelAuroc: gt ? auroc(maps, gt) : null,
    aupro: gt ? aupro(maps, gt, labels.length, size, size, 0.3) : null,
    f1Max: f1?.f1 ?? null,
    f1Threshold: f1 ? f1.threshold : null,
  };
}
