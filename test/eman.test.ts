/**
 * EMAN (paper eq. 6-7): emanUpdate by hand, the pairing rule, the student's running statistics, the teacher update
 * inside NTSNet.trainStep ('eman' vs 'frozen_bn'), and the fused training BatchNorm against tf.moments + tf.batchNorm.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Tensor, Tensor1D, Tensor4D, Variable } from '@tensorflow/tfjs-node';
import { loadTf, type Tf } from '../src/backend/index.js';
import { BN_EPS, batchNormTrain, type BatchStats } from '../src/model/batchnorm.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../src/model/config.js';
import { bnScale, emanMomentumAt, emanPairs, emanUpdate, updateRunningStats } from '../src/model/eman.js';
import { validateModelConfig } from '../src/model/config.js';
import { isRunningStat, studentForward } from '../src/model/networks.js';
import { NTSNet } from '../src/model/ntsnet.js';
import { disposeParams, type ParamMap } from '../src/model/params.js';
import { maxAbs, maxAbsDiff } from './model_helpers.js';

let tf: Tf;
before(() => { tf = loadTf(); });

const M = 0.99;

function bnVars(p: ParamMap, name: string, w: number[], b: number[], rm: number[], rv: number[]): void {
  p.set(`${name}.weight`, tf.variable(tf.tensor1d(w), false));
  p.set(`${name}.bias`, tf.variable(tf.tensor1d(b), false));
  p.set(`${name}.running_mean`, tf.variable(tf.tensor1d(rm), false));
  p.set(`${name}.running_var`, tf.variable(tf.tensor1d(rv), false));
}

function stat(name: string, mean: number[], variance: number[], count = 10): BatchStats {
  return { name, mean: tf.tensor1d(mean), variance: tf.tensor1d(variance), count };
}

const arr = (t: Tensor): number[] => Array.from(t.dataSync());
const ema = (m: number, t: number[], s: number[]): number[] => t.map((v, i) => m * v + (1 - m) * s[i]!);

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(got, want);
  assert.ok(d <= tol, `${what}: max abs diff ${d} > ${tol} (got ${Array.from(got).slice(0, 6)}, want ${Array.from(want).slice(0, 6)})`);
}

describe('emanUpdate / emanPairs (hand-computed eq. 6-7)', () => {
  function setup(): { teacher: ParamMap; stats: BatchStats[]; before: Map<string, number[]> } {
    const teacher: ParamMap = new Map();
    bnVars(teacher, 'bn1', [1.5, 0.5, 2], [0.1, -0.2, 0.3], [0.5, -1, 2], [1, 2, 0.5]);
    bnVars(teacher, 'layer2.0.downsample.1', [1, 1], [0, 0], [3, -3], [4, 0.25]);
    bnVars(teacher, 'layer1.0.bn1', [1, 1, 1, 1], [0, 0, 0, 0], [1, 2, 3, 4], [1, 1, 1, 1]); // student twin has 2 channels
    bnVars(teacher, 'layer3.1.bn2', [1, 2], [3, 4], [5, 6], [7, 8]); // no student twin
    const stats = [
      stat('bn1', [1, 2, 3], [0.25, 4, 1]),
      stat('layer1.0.conv1.key.bn', [9, 9, 9, 9], [9, 9, 9, 9]), // CoT-internal: no teacher twin
      stat('layer1.0.bn1', [7, 7], [7, 7]), // channel count differs from the teacher's
      stat('layer2.0.downsample.1', [-1, 1], [2, 3]),
    ];
    const before = new Map([...teacher].map(([n, v]) => [n, arr(v)]));
    return { teacher, stats, before };
  }
  const cleanup = (teacher: ParamMap, stats: BatchStats[]) => {
    disposeParams(teacher);
    for (const s of stats) { s.mean.dispose(); s.variance.dispose(); }
  };

  test('pairing rule: same path and same channel count; CoT key.bn and unmatched teacher BNs unpaired', () => {
    const { teacher, stats } = setup();
    assert.deepEqual(emanPairs(teacher, stats).map((s) => s.name), ['bn1', 'layer2.0.downsample.1']);
    cleanup(teacher, stats);
  });

  test('running mean/var follow eq. 6-7 with m = 0.99; affine and unpaired BNs untouched', () => {
    const { teacher, stats, before } = setup();
    const n0 = tf.memory().numTensors;
    assert.equal(emanUpdate(tf, teacher, stats, M), 2);
    assert.equal(tf.memory().numTensors, n0, 'emanUpdate must not leak tensors');
    const want = new Map(before);
    want.set('bn1.running_mean', ema(M, before.get('bn1.running_mean')!, [1, 2, 3]));
    want.set('bn1.running_var', ema(M, before.get('bn1.running_var')!, [0.25, 4, 1]));
    want.set('layer2.0.downsample.1.running_mean', ema(M, before.get('layer2.0.downsample.1.running_mean')!, [-1, 1]));
    want.set('layer2.0.downsample.1.running_var', ema(M, before.get('layer2.0.downsample.1.running_var')!, [2, 3]));
    // e.g. bn1.running_mean[0] = 0.99 * 0.5 + 0.01 * 1 = 0.505
    assertClose(arr(teacher.get('bn1.running_mean')!).slice(0, 1), [0.505], 1e-6, 'bn1.running_mean[0]');
    for (const [n, v] of teacher) {
      if (!isRunningStat(n) || n.startsWith('layer1.0.bn1') || n.startsWith('layer3.1.bn2')) assert.deepEqual(arr(v), before.get(n), `${n} must not change`);
      else assertClose(v.dataSync(), want.get(n)!, 1e-6, n);
    }
    // A second step compounds: mu <- m (m mu0 + (1-m) mu_S) + (1-m) mu_S.
    emanUpdate(tf, teacher, stats, M);
    assertClose(teacher.get('bn1.running_var')!.dataSync(), ema(M, want.get('bn1.running_var')!, [0.25, 4, 1]), 1e-6, 'second update');
    cleanup(teacher, stats);
  });

  test('m = 0 copies the student statistics', () => {
    const { teacher, stats } = setup();
    emanUpdate(tf, teacher, stats, 0);
    assertClose(teacher.get('bn1.running_mean')!.dataSync(), [1, 2, 3], 1e-7, 'mean');
    assertClose(teacher.get('bn1.running_var')!.dataSync(), [0.25, 4, 1], 1e-7, 'var');
    cleanup(teacher, stats);
  });

  test("updateRunningStats: the student's own statistics use momentum 0.1 and the unbiased variance", () => {
    const student: ParamMap = new Map();
    bnVars(student, 'bn1', [1, 1], [0, 0], [1, -1], [2, 0.5]);
    const stats = [stat('bn1', [3, 5], [0.9, 1.8], 10), stat('nope', [1], [1], 10)];
    updateRunningStats(tf, student, stats);
    assertClose(student.get('bn1.running_mean')!.dataSync(), [0.9 * 1 + 0.1 * 3, 0.9 * -1 + 0.1 * 5], 1e-6, 'mean');
    assertClose(student.get('bn1.running_var')!.dataSync(), [0.9 * 2 + 0.1 * 1.0, 0.9 * 0.5 + 0.1 * 2.0], 1e-6, 'var');
    assert.deepEqual(arr(student.get('bn1.weight')!), [1, 1]);
    disposeParams(student);
    for (const s of stats) { s.mean.dispose(); s.variance.dispose(); }
  });
});

describe('teacher statistics inside NTSNet.trainStep', () => {
  // The paper's configuration (CoT student, literal EMAN), whatever the shipped default is.
  const base: ModelConfig = { ...DEFAULT_MODEL_CONFIG, imageSize: 32, studentBlock: 'cot', teacherNorm: 'eman' };

  /** Gives the teacher's running statistics non-trivial values (initParams sets 0 / 1). */
  function perturbTeacher(net: NTSNet): void {
    let i = 0;
    for (const [n, v] of net.teacher) {
      if (!isRunningStat(n)) continue;
      i++;
      const t = n.endsWith('running_mean') ? tf.randomNormal(v.shape, 0, 0.3, 'float32', 100 + i) : tf.randomUniform(v.shape, 0.5, 2, 'float32', 100 + i);
      v.assign(t);
      t.dispose();
    }
  }
  const snapshot = (p: ParamMap): Map<string, Float32Array> => new Map([...p].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
  function cloneParams(p: ParamMap): ParamMap {
    return new Map([...p].map(([n, v]) => [n, tf.variable(v.clone() as Tensor, false)] as [string, Variable]));
  }

  function run(cfg: ModelConfig): { net: NTSNet; t0: Map<string, Float32Array>; s0: Map<string, Float32Array>; stats: BatchStats[]; bn1: { mean: number[]; variance: number[]; count: number } } {
    const net = NTSNet.create(tf, cfg, 'random', 3);
    perturbTeacher(net);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 11) as Tensor4D;
    const t0 = snapshot(net.teacher);
    const s0 = snapshot(net.student);
    // The student's batch statistics of this step, from a copy of its pre-step weights.
    const copy = cloneParams(net.student);
    const stats: BatchStats[] = [];
    tf.tidy(() => { studentForward(tf, copy, x, cfg, true, stats); });
    // bn1 from first principles: the stem conv (7x7, stride 2, symmetric pad 3) and the biased moments.
    const bn1 = tf.tidy(() => {
      const c1 = tf.conv2d(tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]), copy.get('conv1.weight') as unknown as Tensor4D, 2, 'valid');
      const { mean, variance } = tf.moments(c1, [0, 1, 2]);
      return { mean: arr(mean), variance: arr(variance), count: c1.shape[0] * c1.shape[1] * c1.shape[2] };
    });
    disposeParams(copy);
    const opt = tf.train.sgd(0.01);
    const loss = net.trainStep(x, opt, { weightDecay: 1e-4, lossReduction: 'sum' });
    assert.ok(Number.isFinite(loss) && loss > 0);
    opt.dispose();
    x.dispose();
    return { net, t0, s0, stats, bn1 };
  }
  const release = (r: { net: NTSNet; stats: BatchStats[] }) => {
    r.net.dispose();
    for (const s of r.stats) { s.mean.dispose(); s.variance.dispose(); }
  };

  test("'eman': every teacher BN moved by eq. 6-7 with the student's batch statistics; nothing else moved", () => {
    const r = run(base);
    const { net, t0, s0, stats, bn1 } = r;
    const s = stats.find((q) => q.name === 'bn1')!;
    assert.equal(s.count, bn1.count);
    assert.equal(bn1.count, 2 * 16 * 16);
    const dMean = maxAbsDiff(s.mean, bn1.mean), dVar = maxAbsDiff(s.variance, bn1.variance);
    console.log(`bn1 batch stats, fused kernel vs tf.moments of the stem conv: mean ${dMean.toExponential(3)}, biased var ${dVar.toExponential(3)}`);
    assert.ok(dMean < 1e-5 * Math.max(1, maxAbs(bn1.mean)) && dVar < 1e-5 * Math.max(1, maxAbs(bn1.variance)));
    // Teacher bn1 from first principles.
    assertClose(net.teacher.get('bn1.running_mean')!.dataSync(), ema(M, Array.from(t0.get('bn1.running_mean')!), bn1.mean), 1e-5, 'teacher bn1.running_mean');
    assertClose(net.teacher.get('bn1.running_var')!.dataSync(), ema(M, Array.from(t0.get('bn1.running_var')!), bn1.variance), 1e-5, 'teacher bn1.running_var');
    // Every teacher BN is paired (same depth) and moved; CoT key.bn statistics have no teacher twin.
    const paired = new Set(emanPairs(net.teacher, stats).map((q) => q.name));
    const teacherBns = [...net.teacher.keys()].filter((n) => n.endsWith('.running_mean')).map((n) => n.slice(0, -'.running_mean'.length));
    assert.deepEqual([...paired].sort(), [...teacherBns].sort());
    const keyBns = stats.filter((q) => q.name.endsWith('.key.bn'));
    assert.ok(keyBns.length > 0 && keyBns.every((q) => !paired.has(q.name)));
    let worst = 0;
    for (const q of stats) {
      if (!paired.has(q.name)) continue;
      for (const [suffix, v] of [['running_mean', q.mean], ['running_var', q.variance]] as const) {
        const n = `${q.name}.${suffix}`;
        const want = ema(M, Array.from(t0.get(n)!), arr(v));
        const d = maxAbsDiff(net.teacher.get(n)!.dataSync(), want);
        worst = Math.max(worst, d / Math.max(1, maxAbs(want)));
      }
    }
    console.log(`teacher EMAN update after trainStep, all ${paired.size} BNs: max relative diff ${worst.toExponential(3)}`);
    assert.ok(worst < 1e-5);
    for (const [n, v] of net.teacher) if (!isRunningStat(n)) assert.deepEqual(v.dataSync(), t0.get(n), `teacher ${n} must not change`);
    // The student's own running statistics (PyTorch momentum 0.1, unbiased variance).
    const cnt = bn1.count;
    assertClose(net.student.get('bn1.running_mean')!.dataSync(), bn1.mean.map((m, i) => 0.9 * s0.get('bn1.running_mean')![i]! + 0.1 * m), 1e-5, 'student bn1.running_mean');
    assertClose(net.student.get('bn1.running_var')!.dataSync(), bn1.variance.map((v, i) => 0.9 * s0.get('bn1.running_var')![i]! + 0.1 * v * cnt / (cnt - 1)), 1e-5, 'student bn1.running_var');
    // The student's trainable weights did move.
    assert.ok(maxAbsDiff(net.student.get('conv1.weight')!, s0.get('conv1.weight')!) > 0);
    release(r);
  });

  test("'frozen_bn': the teacher does not change at all", () => {
    const r = run({ ...base, teacherNorm: 'frozen_bn' });
    for (const [n, v] of r.net.teacher) assert.deepEqual(v.dataSync(), r.t0.get(n), `teacher ${n} must not change`);
    assert.ok(maxAbsDiff(r.net.student.get('bn1.running_mean')!, r.s0.get('bn1.running_mean')!) > 0, 'student running stats still update');
    release(r);
  });

  test("'self_ema': teacher BNs follow the teacher's OWN batch statistics (bn1 from first principles); affine untouched", () => {
    const cfg: ModelConfig = { ...base, teacherNorm: 'self_ema' };
    const net = NTSNet.create(tf, cfg, 'random', 3);
    perturbTeacher(net);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 11) as Tensor4D;
    const t0 = snapshot(net.teacher);
    const own = tf.tidy(() => {
      const c1 = tf.conv2d(tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]), net.teacher.get('conv1.weight') as unknown as Tensor4D, 2, 'valid');
      const { mean, variance } = tf.moments(c1, [0, 1, 2]);
      return { mean: arr(mean), variance: arr(variance) };
    });
    const opt = tf.train.sgd(0.01);
    net.trainStep(x, opt, { weightDecay: 0, lossReduction: 'sum' });
    assertClose(net.teacher.get('bn1.running_mean')!.dataSync(), ema(M, Array.from(t0.get('bn1.running_mean')!), own.mean), 1e-5, 'teacher bn1.running_mean');
    assertClose(net.teacher.get('bn1.running_var')!.dataSync(), ema(M, Array.from(t0.get('bn1.running_var')!), own.variance), 1e-5, 'teacher bn1.running_var');
    const bns = [...net.teacher.keys()].filter((n) => isRunningStat(n));
    assert.ok(bns.every((n) => maxAbsDiff(net.teacher.get(n)!, t0.get(n)!) > 0), 'every teacher BN moved');
    for (const [n, v] of net.teacher) if (!isRunningStat(n)) assert.deepEqual(v.dataSync(), t0.get(n), `teacher ${n} must not change`);
    opt.dispose(); x.dispose(); net.dispose();
  });

  test("'self_ema' with emanScales [3]: only layer3's teacher BatchNorms move; the stem, layer1 and layer2 keep theirs", () => {
    const net = NTSNet.create(tf, { ...base, teacherNorm: 'self_ema', emanScales: [3] }, 'random', 3);
    perturbTeacher(net);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 11) as Tensor4D;
    const t0 = snapshot(net.teacher);
    const opt = tf.train.sgd(0.01);
    net.trainStep(x, opt, { weightDecay: 0, lossReduction: 'sum' });
    const bns = [...net.teacher.keys()].filter((n) => isRunningStat(n));
    const moved = (n: string): boolean => maxAbsDiff(net.teacher.get(n)!, t0.get(n)!) > 0;
    assert.ok(bns.some((n) => n.startsWith('layer3.')), 'the teacher has layer3 BatchNorms');
    for (const n of bns) assert.equal(moved(n), n.startsWith('layer3.'), `${n} ${n.startsWith('layer3.') ? 'must move' : 'must keep its statistics'}`);
    opt.dispose(); x.dispose(); net.dispose();
  });

  test("'self_ema' with the cosine schedule: momentum m at the start, the statistics frozen at the end of training", () => {
    assert.equal(emanMomentumAt(M, 'cosine', 0), M);
    assert.equal(emanMomentumAt(M, 'cosine', 1), 1);
    assert.ok(Math.abs(emanMomentumAt(M, 'cosine', 0.5) - (1 - (1 - M) / 2)) < 1e-12, 'halfway: 1 - (1 - m) / 2');
    assert.equal(emanMomentumAt(M, 'constant', 0.7), M);
    assert.equal(emanMomentumAt(M, undefined, 0.7), M);
    const cfg: ModelConfig = { ...base, teacherNorm: 'self_ema', emanSchedule: 'cosine' };
    for (const [progress, shouldMove] of [[0, true], [1, false]] as const) {
      const net = NTSNet.create(tf, cfg, 'random', 3);
      perturbTeacher(net);
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 11) as Tensor4D;
      const t0 = snapshot(net.teacher);
      const opt = tf.train.sgd(0.01);
      net.trainStep(x, opt, { weightDecay: 0, lossReduction: 'sum', progress });
      assert.equal(maxAbsDiff(net.teacher.get('bn1.running_mean')!, t0.get('bn1.running_mean')!) > 0, shouldMove, `progress ${progress}: bn1 ${shouldMove ? 'moves' : 'is frozen'}`);
      opt.dispose(); x.dispose(); net.dispose();
    }
  });

  test('bnScale and the config checks of emanSchedule / emanScales', () => {
    assert.deepEqual(['bn1', 'layer1.0.bn2', 'layer2.0.downsample.1', 'layer3.1.bn1'].map(bnScale), [1, 1, 2, 3]);
    assert.throws(() => validateModelConfig({ ...base, teacherNorm: 'frozen_bn', emanSchedule: 'cosine' }), /only apply to teacherNorm/);
    assert.throws(() => validateModelConfig({ ...base, teacherNorm: 'self_ema', emanScales: [4 as 3] }), /emanScales must be/);
    assert.throws(() => validateModelConfig({ ...base, teacherNorm: 'self_ema', emanSchedule: 'linear' as 'cosine' }), /emanSchedule must be/);
    validateModelConfig({ ...base, teacherNorm: 'self_ema', emanSchedule: 'cosine', emanScales: [2, 3] });
  });

  test("'eman' with a deeper teacher (34 vs 18): teacher BNs without a student twin keep their statistics", () => {
    const r = run({ ...base, teacherDepth: 34, studentDepth: 18, studentBlock: 'basic' });
    const moved = (n: string) => maxAbsDiff(r.net.teacher.get(n)!, r.t0.get(n)!) > 0;
    for (const n of ['layer1.2.bn1', 'layer2.3.bn2', 'layer3.5.bn1']) {
      assert.ok(!moved(`${n}.running_mean`) && !moved(`${n}.running_var`), `${n} has no student twin and must keep its statistics`);
    }
    for (const n of ['bn1', 'layer1.1.bn2', 'layer3.0.downsample.1']) assert.ok(moved(`${n}.running_mean`) && moved(`${n}.running_var`), `${n} must move`);
    release(r);
  });
});

