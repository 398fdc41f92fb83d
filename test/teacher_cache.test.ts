/**
 * Training speed-ups of issue 11: the teacher-feature cache (engine/teacherCache.ts) and the ReLU with TensorFlow's
 * fused gradient (model/relu.ts). Both must change nothing but time: cached features equal the teacher's forward pass
 * on real PNG images, a step with them equals a step without, fit gives the same losses with and without the cache,
 * and neither leaks tensors.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf } from '../src/backend/index.js';
import { preset } from '../src/engine/config.js';
import { fit } from '../src/engine/fit.js';
import { DiskImageCache } from '../src/engine/imageCache.js';
import { TeacherFeatureCache, teacherFeatureShapes } from '../src/engine/teacherCache.js';
import { DEFAULT_MODEL_CONFIG } from '../src/model/config.js';
import { NTSNet } from '../src/model/ntsnet.js';
import { reluTrain } from '../src/model/relu.js';
import { readdirSync } from 'node:fs';
import { makeTempDir } from './helpers.js';
import { tinyCategory } from './cli_helpers.js';
import { maxAbsDiff } from './model_helpers.js';

test('reluTrain: same values and gradient as tf.relu (0 at 0), on the native backend through ReluGrad', () => {
  const tf = loadTf();
  const before = tf.memory().numTensors;
  const x = tf.tensor4d([-2, -0.5, 0, 0, 0.25, 3, -1e-30, 1e-30], [1, 2, 2, 2]);
  const w = tf.tensor1d([0.5, -2]);
  const loss = (r: (t: Tensor4D) => Tensor4D) => (xx: import('@tensorflow/tfjs-node').Tensor) => tf.sum(tf.mul(r(xx as Tensor4D), w));
  const g1 = tf.grad(loss((t) => tf.relu(t)))(x), g2 = tf.grad(loss((t) => reluTrain(tf, t)))(x);
  const plus0 = (t: import('@tensorflow/tfjs-node').Tensor): number[] => Array.from(t.dataSync(), (v) => v + 0); // -0 === 0
  assert.deepEqual(plus0(g2), plus0(g1));
  assert.deepEqual(plus0(g2).slice(2, 4), [0, 0], 'gradient 0 where the input is 0');
  const y1 = tf.relu(x), y2 = reluTrain(tf, x);
  assert.equal(maxAbsDiff(y1, y2), 0);
  tf.dispose([x, w, g1, g2, y1, y2]);
  assert.equal(tf.memory().numTensors, before, 'no tensor left');
});

test('TeacherFeatureCache: records equal the teacher forward pass per image; a step with them equals a step without; frozen teacher only', async () => {
  const tf = loadTf();
  const data = await tinyCategory(6);
  const files = readdirSync(path.join(data, 'train', 'good')).map((f) => path.join(data, 'train', 'good', f)).sort();
  const cfg = { ...DEFAULT_MODEL_CONFIG, imageSize: 64 };
  const images = await DiskImageCache.create(files, 64);
  const before = tf.memory().numTensors;
  const model = NTSNet.create(tf, cfg, 'random', 3);
  const cache = await TeacherFeatureCache.create(tf, model, images, 4); // batches of 4 and 2: records written per batch
  try {
    assert.equal(TeacherFeatureCache.bytesPerImage(cfg), teacherFeatureShapes(cfg).reduce((a, [h, w, c]) => a + h * w * c, 0) * 4);
    assert.deepEqual(teacherFeatureShapes(cfg), [[16, 16, 64], [8, 8, 128], [4, 4, 256]]);
    const idx = [5, 0, 3];
    const x = await images.batch(tf, idx);
    const direct = model.teacherFeatures(x);
    const cached = await cache.batch(tf, idx);
    assert.equal(cached.length, 3);
    for (let l = 0; l < 3; l++) {
      assert.deepEqual(cached[l]!.shape, direct[l]!.shape);
      const scale = tf.tidy(() => tf.max(tf.abs(direct[l]!)).dataSync()[0]!);
      assert.ok(maxAbsDiff(cached[l]!, direct[l]!) <= 1e-5 * Math.max(1, scale), `layer ${l + 1}`);
    }
    await assert.rejects(cache.batch(tf, [6]), /index 6 outside 0\.\.5/);
    // Two models from the same seed, one step each, with and without the cached features: the same loss and weights.
    const a = NTSNet.create(tf, cfg, 'random', 3), b = NTSNet.create(tf, cfg, 'random', 3);
    const oa = tf.train.momentum(0.4, 0.9), ob = tf.train.momentum(0.4, 0.9);
    const la = a.trainStep(x, oa, { weightDecay: 1e-4, lossReduction: 'sum' });
    const lb = b.trainStep(x, ob, { weightDecay: 1e-4, lossReduction: 'sum' }, cached);
    assert.ok(Math.abs(la - lb) <= 1e-5 * Math.abs(la), `loss ${la} vs ${lb}`);
    for (const [n, v] of a.student) assert.ok(maxAbsDiff(v, b.student.get(n)!) <= 1e-5, n);
    const eman = NTSNet.create(tf, { ...cfg, teacherNorm: 'eman' }, 'random', 3);
    assert.throws(() => eman.trainStep(x, oa, { weightDecay: 0, lossReduction: 'sum' }, cached), /need a fixed teacher \(frozen_bn\), not eman/);
    await assert.rejects(TeacherFeatureCache.create(tf, eman, images, 4), /only be cached for a fixed teacher/);
    tf.dispose([x, ...direct, ...cached]);
    for (const m of [a, b, eman]) m.dispose();
    oa.dispose(); ob.dispose();
  } finally {
    await cache.dispose();
    await images.dispose();
    model.dispose();
  }
  // tfjs's momentum optimizer keeps its momentum scalar after dispose() (see fit_leak.test.ts): 2 optimizers.
  assert.ok(tf.memory().numTensors - before <= 2, `tensors left: ${tf.memory().numTensors - before}`);
});

test('fit: the same training losses with the teacher-feature cache as with the teacher run in every step', async () => {
  const tf = loadTf();
  const data = await tinyCategory(8);
  const c = preset('tiny');
  c.train.epochs = 2;
  const run = async (cacheGb: string | undefined): Promise<{ losses: number[]; logs: string[] }> => {
    const prev = process.env.NTSNET_TEACHER_CACHE_GB;
    if (cacheGb === undefined) delete process.env.NTSNET_TEACHER_CACHE_GB; else process.env.NTSNET_TEACHER_CACHE_GB = cacheGb;
    const logs: string[] = [];
    try {
      const r = await fit(tf, { data, out: path.join(makeTempDir('tcache'), 'run'), config: c, progress: false, log: (l) => logs.push(l) });
      return { losses: r.history.flatMap((h) => [h.trainLoss, h.valLoss ?? NaN]), logs };
    } finally {
      if (prev === undefined) delete process.env.NTSNET_TEACHER_CACHE_GB; else process.env.NTSNET_TEACHER_CACHE_GB = prev;
    }
  };
  const cached = await run(undefined), direct = await run('0');
  await assert.rejects(run('abc'), /NTSNET_TEACHER_CACHE_GB=abc is not a size in GB: set a number >= 0/);
  assert.ok(direct.logs.some((l) => /the teacher runs in every training step instead/.test(l)), 'NTSNET_TEACHER_CACHE_GB=0 turns the cache off, and says so');
  assert.ok(!cached.logs.some((l) => /teacher runs in every training step/.test(l)));
  assert.equal(cached.losses.length, 4);
  for (const [i, v] of cached.losses.entries()) assert.ok(Math.abs(v - direct.losses[i]!) <= 1e-4 * Math.abs(direct.losses[i]!), `loss ${i}: ${v} vs ${direct.losses[i]}`);
});
