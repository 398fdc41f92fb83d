import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { NTSNet } from '../model/ntsnet.js';
import { chunks, toBatch, type ImageSet } from './batches.js';

/**
 * Anomaly maps and image-level scores of an in-memory image set, batch by batch.
 * @returns scores [N] float32 and, when `keepMaps`, maps [N * H * W] float32 (image-major, row-major).
 */
export function scoreImageSet(tf: Tf, model: NTSNet, set: ImageSet, batchSize: number, keepMaps = false): { scores: Float32Array; maps?: Float32Array } {
  const n = set.images.length, hw = set.size * set.size;
  const scores = new Float32Array(n);
  const maps = keepMaps ? new Float32Array(n * hw) : undefined;
  let at = 0;
  for (const idx of chunks([...Array(n).keys()], batchSize)) {
    at = predictInto(model, toBatch(tf, set, idx), scores, maps, at, hw);
  }
  return maps ? { scores, maps } : { scores };
}

/**
 * Scores one batch [B, H, W, 3] into `scores` (and `maps`, image-major) from image index `at`, then disposes the
 * batch and the prediction. Shared by the in-memory and the disk-cached scoring loops.
 * @returns the index after the batch (at + B).
 */
export function predictInto(model: NTSNet, x: Tensor4D, scores: Float32Array, maps: Float32Array | undefined, at: number, hw: number): number {
  const p = model.predict(x);
  scores.set(p.scores.dataSync(), at);
  if (maps) maps.set(p.maps.dataSync(), at * hw);
  const next = at + x.shape[0];
  x.dispose(); p.maps.dispose(); p.scores.dispose();
  return next;
}
