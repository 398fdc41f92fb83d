/**
 * CoT block against an independent PyTorch module written from cot.ts's TSDoc math (scripts/tools/make_model_fixtures.py):
 * eval-mode and training-mode BatchNorm, attention weights, collected batch statistics and training-mode gradients.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Tensor, Tensor1D, Tensor4D, Tensor5D } from '@tensorflow/tfjs-node';
import { loadTf, type Tf } from '../src/backend/index.js';
import { batchNormEval, batchNormTrain, type BatchStats } from '../src/model/batchnorm.js';
import { COT_KERNEL, cotAttention, cotForward, cotHidden, cotShapes, type CotContext, type CotOptions } from '../src/model/cot.js';
import { torchToTfLayout } from '../src/model/params.js';
import type { RawStateDict } from '../src/model/weights/safetensors.js';
import { fx, loadFixture, loadJson, maxAbs, maxAbsDiff } from './model_helpers.js';

interface CaseMeta { inC: number; outC: number; stride: number; groups: number; heads: number; reduction: number; hidden: number; grads: boolean }
interface CotMeta { cases: Record<string, CaseMeta>; gradParams: string[] }

/** Bound on max |TS - PyTorch| of the block output (values are O(10)). */
const OUT_TOL = 1e-4;

let tf: Tf;
let fix: RawStateDict;
let meta: CotMeta;

before(() => {
  tf = loadTf();
  fix = loadFixture('model_cot.safetensors');
  meta = loadJson<CotMeta>('model_cot.json');
});

const opts = (c: CaseMeta): CotOptions => ({ groups: c.groups, heads: c.heads, reduction: c.reduction });

/** The block's parameters in TF layout, converted from the fixture's PyTorch layout with torchToTfLayout. */
function blockParams(name: string): Map<string, Tensor> {
  const p = new Map<string, Tensor>();
  const prefix = `${name}/param/`;
  for (const [k, t] of fix) {
    if (!k.startsWith(prefix)) continue;
    const c = torchToTfLayout(t);
    p.set(k.slice(prefix.length), tf.tensor(c.data, c.shape, 'float32'));
  }
  return p;
}

function context(p: Map<string, Tensor>, training: boolean, collect?: BatchStats[]): CotContext {
  const get = <T extends Tensor>(n: string): T => {
    const t = p.get(n);
    if (!t) throw new Error(`missing ${n}`);
    return t as T;
  };
  return {
    weight: (n) => get<Tensor4D>(n),
    bias: (n) => get<Tensor1D>(n),
    norm: (x, n) =>
      training
        ? batchNormTrain(tf, x, get(`${n}.weight`), get(`${n}.bias`), n, collect)
        : batchNormEval(tf, x, get(`${n}.weight`), get(`${n}.bias`), get(`${n}.running_mean`), get(`${n}.running_var`)),
  };
}

function input(name: string): Tensor4D {
  const t = fx(fix, `${name}/input`);
  return tf.tensor4d(t.data, t.shape as [number, number, number, number]);
}

