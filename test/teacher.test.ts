/**
 * Teacher equivalence against torchvision's resnet18 (scripts/tools/make_model_fixtures.py): deterministic weights
 * rebuilt here in PyTorch layout, loaded with paramsFromTorch, a real MVTec image (stored in the fixture), and the
 * layer1..layer3 eval-mode features compared.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf, type Tf } from '../src/backend/index.js';
import { DEFAULT_MODEL_CONFIG, type LayerId, type ModelConfig } from '../src/model/config.js';
import { teacherForward, teacherShapes } from '../src/model/networks.js';
import { NTSNet } from '../src/model/ntsnet.js';
import { disposeParams, paramsFromTorch, type ParamMap } from '../src/model/params.js';
import type { RawStateDict } from '../src/model/weights/safetensors.js';
import { deterministicTrunk, fx, loadFixture, loadJson, maxAbs, maxAbsDiff } from './model_helpers.js';

interface TeacherMeta {
  weightChecks: Record<string, { k: number; shape: number[]; sum: number; first: number[] }>;
  featureMaxAbs: Record<string, number>;
}

const cfg: ModelConfig = { ...DEFAULT_MODEL_CONFIG, imageSize: 128 };
/** Bound on max |TS - PyTorch| relative to the feature's max |value| (float32 vs a float64 reference). */
const REL_TOL = 1e-4;

let tf: Tf;
let fix: RawStateDict;
let meta: TeacherMeta;
let raw: RawStateDict;
let params: ParamMap;
let x: Tensor4D;

before(() => {
  tf = loadTf();
  fix = loadFixture('model_teacher.safetensors');
  meta = loadJson<TeacherMeta>('model_teacher.json');
  raw = deterministicTrunk(teacherShapes(cfg));
  params = paramsFromTorch(tf, raw, teacherShapes(cfg), 'fixture');
  const inp = fx(fix, 'input');
  x = tf.tensor4d(inp.data, inp.shape as [number, number, number, number]);
});

after(() => {
  disposeParams(params);
  x.dispose();
});

describe('teacher vs torchvision resnet18', () => {
  test('deterministic weights match the Python generator (names, shapes, sums, first values)', () => {
    assert.deepEqual([...raw.keys()].sort(), Object.keys(meta.weightChecks).sort());
    for (const [name, c] of Object.entries(meta.weightChecks)) {
      const t = raw.get(name)!;
      assert.deepEqual(t.shape, c.shape, `shape of ${name}`);
      let sum = 0;
      for (const v of t.data) sum += v;
      assert.ok(Math.abs(sum - c.sum) <= 1e-9 * Math.max(1, Math.abs(c.sum)) + 1e-9 * t.data.length, `sum of ${name}: ${sum} vs ${c.sum}`);
      assert.deepEqual(Array.from(t.data.subarray(0, 3)), c.first, `first values of ${name}`);
    }
  });

  test('input fixture is the normalised 128x128 image', () => {
    assert.deepEqual(x.shape, [1, 128, 128, 3]);
    const v = fx(fix, 'input').data;
    // ImageNet normalisation of values in [0, 1]: per channel within [-mean/std, (1-mean)/std].
    let lo = Infinity, hi = -Infinity;
    for (const a of v) { lo = Math.min(lo, a); hi = Math.max(hi, a); }
    assert.ok(lo >= -2.2 && hi <= 2.7 && hi - lo > 1, `input range [${lo}, ${hi}]`);
  });

  test('layer1..layer3 features match PyTorch (eval mode)', () => {
    const feats = tf.tidy(() => teacherForward(tf, params, x, cfg).map((f) => tf.keep(f)));
    try {
      const shapes = [[1, 32, 32, 64], [1, 16, 16, 128], [1, 8, 8, 256]];
      for (let l = 0; l < 3; l++) {
        const ref = fx(fix, `layer${l + 1}`);
        assert.deepEqual(feats[l]!.shape, shapes[l]);
        assert.deepEqual(ref.shape, shapes[l]);
        const d = maxAbsDiff(feats[l]!, ref.data);
        const scale = maxAbs(ref.data);
        assert.ok(Math.abs(scale - meta.featureMaxAbs[`layer${l + 1}`]!) < 1e-5);
        console.log(`teacher layer${l + 1}: max|TS - torch| = ${d.toExponential(3)} (feature max|x| = ${scale.toFixed(3)}, relative ${(d / scale).toExponential(3)})`);
        assert.ok(d / scale < REL_TOL, `layer${l + 1}: max abs diff ${d} exceeds ${REL_TOL} * ${scale}`);
      }
    } finally {
      for (const f of feats) f.dispose();
    }
  });

  test('a subset of layers returns only those layers, in ascending order, with the same values', () => {
    const full = tf.tidy(() => teacherForward(tf, params, x, cfg).map((f) => tf.keep(f)));
    for (const layers of [[2], [3, 1], [1, 2]] as LayerId[][]) {
      const sub = tf.tidy(() => teacherForward(tf, params, x, { ...cfg, layers }).map((f) => tf.keep(f)));
      const want = [...layers].sort();
      assert.equal(sub.length, want.length);
      sub.forEach((f, j) => {
        assert.deepEqual(f.shape, full[want[j]! - 1]!.shape);
        assert.equal(maxAbsDiff(f, full[want[j]! - 1]!), 0);
      });
      for (const f of sub) f.dispose();
    }
    for (const f of full) f.dispose();
  });

  test('NTSNet.create loads the same teacher from a PyTorch-layout state dict', () => {
    const net = NTSNet.create(tf, { ...cfg, layers: [3] }, raw, 5, 'fixture');
    try {
      const f = tf.tidy(() => teacherForward(tf, net.teacher, x, net.config)[0]!);
      const d = maxAbsDiff(f, fx(fix, 'layer3').data);
      f.dispose();
      console.log(`teacher via NTSNet.create, layer3: max|TS - torch| = ${d.toExponential(3)}`);
      assert.ok(d / maxAbs(fx(fix, 'layer3').data) < REL_TOL);
      for (const v of net.teacher.values()) assert.equal(v.trainable, false);
    } finally {
      net.dispose();
    }
  });

  test('paramsFromTorch names the offending key on a shape mismatch', () => {
    const bad: RawStateDict = new Map(raw);
    bad.set('layer2.0.conv1.weight', { shape: [128, 64, 1, 3], data: new Float32Array(128 * 64 * 3) });
    assert.throws(() => paramsFromTorch(tf, bad, teacherShapes(cfg), 'fixture'), /layer2\.0\.conv1\.weight/);
  });
});
