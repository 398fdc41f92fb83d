/**
 * Degenerate data sets ("Real-world inputs", section "Degenerate sets"): a test set with only normal or only
 * defective images, a single training image, fewer training images than the batch size (BatchNorm over B*H*W with
 * B = 1), and a category without ground_truth/ masks. Everything runs the real CLI on tiny generated MVTec-layout
 * folders (64 px, `--preset tiny`, random teacher), except the BatchNorm check which calls the model directly.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Tensor1D, Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf } from '../src/backend/index.js';
import { batchNormTrain, BN_EPS, type BatchStats } from '../src/model/batchnorm.js';
import { DEFAULT_MODEL_CONFIG } from '../src/model/config.js';
import { NTSNet } from '../src/model/ntsnet.js';
import { makeMvtecCategory, makeTempDir, repoRoot } from './helpers.js';

const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

interface Run { code: number; stdout: string; stderr: string }

/** Runs the CLI; never throws (the exit code is returned). TensorFlow's start-up chatter is removed from stderr. */
function ntsnet(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli(), ...args], { maxBuffer: 1 << 24, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      const clean = stderr.split('\n').filter((l) => !/oneDNN|absl::|cpu_feature_guard|AVX|rebuild TensorFlow/.test(l)).join('\n');
      resolve({ code, stdout, stderr: clean });
    });
  });
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}`);
  return r;
}

/** An MVTec-layout category with `train` normal training images, `good` normal and `defective` defective test images. */
const makeCategory = (root: string, o: { train: number; good: number; defective: number; masks: boolean }): Promise<string> =>
  makeMvtecCategory(root, { ...o, defectAt: (i) => ({ x: 16 + 16 * i, y: 40 }) });

/** Every file below `dir`, relative, sorted (to prove nothing was written into a dataset). */
function listTree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((p) => p.split(path.sep).join('/')).sort();
}

interface Results {
  results: {
    category: string; imageAuroc: number | null; pixelAuroc: number | null; notes: string[];
    counts: { test: number; good: number; defective: number };
    images: { file: string; label: number; score: number }[];
  }[];
  history?: { epoch: number; trainLoss: number; valLoss: number | null }[];
}

const readResults = (dir: string): Results => JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as Results;

/** Per-image scores: one finite number per test image, with the right labels. */
function assertScores(r: Results['results'][number], n: number, label?: number): void {
  assert.equal(r.images.length, n, 'one per-image entry per test image');
  for (const im of r.images) {
    assert.ok(typeof im.score === 'number' && Number.isFinite(im.score), `finite score for ${im.file}: ${im.score}`);
    if (label !== undefined) assert.equal(im.label, label, im.file);
  }
}

/** The single-class checks shared by `fit --test` and `test`. */
function assertSingleClass(run: Run, outDir: string, kind: 'normal' | 'defective', n: number): Results['results'][number] {
  const res = readResults(outDir).results[0]!;
  assert.equal(res.imageAuroc, null, 'image AUROC is null (not 0.5, not NaN) with one class');
  assert.ok(res.notes.some((s) => s.includes('image AUROC undefined') && s.includes(`only ${kind} images`)), `note about the single class: ${JSON.stringify(res.notes)}`);
  assert.match(run.stderr, new RegExp(`warning: .*image AUROC undefined: the test set has only ${kind} images`), `warning on stderr:\n${run.stderr}`);
  const md = readFileSync(path.join(outDir, 'metrics.md'), 'utf8');
  assert.match(md, new RegExp(`- warning: .*image AUROC undefined: the test set has only ${kind} images`), `warning in metrics.md:\n${md}`);
  assert.match(md, /\| n\/a \|/, 'the table shows n/a');
  assert.match(run.stdout, /\| n\/a \|/);
  assertScores(res, n, kind === 'normal' ? 0 : 1);
  return res;
}

test('only normal test images: fit --test and test finish; image AUROC null with a warning (stderr + metrics.md); scores written', { timeout: 90_000 }, async () => {
  const tmp = makeTempDir('degen');
  const data = await makeCategory(path.join(tmp, 'onlygood'), { train: 5, good: 3, defective: 0, masks: false });
  const before = listTree(data);
  const run = path.join(tmp, 'run');
  const fit = ok(await ntsnet(['fit', '--data', data, '--out', run, '--preset', 'tiny', '--test']), 'fit --test');
  const r1 = assertSingleClass(fit, run, 'normal', 3);
  assert.equal(r1.pixelAuroc, null, 'no defective pixel: pixel AUROC null');
  assert.ok(r1.notes.some((s) => s.startsWith('pixel AUROC undefined')), JSON.stringify(r1.notes));

  const out = path.join(tmp, 'test-out');
  const t = ok(await ntsnet(['test', '--checkpoint', run, '--data', data, '--out', out]), 'test');
  const r2 = assertSingleClass(t, out, 'normal', 3);
  assert.deepEqual(r2.images.map((i) => i.score), r1.images.map((i) => i.score), 'fit --test and test give the same scores');
  assert.deepEqual(listTree(data), before, 'nothing written into the dataset');
});

test('only defective test images (with masks): image AUROC null with a warning; pixel AUROC still computed', { timeout: 90_000 }, async () => {
  const tmp = makeTempDir('degen');
  const data = await makeCategory(path.join(tmp, 'onlybad'), { train: 5, good: 0, defective: 3, masks: true });
  const run = path.join(tmp, 'run');
  const fit = ok(await ntsnet(['fit', '--data', data, '--out', run, '--preset', 'tiny', '--test']), 'fit --test');
  const r1 = assertSingleClass(fit, run, 'defective', 3);
  assert.ok(typeof r1.pixelAuroc === 'number' && r1.pixelAuroc >= 0 && r1.pixelAuroc <= 1, `pixel AUROC ${r1.pixelAuroc}`);

  const out = path.join(tmp, 'test-out');
  const t = ok(await ntsnet(['test', '--checkpoint', run, '--data', data, '--out', out]), 'test');
  const r2 = assertSingleClass(t, out, 'defective', 3);
  assert.equal(r2.pixelAuroc, r1.pixelAuroc);
});

test('a single training image: fit refuses it like data check (at least 2, BatchNorm); without --val-fraction 0 the hold-out error says why', { timeout: 90_000 }, async () => {
  const tmp = makeTempDir('degen');
  const data = await makeCategory(path.join(tmp, 'one'), { train: 1, good: 2, defective: 2, masks: true });
  const refused = await ntsnet(['fit', '--data', data, '--out', path.join(tmp, 'refused'), '--preset', 'tiny']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /Only 1 normal training image\(s\): a validation image cannot be held out and training needs at least 2/);
  assert.ok(!existsSync(path.join(tmp, 'refused', 'model.safetensors')));
  // Issue 13 item 7: `data check` says "needs at least 2"; fit used to train anyway. Both now give the same error.
  const one = await ntsnet(['fit', '--data', data, '--out', path.join(tmp, 'run'), '--preset', 'tiny', '--val-fraction', '0']);
  assert.notEqual(one.code, 0);
  assert.match(one.stderr, /Only 1 training image\(s\): training needs at least 2 \(BatchNorm\)/);
  assert.ok(!existsSync(path.join(tmp, 'run', 'model.safetensors')));
});

test('fewer training images than the batch size: fit works (one smaller batch per epoch)', { timeout: 90_000 }, async () => {
  const tmp = makeTempDir('degen');
  const data = await makeCategory(path.join(tmp, 'few'), { train: 3, good: 2, defective: 2, masks: true });
  const run = path.join(tmp, 'run');
  const fit = ok(await ntsnet(['fit', '--data', data, '--out', run, '--preset', 'tiny', '--batch-size', '8', '--test']), 'fit');
  assert.match(fit.stderr, /only 2 training image\(s\), fewer than the batch size 8/);
  const res = readResults(run);
  assert.equal(res.history!.length, 2);
  for (const h of res.history!) assert.ok(Number.isFinite(h.trainLoss) && Number.isFinite(h.valLoss!), JSON.stringify(h));
  assertScores(res.results[0]!, 4);
});

test('BatchNorm statistics over B*H*W: a batch of one image gives the right mean and biased variance, and trains', () => {
  const tf = loadTf();
  // 1 image of 2x2 pixels and 3 channels: 4 values per channel (the smallest map at 32 px is layer3's 2x2).
  const vals = [1, 2, 3, 4, 10, -2, 0.5, 7, -3, 3, 3, 8];
  const x = tf.tensor4d(vals, [1, 2, 2, 3]);
  const gamma = tf.tensor1d([1, 2, 0.5]), beta = tf.tensor1d([0, 1, -1]);
  const stats: BatchStats[] = [];
  const y = batchNormTrain(tf, x, gamma as Tensor1D, beta as Tensor1D, 'bn', stats);
  try {
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.count, 4, 'statistics over B*H*W = 1*2*2 values');
    const mean = stats[0]!.mean.dataSync(), variance = stats[0]!.variance.dataSync(), out = y.dataSync();
    for (let c = 0; c < 3; c++) {
      const v = [0, 1, 2, 3].map((p) => vals[p * 3 + c]!);
      const m = v.reduce((a, b) => a + b, 0) / 4;
      const bv = v.reduce((a, b) => a + (b - m) ** 2, 0) / 4;
      assert.ok(Math.abs(mean[c]! - m) < 1e-5, `channel ${c} mean ${mean[c]} vs ${m}`);
      assert.ok(Math.abs(variance[c]! - bv) < 1e-4 * Math.max(1, bv), `channel ${c} biased variance ${variance[c]} vs ${bv}`);
      const g = [1, 2, 0.5][c]!, b = [0, 1, -1][c]!;
      for (let p = 0; p < 4; p++) {
        const want = ((v[p]! - m) / Math.sqrt(bv + BN_EPS)) * g + b;
        assert.ok(Math.abs(out[p * 3 + c]! - want) < 1e-4, `y[${p},${c}] ${out[p * 3 + c]} vs ${want}`);
      }
    }
  } finally {
    for (const t of [x, gamma, beta, y, ...stats.flatMap((s) => [s.mean, s.variance])]) t.dispose();
  }

  // A whole training step on a batch of one 32 px image (layer3 is 2x2): finite loss, finite statistics that moved.
  const net = NTSNet.create(tf, { ...DEFAULT_MODEL_CONFIG, imageSize: 32 }, 'random', 3);
  const opt = tf.train.momentum(0.01, 0.9);
  const img = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 11) as Tensor4D;
  try {
    const rv = net.student.get('layer3.1.bn2.running_var')!;
    const before = Array.from(rv.dataSync());
    for (let i = 0; i < 2; i++) assert.ok(Number.isFinite(net.trainStep(img, opt, { weightDecay: 1e-4, lossReduction: 'sum' })), 'finite loss with B = 1');
    const after = Array.from(rv.dataSync());
    assert.ok(after.every((v) => Number.isFinite(v) && v > 0), 'running variance finite and positive');
    assert.notDeepEqual(after, before, 'running statistics were updated from the batch of one');
    const p = net.predict(img);
    assert.ok(p.maps.dataSync().every(Number.isFinite) && p.scores.dataSync().every(Number.isFinite), 'finite anomaly map');
    p.maps.dispose(); p.scores.dispose();
  } finally {
    img.dispose(); opt.dispose(); net.dispose();
  }
});

test('no ground_truth/ folder: pixel AUROC null with a note and a warning; image AUROC computed', { timeout: 90_000 }, async () => {
  const tmp = makeTempDir('degen');
  const data = await makeCategory(path.join(tmp, 'nogt'), { train: 4, good: 3, defective: 3, masks: false });
  assert.ok(!existsSync(path.join(data, 'ground_truth')));
  const run = path.join(tmp, 'run');
  const fit = ok(await ntsnet(['fit', '--data', data, '--out', run, '--preset', 'tiny', '--epochs', '1', '--test']), 'fit --test');
  for (const [r, outDir] of [[fit, run], [ok(await ntsnet(['test', '--checkpoint', run, '--data', data, '--out', path.join(tmp, 'o')]), 'test'), path.join(tmp, 'o')]] as const) {
    const res = readResults(outDir).results[0]!;
    assert.ok(typeof res.imageAuroc === 'number' && res.imageAuroc >= 0 && res.imageAuroc <= 1, `image AUROC computed: ${res.imageAuroc}`);
    assert.equal(res.pixelAuroc, null);
    assert.ok(res.notes.some((n) => /pixel AUROC not available: 3 defective image\(s\) have no mask \(e\.g\. test\/spot\/000\.png\)/.test(n)), JSON.stringify(res.notes));
    assert.match(r.stderr, /warning: nogt: pixel AUROC not available/);
    assert.match(readFileSync(path.join(outDir, 'metrics.md'), 'utf8'), /\| nogt \| \d+\.\d \| n\/a \|[\s\S]*- warning: nogt: pixel AUROC not available/);
    assertScores(res, 6);
  }
});