for (const name of ['a', 'b']) {
  describe(`CoT case ${name}`, () => {
    test('fixture parameters have exactly the names and shapes of cotShapes', () => {
      const c = meta.cases[name]!;
      const want = new Map<string, number[]>();
      cotShapes(want, 'blk', c.inC, c.outC, opts(c));
      assert.equal(cotHidden(c.outC, opts(c)), c.hidden);
      const got = new Map<string, number[]>();
      for (const [k, t] of fix) if (k.startsWith(`${name}/param/`)) got.set(k.slice(`${name}/param/`.length), torchToTfLayout(t).shape);
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
      for (const [k, s] of want) assert.deepEqual(got.get(k), s, k);
    });

    for (const mode of ['eval', 'train'] as const) {
      test(`output matches PyTorch (${mode} mode BatchNorm)`, () => {
        const c = meta.cases[name]!;
        const p = blockParams(name);
        const x = input(name);
        const stats: BatchStats[] = [];
        const y = tf.tidy(() => cotForward(tf, x, 'blk', c.outC, c.stride, opts(c), context(p, mode === 'train', stats)));
        const ref = fx(fix, `${name}/out_${mode}`);
        const hOut = 16 / c.stride;
        assert.deepEqual(y.shape, [2, hOut, hOut, c.outC]);
        assert.deepEqual(ref.shape, [2, hOut, hOut, c.outC]);
        const d = maxAbsDiff(y, ref.data);
        console.log(`cot ${name} (stride ${c.stride}, ${c.inC}->${c.outC}) ${mode}: max|TS - torch| = ${d.toExponential(3)} (max|y| = ${maxAbs(ref.data).toFixed(3)})`);
        assert.ok(d < OUT_TOL, `max abs diff ${d}`);
        if (mode === 'train') {
          assert.equal(stats.length, 1);
          const s = stats[0]!;
          assert.equal(s.name, 'blk.key.bn');
          assert.equal(s.count, 2 * hOut * hOut);
          const dm = maxAbsDiff(s.mean, fx(fix, `${name}/train_mean`).data);
          const dv = maxAbsDiff(s.variance, fx(fix, `${name}/train_var`).data);
          console.log(`cot ${name} key.bn batch stats: mean diff ${dm.toExponential(3)}, biased var diff ${dv.toExponential(3)}`);
          assert.ok(dm < 1e-5 && dv < 1e-4 * maxAbs(fx(fix, `${name}/train_var`).data));
          s.mean.dispose();
          s.variance.dispose();
        } else {
          assert.equal(stats.length, 0);
        }
        y.dispose();
        x.dispose();
        for (const t of p.values()) t.dispose();
      });
    }

    test('cotAttention: shape, positive weights summing to 1 over the window, equal to PyTorch softmax', () => {
      const c = meta.cases[name]!;
      const lg = fx(fix, `${name}/logits_eval`);
      const logits = tf.tensor4d(lg.data, lg.shape as [number, number, number, number]);
      const a = cotAttention(tf, logits, c.heads);
      const hOut = 16 / c.stride;
      assert.deepEqual(a.shape, [2, hOut, hOut, c.heads, COT_KERNEL * COT_KERNEL]);
      const d = maxAbsDiff(a, fx(fix, `${name}/attn_eval`).data);
      console.log(`cot ${name} attention weights: max|TS - torch| = ${d.toExponential(3)}`);
      assert.ok(d < 1e-6);
      const v = a.dataSync();
      for (let i = 0; i < v.length; i += 9) {
        let s = 0;
        for (let j = 0; j < 9; j++) { assert.ok(v[i + j]! > 0); s += v[i + j]!; }
        assert.ok(Math.abs(s - 1) < 1e-5, `window sum ${s}`);
      }
      a.dispose();
      logits.dispose();
    });
  });
}

test('cotAttention stays normalised for large logits', () => {
  const logits = tf.mul(tf.randomNormal([1, 3, 3, 2 * 9], 0, 1, 'float32', 7), 80) as Tensor4D;
  const a = cotAttention(tf, logits, 2) as Tensor5D;
  const sums = tf.sum(a, 4);
  assert.ok(maxAbsDiff(sums, new Float32Array(sums.size).fill(1)) < 1e-5);
  assert.ok(tf.min(a).dataSync()[0]! >= 0);
  assert.ok(!a.dataSync().some((v) => Number.isNaN(v)));
  tf.dispose([logits, a, sums]);
});

