/**
 * Issue 10: the checkpoint epoch chosen by synthetic defects (no defect labels), the last epoch kept for comparison,
 * early stopping, the cosine schedule, flip augmentation and the evaluation-time levers' scoring.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTf } from '../src/backend/index.js';
import { smoothAndScore } from '../src/bench/levers.js';
import { preset, validateRunConfig } from '../src/engine/config.js';
import { fit, flipsFor, lrAt, syntheticScore } from '../src/engine/fit.js';
import { readCheckpointMeta } from '../src/engine/checkpoint.js';
import { makeTempDir } from './helpers.js';
import { tinyCategory } from './cli_helpers.js';

const tf = loadTf();

/** The tiny preset selecting by synthetic defects, with enough held-out images for a figure. */
function synthConfig(epochs: number): ReturnType<typeof preset> {
  const c = preset('tiny');
  c.train.epochs = epochs;
  c.train.selectBy = 'synthetic';
  c.train.valFraction = 0.25;
  return c;
}

test('selectBy synthetic: every epoch is scored on synthetic defects and the checkpoint is the best-scoring epoch; keepValLossChoice saves the val_loss choice', async () => {
  const data = await tinyCategory(8);
  const c = synthConfig(4);
  const dir = makeTempDir('select');
  const lines: string[] = [];
  const r = await fit(tf, { data, out: path.join(dir, 'run'), keepValLossChoice: path.join(dir, 'val-loss'), config: c, progress: false, log: (l) => lines.push(l) });
  assert.equal(r.history.length, 4);
  for (const h of r.history) assert.ok(h.synthetic && typeof h.synthetic.pixelAuroc === 'number', `epoch ${h.epoch} has a synthetic figure`);
  // The first epoch with the highest criterion (ties: the lower validation loss) is the checkpoint.
  let best = r.history[0]!;
  for (const h of r.history.slice(1)) {
    const a = syntheticScore(h.synthetic)!, b = syntheticScore(best.synthetic)!;
    if (a > b || (a === b && (h.valLoss ?? h.trainLoss) < (best.valLoss ?? best.trainLoss))) best = h;
  }
  assert.equal(r.meta.bestEpoch, best.epoch);
  assert.equal(syntheticScore(r.meta.expectedDetection), syntheticScore(best.synthetic), 'the checkpoint carries its own synthetic figure');
  assert.ok(lines.some((l) => /^epoch 1\/4 .* synthetic \d+\.\d \/ \d+\.\d /.test(l)), 'the figure is logged per epoch');
  // Beside it, the checkpoint the default selection (lowest validation loss) would have kept.
  const vl = await readCheckpointMeta(path.join(dir, 'val-loss'));
  const lowest = r.history.reduce((a, h) => ((h.valLoss ?? Infinity) < (a.valLoss ?? Infinity) ? h : a));
  assert.equal(vl.bestEpoch, lowest.epoch);
  assert.equal(vl.bestValLoss, lowest.valLoss);
  assert.equal(syntheticScore(vl.expectedDetection), syntheticScore(lowest.synthetic), 'the val_loss choice carries its own epoch\'s synthetic figure');
  assert.equal(vl.training?.status, 'complete');
});

test('patience stops training when the criterion has not improved for that many epochs', async () => {
  const data = await tinyCategory(8);
  const c = synthConfig(8);
  c.train.patience = 1;
  const lines: string[] = [];
  const r = await fit(tf, { data, out: path.join(makeTempDir('patience'), 'run'), config: c, progress: false, log: (l) => lines.push(l) });
  if (r.history.length < 8) {
    assert.equal(r.history.length - r.meta.bestEpoch, 1, 'stopped exactly `patience` epochs after the best');
    assert.ok(lines.some((l) => /^early stop after epoch \d+/.test(l)));
  } else {
    // Ran to the end: with patience 1 that means each of epochs 1-7 was a new best.
    const bests = lines.filter((l) => /^epoch \d+\/8 .*\*best$/.test(l)).map((l) => Number(/^epoch (\d+)/.exec(l)![1]));
    for (let e = 1; e < 8; e++) assert.ok(bests.includes(e), `epoch ${e} was a new best (bests: ${bests.join(',')})`);
  }
  assert.equal(r.meta.training?.status, 'complete');
});

test('cosine learning rate, flips and the new config fields are checked', async () => {
  const c = preset('cpu');
  c.train.lrSchedule = 'cosine';
  assert.equal(lrAt(c, 0), c.train.lr);
  assert.ok(Math.abs(lrAt(c, 0.5) - c.train.lr / 2) < 1e-12);
  assert.ok(lrAt(c, 0.999) < 1e-4 * c.train.lr);
  c.train.lrSchedule = 'constant';
  assert.equal(lrAt(c, 0.7), c.train.lr);
  const f = Array.from({ length: 64 }, (_, b) => flipsFor(42, 3, b));
  assert.deepEqual(f, Array.from({ length: 64 }, (_, b) => flipsFor(42, 3, b)), 'seeded');
  for (const k of ['lr', 'ud'] as const) {
    const n = f.filter((x) => x[k]).length;
    assert.ok(n > 16 && n < 48, `${k} flips about half the batches (${n} of 64)`);
  }
  const bad = preset('cpu');
  bad.train.optimizer = 'adam';
  bad.train.lrSchedule = 'cosine';
  bad.train.patience = -1;
  (bad.train as { selectBy: string }).selectBy = 'test_auroc';
  assert.throws(() => validateRunConfig(bad), /lrSchedule 'cosine' needs optimizer 'sgd'[\s\S]*patience must be a non-negative integer/);
  assert.throws(() => validateRunConfig(bad), /selectBy must be 'val_loss' or 'synthetic'/);
});

test('flip augmentation trains without the teacher-feature cache and says so', async () => {
  const data = await tinyCategory(8);
  const c = preset('tiny');
  c.model.teacherNorm = 'frozen_bn';
  c.model.studentBlock = 'basic';
  c.train.epochs = 1;
  c.train.augment = 'flip';
  const lines: string[] = [];
  const before = tf.memory().numTensors;
  const out = path.join(makeTempDir('flip'), 'run');
  await fit(tf, { data, out, config: c, progress: false, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /augment flip: the teacher runs in every training step/.test(l)));
  assert.ok(existsSync(path.join(out, 'model.safetensors')));
  assert.ok(tf.memory().numTensors - before <= 2, `no tensors leaked by the flips (${tf.memory().numTensors - before})`);
});

test('smoothAndScore: maximum, or the mean of the top fraction of pixels', () => {
  const size = 10, n = 2;
  const fused = new Float32Array(n * size * size);
  for (let i = 0; i < size * size; i++) { fused[i] = i; fused[size * size + i] = (i * 37) % 100; }
  const max = smoothAndScore(tf, fused, n, size, 0, 0);
  assert.deepEqual(Array.from(max.scores), [99, 99]);
  const top = smoothAndScore(tf, fused, n, size, 0, 0.05); // 5 of 100 pixels
  assert.deepEqual(Array.from(top.scores), [97, 97]);
  assert.deepEqual(Array.from(top.maps), Array.from(fused), 'sigma 0 leaves the maps unchanged');
  const smooth = smoothAndScore(tf, fused, n, size, 2, 0);
  assert.ok(smooth.scores[0]! < 99, 'smoothing lowers a single peak');
});
