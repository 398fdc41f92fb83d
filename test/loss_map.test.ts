/**
 * Loss (paper eq. 10-11) and anomaly map (eq. 12-13) against the PyTorch reference of
 * scripts/tools/make_model_fixtures.py (F.normalize, F.interpolate bilinear align_corners=False, reflect-padded
 * explicit 33x33 Gaussian conv, sigma 4).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf, type Tf } from '../src/backend/index.js';
import { anomalyMap, gaussianBlur, gaussianKernel1d, gaussianKernelSize } from '../src/model/anomalyMap.js';
import { layerDistance, ntsLoss } from '../src/model/loss.js';
import type { RawStateDict } from '../src/model/weights/safetensors.js';
import { fx, loadFixture, loadJson, maxAbs, maxAbsDiff } from './model_helpers.js';

interface MapMeta { size: number; sigma: number; kernelSize: number; lossSum: number; lossMean: number }

let tf: Tf;
let fix: RawStateDict;
let meta: MapMeta;
let teacher: Tensor4D[];
let student: Tensor4D[];

const t4 = (name: string): Tensor4D => {
  const r = fx(fix, name);
  return tf.tensor4d(r.data, r.shape as [number, number, number, number]);
};

before(() => {
  tf = loadTf();
  fix = loadFixture('model_loss_map.safetensors');
  meta = loadJson<MapMeta>('model_loss_map.json');
  teacher = [0, 1, 2].map((l) => t4(`t${l}`));
  student = [0, 1, 2].map((l) => t4(`s${l}`));
});
after(() => tf.dispose([...teacher, ...student]));

describe('layerDistance', () => {
  test('hand example on one pixel: t = (3, 4), s = (1, 0) -> 0.5 * |(0.6, 0.8) - (1, 0)|^2 = 0.4', () => {
    const t = tf.tensor4d([3, 4], [1, 1, 1, 2]);
    const s = tf.tensor4d([1, 0], [1, 1, 1, 2]);
    const d = layerDistance(tf, t, s);
    assert.deepEqual(d.shape, [1, 1, 1, 1]);
    assert.ok(Math.abs(d.dataSync()[0]! - 0.4) < 1e-6, `${d.dataSync()[0]}`);
    // Scale invariance and the extremes: identical directions 0, opposite directions 2, a zero vector 0.5.
    const cases: Array<[number[], number[], number]> = [[[3, 4], [6, 8], 0], [[3, 4], [-3, -4], 2], [[0, 0], [1, 0], 0.5]];
    for (const [a, b, want] of cases) {
      const v = tf.tidy(() => layerDistance(tf, tf.tensor4d(a, [1, 1, 1, 2]), tf.tensor4d(b, [1, 1, 1, 2])).dataSync()[0]!);
      assert.ok(Math.abs(v - want) < 1e-6, `${a} vs ${b}: ${v} != ${want}`);
    }
    tf.dispose([t, s, d]);
  });

  test('matches PyTorch on the layer-1 features', () => {
    const d = layerDistance(tf, teacher[0]!, student[0]!);
    assert.deepEqual(d.shape, [2, 16, 16, 1]);
    const diff = maxAbsDiff(d, fx(fix, 'dist0').data);
    console.log(`layerDistance: max|TS - torch| = ${diff.toExponential(3)}`);
    assert.ok(diff < 1e-6);
    d.dispose();
  });
});

describe('ntsLoss', () => {
  for (const reduction of ['sum', 'mean'] as const) {
    test(`matches PyTorch (reduction '${reduction}')`, () => {
      const l = ntsLoss(tf, teacher, student, reduction);
      assert.equal(l.rank, 0);
      const v = l.dataSync()[0]!;
      const want = reduction === 'sum' ? meta.lossSum : meta.lossMean;
      assert.ok(Math.abs(fx(fix, `loss_${reduction}`).data[0]! - want) < 1e-6);
      console.log(`ntsLoss ${reduction}: TS ${v.toFixed(7)} vs torch ${want.toFixed(7)}, abs diff ${Math.abs(v - want).toExponential(3)}`);
      assert.ok(Math.abs(v - want) < 1e-5 * Math.max(1, want));
      l.dispose();
    });
  }

  test("'sum' is batch size times 'mean'; a single layer matches the reference", () => {
    const s = tf.tidy(() => ntsLoss(tf, teacher, student, 'sum').dataSync()[0]!);
    const m = tf.tidy(() => ntsLoss(tf, teacher, student, 'mean').dataSync()[0]!);
    assert.ok(Math.abs(s - 2 * m) < 1e-5);
    const l0 = tf.tidy(() => ntsLoss(tf, [teacher[0]!], [student[0]!], 'sum').dataSync()[0]!);
    assert.ok(Math.abs(l0 - fx(fix, 'loss_sum_layer0').data[0]!) < 1e-5);
  });

  test('zero for identical directions, throws on mismatched layer counts', () => {
    const z = tf.tidy(() => ntsLoss(tf, teacher, teacher.map((t) => tf.mul(t, 3) as Tensor4D)).dataSync()[0]!);
    assert.ok(Math.abs(z) < 1e-5, `${z}`);
    assert.throws(() => ntsLoss(tf, teacher, student.slice(0, 2)), /layers/);
  });
});

describe('anomalyMap', () => {
  test('Gaussian kernel: size 2*floor(4 sigma + 0.5) + 1, normalised, symmetric', () => {
    assert.equal(gaussianKernelSize(4), 33);
    assert.equal(meta.kernelSize, 33);
    assert.equal(gaussianKernelSize(1), 9);
    const k = gaussianKernel1d(4, 33);
    assert.ok(Math.abs(k.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    for (let i = 0; i < 16; i++) assert.equal(k[i], k[32 - i]);
    assert.ok(k[16]! > k[15]!);
  });

  for (const fusion of ['sum', 'product'] as const) {
    test(`fused map (${fusion}) at 64x64 with sigma 4 matches PyTorch; score is the map maximum`, () => {
      const { map, score } = anomalyMap(tf, teacher, student, [meta.size, meta.size], fusion, meta.sigma);
      assert.deepEqual(map.shape, [2, 64, 64]);
      assert.deepEqual(score.shape, [2]);
      const ref = fx(fix, `map_${fusion}`);
      const d = maxAbsDiff(map, ref.data);
      const scale = maxAbs(ref.data);
      const ds = maxAbsDiff(score, fx(fix, `score_${fusion}`).data);
      console.log(`anomalyMap ${fusion}: max|TS - torch| = ${d.toExponential(3)} (max map ${scale.toFixed(4)}), score diff ${ds.toExponential(3)}`);
      assert.ok(d < 1e-5 * scale, `map diff ${d}`);
      assert.ok(ds < 1e-5 * scale, `score diff ${ds}`);
      const mv = map.dataSync(), sv = score.dataSync();
      for (let b = 0; b < 2; b++) {
        let mx = -Infinity;
        for (let i = 0; i < 64 * 64; i++) mx = Math.max(mx, mv[b * 4096 + i]!);
        assert.equal(sv[b], mx, 'image score must equal the map maximum');
      }
      tf.dispose([map, score]);
    });

    test(`sigma 0 (${fusion}) returns the unsmoothed upsampled fusion`, () => {
      const { map, score } = anomalyMap(tf, teacher, student, [64, 64], fusion, 0);
      const d = maxAbsDiff(map, fx(fix, `fused_${fusion}`).data);
      console.log(`anomalyMap ${fusion} before smoothing (bilinear, half-pixel): max|TS - torch| = ${d.toExponential(3)}`);
      assert.ok(d < 1e-5 * maxAbs(fx(fix, `fused_${fusion}`).data));
      tf.dispose([map, score]);
    });
  }

  test('gaussianBlur alone reproduces the reference smoothing and preserves a constant map', () => {
    const raw = fx(fix, 'fused_sum');
    const m = tf.tensor4d(raw.data, [2, 64, 64, 1]);
    const b = gaussianBlur(tf, m, 4);
    const d = maxAbsDiff(b, fx(fix, 'map_sum').data);
    console.log(`gaussianBlur (33x33, reflect): max|TS - torch| = ${d.toExponential(3)}`);
    assert.ok(d < 1e-5 * Math.max(1, maxAbs(raw.data)));
    const c = tf.fill([1, 40, 40, 1], 0.75) as Tensor4D;
    const bc = gaussianBlur(tf, c, 4);
    assert.ok(maxAbsDiff(bc, new Float32Array(1600).fill(0.75)) < 1e-6);
    tf.dispose([m, b, c, bc]);
  });
});