test('the window index j = (dy+1)*3 + (dx+1) and heads cover contiguous channel blocks', () => {
  // Identity-free probe: K = 0 (key BN weight and bias 0), V = identity, attention logits put all weight of head h on
  // window position j_h, so Y(p) = V(p + offset(j_h)) on the channels of head h.
  const C = 8, heads = 2, hidden = 8;
  const o: CotOptions = { groups: 1, heads, reduction: 1 };
  assert.equal(cotHidden(C, o), hidden);
  const eye = (n: number) => tf.reshape(tf.eye(n), [1, 1, n, n]) as Tensor4D;
  const targets = [1, 5]; // head 0: (dy, dx) = (-1, 0); head 1: (0, +1)
  const bias2 = new Float32Array(heads * 9);
  targets.forEach((j, h) => { for (let k = 0; k < 9; k++) bias2[h * 9 + k] = k === j ? 60 : -60; });
  const p = new Map<string, Tensor>([
    ['t.key.conv.weight', tf.zeros([3, 3, C, C])],
    ['t.key.bn.weight', tf.zeros([C])], ['t.key.bn.bias', tf.zeros([C])],
    ['t.key.bn.running_mean', tf.zeros([C])], ['t.key.bn.running_var', tf.ones([C])],
    ['t.query.weight', tf.zeros([1, 1, C, C])],
    ['t.value.0.weight', eye(C)], ['t.value.1.weight', eye(C)],
    ['t.attn.0.weight', tf.zeros([1, 1, 2 * C, hidden])], ['t.attn.0.bias', tf.zeros([hidden])],
    ['t.attn.1.weight', tf.zeros([1, 1, hidden, heads * 9])], ['t.attn.1.bias', tf.tensor1d(bias2)],
  ]);
  const H = 4;
  const xv = new Float32Array(H * H * C);
  for (let i = 0; i < xv.length; i++) xv[i] = 1 + i;
  const x = tf.tensor4d(xv, [1, H, H, C]);
  const y = tf.tidy(() => cotForward(tf, x, 't', C, 1, o, context(p, false)));
  const yv = y.dataSync();
  const offs: Array<[number, number]> = [[-1, 0], [0, 1]];
  for (let r = 0; r < H; r++)
    for (let cc = 0; cc < H; cc++)
      for (let ch = 0; ch < C; ch++) {
        const h = Math.floor(ch / (C / heads));
        const [dy, dx] = offs[h]!;
        const rr = r + dy, c2 = cc + dx;
        const want = rr < 0 || rr >= H || c2 < 0 || c2 >= H ? 0 : xv[(rr * H + c2) * C + ch]!;
        assert.ok(Math.abs(yv[(r * H + cc) * C + ch]! - want) < 1e-3 * Math.max(1, Math.abs(want)), `(${r},${cc},${ch}): ${yv[(r * H + cc) * C + ch]} vs ${want}`);
      }
  tf.dispose([x, y, ...p.values()]);
});

test('training-mode gradients through the block match PyTorch autograd (case b, stride 2, 64->128)', () => {
  const name = 'b';
  const c = meta.cases[name]!;
  assert.ok(c.grads);
  const p = blockParams(name);
  const x = input(name);
  const rr = fx(fix, `${name}/grad/r`);
  const r = tf.tensor4d(rr.data, rr.shape as [number, number, number, number]);
  const names = meta.gradParams.map((n) => `blk.${n}`);
  const f = (...args: Tensor[]) => {
    const [xi, ...ps] = args;
    const q = new Map(p);
    names.forEach((n, i) => q.set(n, ps[i]!));
    const stats: BatchStats[] = [];
    const y = cotForward(tf, xi as Tensor4D, 'blk', c.outC, c.stride, opts(c), context(q, true, stats));
    for (const s of stats) { s.mean.dispose(); s.variance.dispose(); }
    return tf.sum(tf.mul(y, r));
  };
  const grads = tf.tidy(() => tf.grads(f)([x, ...names.map((n) => p.get(n)!)]).map((g) => tf.keep(g)));
  const refIn = fx(fix, `${name}/grad/input`);
  const di = maxAbsDiff(grads[0]!, refIn.data);
  console.log(`cot ${name} grad input: max|TS - torch| = ${di.toExponential(3)} (max|g| = ${maxAbs(refIn.data).toFixed(3)})`);
  assert.ok(di < 1e-4 * Math.max(1, maxAbs(refIn.data)));
  names.forEach((n, i) => {
    const ref = torchToTfLayout(fx(fix, `${name}/grad/param/${n}`));
    assert.deepEqual(grads[i + 1]!.shape, ref.shape, n);
    const d = maxAbsDiff(grads[i + 1]!, ref.data);
    const scale = Math.max(1, maxAbs(ref.data));
    console.log(`cot ${name} grad ${n}: max|TS - torch| = ${d.toExponential(3)} (max|g| = ${maxAbs(ref.data).toFixed(3)})`);
    assert.ok(d < 1e-4 * scale, `${n}: ${d}`);
  });
  tf.dispose([...grads, x, r, ...p.values()]);
});

