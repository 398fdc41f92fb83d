import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { loadImageSet, type ImageSet } from '../engine/batches.js';
import { loadTestMasks } from '../engine/evaluate.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { scoreImageSet } from '../engine/score.js';
import { expectedDetection, makeSyntheticSet } from '../engine/synthetic.js';
import { auroc } from '../metrics/auroc.js';
import { gaussianBlur } from '../model/anomalyMap.js';
import type { LayerId } from '../model/config.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { VAL_LOSS_DIR } from './jobs.js';
import { forEachTrainedJob } from './trainedJobs.js';
import { mapMetrics, perLayerMaps, type LayerMaps, type MapMetrics } from './variants.js';

/**
 * Evaluation-time levers (issue 10), applied to a trained model without retraining:
 * - `own`: the model's setting (sum of the per-layer maps, Gaussian sigma, image score = map maximum; eq. 12-13);
 * - `lnorm`: each layer's map standardised by the mean and standard deviation of its values on the held-out normal
 *   validation images before the sum (so that no layer dominates by scale);
 * - `top1` / `top01`: image score = mean of the top 1 % / 0.1 % of the smoothed map instead of its maximum
 *   (`lnorm` with top-k was measured on Magnetic Tile once, below `lnorm` alone on the synthetic image AUROC, and dropped);
 * - layer subsets (paper Table 5) with and without `lnorm`;
 * - combinations; and `ens`: two students of the same configuration (`baseline` + `seed2`), each member's fused map
 *   standardised by its validation statistics, averaged.
 */
export interface LeverVariant {
  name: string;
  layerNorm: boolean;
  /** Fraction of the map's pixels averaged for the image score; 0 = the maximum. */
  topFraction: number;
  /** Layers fused (absent = all of the model's). */
  layers?: LayerId[];
}

export const LEVER_VARIANTS: LeverVariant[] = [
  { name: 'own', layerNorm: false, topFraction: 0 },
  { name: 'lnorm', layerNorm: true, topFraction: 0 },
  { name: 'top1', layerNorm: false, topFraction: 0.01 },
  { name: 'top01', layerNorm: false, topFraction: 0.001 },
  // Layer subsets (paper Table 5), chosen here by the synthetic figure rather than by test labels.
  { name: 'L3', layerNorm: false, topFraction: 0, layers: [3] },
  { name: 'L13', layerNorm: false, topFraction: 0, layers: [1, 3] },
  { name: 'L23', layerNorm: false, topFraction: 0, layers: [2, 3] },
  { name: 'lnorm_L13', layerNorm: true, topFraction: 0, layers: [1, 3] },
  { name: 'lnorm_L23', layerNorm: true, topFraction: 0, layers: [2, 3] },
];

/** One (dataset, model, lever) row of levers.json: the label-free figure and the test metrics. */
export interface LeverRow {
  dataset: string;
  config: string;
  variant: string;
  synthetic: { imageAuroc: number | null; pixelAuroc: number | null };
  test: MapMetrics;
}

/**
 * The label-free check of the epoch selection: the epoch chosen by synthetic defects and the default's choice (lowest
 * validation loss) scored on FRESH synthetic defects (seeds the selection never saw), so that picking the best of 50
 * noisy figures is not rewarded by the same noise. Selection by synthetic defects would become the default only where
 * both fresh AUROCs (means over the seeds) are higher.
 */
export interface SelectionCheck {
  dataset: string;
  seeds: number[];
  selected: { epoch: number; imageAuroc: number; pixelAuroc: number };
  valLoss: { epoch: number; imageAuroc: number; pixelAuroc: number };
}

/** Seeds of the fresh synthetic defects (offsets of the run's seed). */
export const FRESH_SEED_OFFSETS = [1000, 2000, 3000];

/** What levers.json holds. */
export interface LeversFile {
  rows: LeverRow[];
  selection: SelectionCheck[];
}

/** Mean and standard deviation of a map's values (the standardisation of `lnorm` and of the ensemble members). */
function meanStd(d: Float32Array): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (let i = 0; i < d.length; i++) { s += d[i]!; s2 += d[i]! * d[i]!; }
  const mean = s / d.length;
  return { mean, std: Math.sqrt(Math.max(s2 / d.length - mean * mean, 1e-20)) };
}

/** Mean and standard deviation of every layer's map values on the normal validation images. */
function layerStats(val: LayerMaps): Map<LayerId, { mean: number; std: number }> {
  return new Map([...val.layers].map(([l, d]) => [l, meanStd(d)]));
}

