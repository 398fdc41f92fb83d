import type { Tf } from '../backend/index.js';
import { syntheticDefectSet, type SyntheticDefect } from '../data/synthetic.js';
import { auroc } from '../metrics/auroc.js';
import type { NTSNet } from '../model/ntsnet.js';
import type { ImageSet } from './batches.js';
import { scoreImageSet } from './score.js';

/** Expected detection on synthetic defects pasted into held-out normal images (no defect labels used). */
export interface ExpectedDetection {
  /** Normal images used (each once clean, once with a synthetic defect). */
  images: number;
  /** Image AUROC of clean vs defective copies (0.5 = chance). */
  imageAuroc: number | null;
  /** Pixel AUROC over all pixels of the clean and defective copies against the synthetic masks. */
  pixelAuroc: number | null;
  kinds: string[];
}

/** Synthetic defect copies of a normal image set, made once per fit (seeded; data/synthetic.ts). */
export interface SyntheticSet {
  set: ImageSet;
  defects: SyntheticDefect[];
}

/** Builds the synthetic defect copies of `set` (same order). */
export function makeSyntheticSet(set: ImageSet, seed: number): SyntheticSet {
  const defects = syntheticDefectSet(set.images, set.size, seed);
  return { set: { size: set.size, images: defects.map((d) => d.image) }, defects };
}

/**
 * Scores the synthetic copies and compares them with the clean images' scores and maps (the same images, already
 * scored by the caller): image AUROC (clean = 0, synthetic = 1) and pixel AUROC against the synthetic masks.
 * @param cleanScores - [N]; @param cleanMaps - [N * size * size] of the clean images, same order as `synth`.
 */
export function expectedDetection(tf: Tf, model: NTSNet, synth: SyntheticSet, cleanScores: Float32Array, cleanMaps: Float32Array, batchSize: number): ExpectedDetection {
  const n = synth.defects.length, hw = synth.set.size * synth.set.size;
  if (n === 0) return { images: 0, imageAuroc: null, pixelAuroc: null, kinds: [] };
  const { scores, maps } = scoreImageSet(tf, model, synth.set, batchSize, true);
  const allScores = new Float32Array(2 * n);
  allScores.set(cleanScores.subarray(0, n)); allScores.set(scores, n);
  const labels = new Uint8Array(2 * n).fill(1, n);
  const allMaps = new Float32Array(2 * n * hw);
  allMaps.set(cleanMaps.subarray(0, n * hw)); allMaps.set(maps!, n * hw);
  const gt = new Uint8Array(2 * n * hw);
  synth.defects.forEach((d, i) => gt.set(d.mask, (n + i) * hw));
  return { images: n, imageAuroc: auroc(allScores, labels), pixelAuroc: auroc(allMaps, gt), kinds: [...new Set(synth.defects.map((d) => d.kind))] };
}