test('avgpool downsampling: a stride-2 block equals the stride-1 block on the 3x3 / stride-2 / zero-padded average of its input', () => {
  const o: CotOptions = { groups: 4, heads: 4, reduction: 4, downsample: 'avgpool' };
  const inC = 8, outC = 16;
  const shapes = new Map<string, number[]>();
  cotShapes(shapes, 'blk', inC, outC, o);
  const params = new Map<string, Tensor>();
  let seed = 1;
  for (const [n, s] of shapes) params.set(n, n.endsWith('running_var') ? tf.ones(s) : tf.randomNormal(s, 0, 0.3, 'float32', seed++));
  const ctx: CotContext = {
    weight: (n) => params.get(n) as Tensor4D, bias: (n) => params.get(n) as Tensor1D,
    norm: (h, n) => batchNormEval(tf, h, params.get(`${n}.weight`) as Tensor1D, params.get(`${n}.bias`) as Tensor1D, params.get(`${n}.running_mean`) as Tensor1D, params.get(`${n}.running_var`) as Tensor1D),
  };
  const x = tf.randomNormal([2, 8, 8, inC], 0, 1, 'float32', 99) as Tensor4D;
  const y = cotForward(tf, x, 'blk', outC, 2, o, ctx);
  assert.deepEqual(y.shape, [2, 4, 4, outC]);
  // Reference pooling by hand: output (i, j) averages input rows 2i-1..2i+1, cols 2j-1..2j+1, zeros outside, over 9.
  const xv = x.arraySync() as number[][][][];
  const pooled: number[][][][] = xv.map((img) => [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => Array.from({ length: inC }, (_, c) => {
    let s = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) { const r = 2 * i + dy, q = 2 * j + dx; if (r >= 0 && q >= 0 && r < 8 && q < 8) s += img[r]![q]![c]!; }
    return s / 9;
  }))));
  const ref = cotForward(tf, tf.tensor4d(pooled), 'blk', outC, 1, { ...o, downsample: 'strided' }, ctx);
  assert.ok(maxAbsDiff(y, ref) < 1e-5, `max |difference| ${maxAbsDiff(y, ref)}`);
  const strided = cotForward(tf, x, 'blk', outC, 2, { ...o, downsample: 'strided' }, ctx);
  assert.ok(maxAbsDiff(y, strided) > 1e-3, 'the option changes the block');
  tf.dispose([x, y, ref, strided, ...params.values()]);
});

test('zero value init: every value.1 filter starts at 0 and becomes non-zero after one training step', async () => {
  const { NTSNet } = await import('../src/model/ntsnet.js');
  const { DEFAULT_MODEL_CONFIG } = await import('../src/model/config.js');
  const cfg = { ...structuredClone(DEFAULT_MODEL_CONFIG), studentBlock: 'cot' as const, imageSize: 32, cot: { ...DEFAULT_MODEL_CONFIG.cot, valueInit: 'zero' as const } };
  const m = NTSNet.create(tf, cfg, 'random', 3);
  const values = [...m.student].filter(([n]) => n.endsWith('.value.1.weight'));
  assert.ok(values.length >= 8);
  for (const [n, v] of values) assert.equal(maxAbs(v), 0, n);
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5) as Tensor4D;
  m.trainStep(x, tf.train.momentum(0.01, 0.9), { weightDecay: 0, lossReduction: 'sum' });
  for (const [n, v] of values) assert.ok(maxAbs(v) > 0, `${n} trained`);
  x.dispose();
  m.dispose();
  assert.throws(() => NTSNet.create(tf, { ...cfg, cot: { ...cfg.cot, downsample: 'nearest' as never } }, 'random', 3), /cot.downsample must be 'strided' or 'avgpool'/);
});