/** Sum of the layers' maps, each optionally standardised by `stats`: [N * H * W] float32 (before smoothing). */
function fuse(lm: LayerMaps, stats: Map<LayerId, { mean: number; std: number }> | null, layers?: readonly LayerId[]): Float32Array {
  const out = new Float32Array(lm.n * lm.size * lm.size);
  for (const [l, d] of lm.layers) {
    if (layers && !layers.includes(l)) continue;
    const st = stats?.get(l);
    const a = st ? 1 / st.std : 1, b = st ? -st.mean / st.std : 0;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + a * d[i]! + b;
  }
  return out;
}

/**
 * Smooths fused maps (eq. 13) and scores each image by its maximum or the mean of its top `topFraction` pixels.
 * @param fused - [n * size * size]. @returns smoothed maps [n * size * size] and scores [n], float32.
 */
export function smoothAndScore(tf: Tf, fused: Float32Array, n: number, size: number, sigma: number, topFraction: number, batch = 32): { maps: Float32Array; scores: Float32Array } {
  const hw = size * size, k = Math.max(1, Math.round(topFraction * hw));
  const maps = new Float32Array(n * hw), scores = new Float32Array(n);
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const [m, sc] = tf.tidy(() => {
      const sm = gaussianBlur(tf, tf.tensor4d(fused.subarray(s * hw, (s + b) * hw), [b, size, size, 1]), sigma) as Tensor4D;
      const flat = sm.reshape([b, hw]);
      const score = topFraction > 0 ? tf.mean(tf.topk(flat, k).values, 1) : tf.max(flat, 1);
      return [sm.dataSync(), score.dataSync()];
    });
    maps.set(m, s * hw);
    scores.set(sc, s);
  }
  return { maps, scores };
}

/** Synthetic image / pixel AUROC of clean vs synthetic maps and scores (same images, same order). */
function syntheticFigure(clean: { maps: Float32Array; scores: Float32Array }, synth: { maps: Float32Array; scores: Float32Array }, masks: Uint8Array[]): LeverRow['synthetic'] {
  const n = masks.length, hw = clean.maps.length / n;
  const scores = new Float32Array(2 * n); scores.set(clean.scores); scores.set(synth.scores, n);
  const labels = new Uint8Array(2 * n).fill(1, n);
  const maps = new Float32Array(2 * n * hw); maps.set(clean.maps); maps.set(synth.maps, n * hw);
  const gt = new Uint8Array(2 * n * hw);
  masks.forEach((m, i) => gt.set(m, (n + i) * hw));
  return { imageAuroc: auroc(scores, labels), pixelAuroc: auroc(maps, gt) };
}

/** The standardised fused maps of one model on the three image sets, kept for the ensemble. */
interface Member { size: number; sets: Record<'val' | 'synth' | 'test', Float32Array> }

function standardise(x: Float32Array, ref: Float32Array): Float32Array {
  const { mean, std } = meanStd(ref);
  return x.map((v) => (v - mean) / std);
}

/**
 * Computes every lever of {@link LEVER_VARIANTS} for the default model (the `baseline` job's val_loss choice,
 * `val-loss/`, else its `checkpoint/`) of every dataset of a benchmark run (and the `ens` ensemble of the `baseline` and
 * `seed2` default models where both exist), with the synthetic-defect figure built exactly as `fit` builds it (the
 * checkpoint's validation images, its seed); and the fresh-seed {@link SelectionCheck}. Writes `run/levers.json` (recomputed on every call: 1-3 minutes per
 * dataset on 2 cores, most of it AUPRO). Test labels are only used for the test columns.
 */