describe('fused batchNormTrain vs tf.moments + tf.batchNorm', () => {
  test('the native fused kernel is the one under test', () => {
    assert.equal(tf.getBackend(), 'tensorflow');
  });

  test('hand example: mean 2 and biased variance 1 of [1, 3]', () => {
    const stats: BatchStats[] = [];
    const x = tf.tensor4d([1, 3], [2, 1, 1, 1]);
    const y = batchNormTrain(tf, x, tf.ones([1]) as Tensor1D, tf.zeros([1]) as Tensor1D, 'h', stats);
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.name, 'h');
    assert.equal(stats[0]!.count, 2);
    assertClose(stats[0]!.mean.dataSync(), [2], 1e-7, 'mean');
    assertClose(stats[0]!.variance.dataSync(), [1], 1e-7, 'biased variance');
    const e = 1 / Math.sqrt(1 + BN_EPS);
    assertClose(y.dataSync(), [-e, e], 1e-6, 'normalised');
    tf.dispose([x, y, stats[0]!.mean, stats[0]!.variance]);
  });

  test('values, statistics and gradients (x, gamma, beta) agree', () => {
    const x = tf.add(tf.mul(tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 1), 2), 0.5) as Tensor4D;
    const g = tf.randomUniform([6], 0.5, 1.5, 'float32', 2) as Tensor1D;
    const b = tf.randomNormal([6], 0, 0.5, 'float32', 3) as Tensor1D;
    const r = tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 4);
    const stats: BatchStats[] = [];
    const fused = (xi: Tensor4D, gi: Tensor1D, bi: Tensor1D) => batchNormTrain(tf, xi, gi, bi, 'f', stats);
    const composite = (xi: Tensor4D, gi: Tensor1D, bi: Tensor1D) => {
      const { mean, variance } = tf.moments(xi, [0, 1, 2]);
      return tf.batchNorm4d(xi, mean as Tensor1D, variance as Tensor1D, bi, gi, BN_EPS);
    };
    const yf = fused(x, g, b);
    const yc = composite(x, g, b);
    const dy = maxAbsDiff(yf, yc);
    const mc = tf.moments(x, [0, 1, 2]);
    const dm = maxAbsDiff(stats[0]!.mean, mc.mean), dv = maxAbsDiff(stats[0]!.variance, mc.variance);
    assert.equal(stats[0]!.count, 3 * 5 * 4);
    const loss = (f: typeof fused) => (xi: Tensor, gi: Tensor, bi: Tensor) => tf.sum(tf.mul(f(xi as Tensor4D, gi as Tensor1D, bi as Tensor1D), r));
    const gf = tf.grads(loss(fused))([x, g, b]);
    const gc = tf.grads(loss(composite))([x, g, b]);
    const dg = gf.map((t, i) => maxAbsDiff(t, gc[i]!));
    console.log(`fused BN vs composite: y ${dy.toExponential(3)}, mean ${dm.toExponential(3)}, var ${dv.toExponential(3)}, ` +
      `dx ${dg[0]!.toExponential(3)}, dgamma ${dg[1]!.toExponential(3)}, dbeta ${dg[2]!.toExponential(3)}`);
    assert.ok(dy < 1e-5 && dm < 1e-5 && dv < 1e-5);
    gf.forEach((t, i) => assert.ok(dg[i]! < 1e-4 * Math.max(1, maxAbs(gc[i]!)), `gradient ${i}: ${dg[i]}`));
    // The gradient of sum(y) w.r.t. x vanishes for training-mode BN (mean subtraction), and d/dbeta = count.
    const [g1x, , g1b] = tf.grads((xi: Tensor, gi: Tensor, bi: Tensor) => tf.sum(fused(xi as Tensor4D, gi as Tensor1D, bi as Tensor1D)))([x, g, b]);
    assert.ok(maxAbs(g1x!) < 1e-4);
    assertClose(g1b!.dataSync(), new Array(6).fill(60), 1e-4, 'dbeta');
    tf.dispose([x, g, b, r, yf, yc, mc.mean, mc.variance, ...gf, ...gc, g1x!, g1b!]);
    for (const s of stats) tf.dispose([s.mean, s.variance]);
  });
});