export async function runLevers(tf: Tf, run: string, log: (l: string) => void): Promise<LeversFile> {
  const rows: LeverRow[] = [];
  const selection: SelectionCheck[] = [];
  const members = new Map<string, Member>();
  await forEachTrainedJob(tf, run, async ({ dataset, config, dir, model, meta, split, folder }) => {
    if (!existsSync(path.join(dir, 'run.json'))) return;
    const key = `${dataset}/${config}`;
    const ensembleMember = config === 'baseline' || config === 'seed2';
    if (!ensembleMember) return;
    const size = model.config.imageSize, bs = meta.config.train.evalBatchSize, sigma = model.config.sigma;
    const valSet = await loadImageSet(split.val, size);
    const synth = makeSyntheticSet(valSet, meta.config.train.seed);
    const testSet: ImageSet = await loadImageSet(split.test.map((t) => t.path), size);
    const lm = { val: perLayerMaps(tf, model, valSet, bs), synth: perLayerMaps(tf, model, synth.set, bs), test: perLayerMaps(tf, model, testSet, bs) };
    const stats = layerStats(lm.val);
    const labels = split.test.map((t) => t.label);
    const gt = await loadTestMasks(split, size);
    const masks = synth.defects.map((d) => d.mask);
    if (config === 'baseline' && folder === VAL_LOSS_DIR) {
      const seeds = FRESH_SEED_OFFSETS.map((o) => meta.config.train.seed + o);
      const fresh = (m: typeof model): { imageAuroc: number; pixelAuroc: number } => {
        const clean = scoreImageSet(tf, m, valSet, bs, true);
        const eds = seeds.map((sd) => expectedDetection(tf, m, makeSyntheticSet(valSet, sd), clean.scores, clean.maps!, bs));
        return { imageAuroc: eds.reduce((a, e) => a + (e.imageAuroc ?? 0), 0) / eds.length, pixelAuroc: eds.reduce((a, e) => a + (e.pixelAuroc ?? 0), 0) / eds.length };
      };
      const sel = await loadCheckpoint(tf, path.join(dir, 'checkpoint'));
      try {
        const check: SelectionCheck = { dataset, seeds, selected: { epoch: sel.meta.bestEpoch, ...fresh(sel.model) }, valLoss: { epoch: meta.bestEpoch, ...fresh(model) } };
        selection.push(check);
        log(`selection check ${dataset}: fresh synthetic defects, synthetic choice epoch ${check.selected.epoch} ${pct(check.selected.imageAuroc)} / ${pct(check.selected.pixelAuroc)}, val_loss choice epoch ${check.valLoss.epoch} ${pct(check.valLoss.imageAuroc)} / ${pct(check.valLoss.pixelAuroc)}`);
      } finally {
        sel.model.dispose();
      }
    }
    if (config === 'baseline') {
      for (const v of LEVER_VARIANTS.filter((x) => !x.layers || x.layers.every((l) => lm.test.layers.has(l)))) {
        const st = v.layerNorm ? stats : null;
        const [c, s, t] = (['val', 'synth', 'test'] as const).map((k) => smoothAndScore(tf, fuse(lm[k], st, v.layers), lm[k].n, size, sigma, v.topFraction));
        const row: LeverRow = { dataset, config, variant: v.name, synthetic: syntheticFigure(c!, s!, masks), test: mapMetrics(t!.scores, labels, t!.maps, gt, size) };
        rows.push(row);
        log(`levers ${key} ${v.name}: synthetic ${pct(row.synthetic.imageAuroc)} / ${pct(row.synthetic.pixelAuroc)}; test ${pct(row.test.imageAuroc)} / ${pct(row.test.pixelAuroc)} / AUPRO ${pct(row.test.aupro)}`);
      }
    }
    {
      const f = { val: fuse(lm.val, stats), synth: fuse(lm.synth, stats), test: fuse(lm.test, stats) };
      members.set(key, { size, sets: { val: standardise(f.val, f.val), synth: standardise(f.synth, f.val), test: standardise(f.test, f.val) } });
      const other = members.get(`${dataset}/${config === 'baseline' ? 'seed2' : 'baseline'}`);
      if (other && other.size === size) {
        const me = members.get(key)!;
        const avg = (k: 'val' | 'synth' | 'test'): Float32Array => me.sets[k].map((v, i) => (v + other.sets[k][i]!) / 2);
        const [c, s, t] = (['val', 'synth', 'test'] as const).map((k) => smoothAndScore(tf, avg(k), k === 'test' ? testSet.images.length : valSet.images.length, size, sigma, 0));
        const row: LeverRow = { dataset, config: 'ens', variant: 'lnorm', synthetic: syntheticFigure(c!, s!, masks), test: mapMetrics(t!.scores, labels, t!.maps, gt, size) };
        rows.push(row);
        log(`levers ${dataset}/ens (baseline + seed2, lnorm): synthetic ${pct(row.synthetic.imageAuroc)} / ${pct(row.synthetic.pixelAuroc)}; test ${pct(row.test.imageAuroc)} / ${pct(row.test.pixelAuroc)} / AUPRO ${pct(row.test.aupro)}`);
        members.delete(`${dataset}/baseline`); members.delete(`${dataset}/seed2`);
      }
    }
  }, { prefer: VAL_LOSS_DIR });
  const file: LeversFile = { rows, selection };
  await writeJsonAtomic(path.join(run, 'levers.json'), file);
  return file;
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(1));
