import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { resolveBenchDatasets } from '../src/bench/datasets.js';
import { runSpeedJob } from '../src/bench/jobs.js';
import { DEFAULT_PEER_PYTHON, benchTeacher, writeBenchTeacher } from '../src/bench/peers.js';
import { variantsFor } from '../src/bench/plan.js';
import { epochsFor, protocol } from '../src/bench/protocol.js';
import { perLayerMaps, variantMaps } from '../src/bench/variants.js';
import { DEFAULT_MODEL_CONFIG } from '../src/model/config.js';
import { NTSNet } from '../src/model/ntsnet.js';
import { paramsToRaw, torchToTfLayout } from '../src/model/params.js';
import { readSafetensors } from '../src/model/weights/safetensors.js';
import { makeMvtecCategory, makeTempDir, repoRoot, writeStripedImage, writeSquareMask } from './helpers.js';

const tf = loadTf();
const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

test('variantMaps of the model\'s own setting reproduce NTSNet.predict (sum and product fusion, cot and basic)', () => {
  for (const [studentBlock, fusion, sigma] of [['cot', 'sum', 4], ['basic', 'product', 2]] as const) {
    const cfg = { ...DEFAULT_MODEL_CONFIG, imageSize: 64, studentBlock, fusion, sigma };
    const model = NTSNet.create(tf, cfg, 'random', 3);
    const x = tf.randomNormal([5, 64, 64, 3], 0, 1, 'float32', 11) as import('@tensorflow/tfjs-node').Tensor4D;
    const images = Array.from({ length: 5 }, (_, i) => x.slice([i, 0, 0, 0], [1, 64, 64, 3]).dataSync() as Float32Array);
    const p = model.predict(x);
    const lm = perLayerMaps(tf, model, { size: 64, images }, 2);
    const v = variantsFor(cfg, true)[0]!;
    assert.deepEqual([v.layers, v.fusion, v.sigma], [[1, 2, 3], fusion, sigma]);
    const got = variantMaps(tf, lm, v, 3);
    const maps = p.maps.dataSync(), scores = p.scores.dataSync();
    let d = 0;
    for (let i = 0; i < maps.length; i++) d = Math.max(d, Math.abs(maps[i]! - got.maps[i]!) / (Math.abs(maps[i]!) + 1e-6));
    assert.ok(d < 1e-4, `${studentBlock}/${fusion}: max relative map difference ${d}`);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(scores[i]! - got.scores[i]!) <= 1e-5 * Math.abs(scores[i]!), `score ${i}`);
    p.maps.dispose(); p.scores.dispose(); x.dispose(); model.dispose();
  }
});

test('variantsFor: own setting first, 7 layer subsets, the other fusion, the sigma sweep, no duplicates', () => {
  const v = variantsFor(DEFAULT_MODEL_CONFIG, true).map((x) => x.name);
  assert.equal(v[0], 'L123-sum-s4');
  assert.equal(new Set(v).size, v.length);
  for (const n of ['L1-sum-s4', 'L2-sum-s4', 'L3-sum-s4', 'L12-sum-s4', 'L13-sum-s4', 'L23-sum-s4', 'L123-product-s4', 'L123-sum-s0', 'L123-sum-s2', 'L123-sum-s8']) assert.ok(v.includes(n), n);
  assert.equal(v.length, 11);
  // A model trained on layers {2,3} cannot be evaluated on layer 1.
  assert.ok(variantsFor({ layers: [2, 3], fusion: 'sum', sigma: 4 }, true).every((x) => !x.layers.includes(1)));
});

test('cpu protocol gives every dataset about 400 optimiser steps; paper keeps 200 epochs', () => {
  const cpu = protocol('cpu');
  assert.equal(epochsFor(cpu, 188), 34); // bottle: 12 batches of 16
  assert.equal(epochsFor(cpu, 667), 10); // Magnetic Tile: 42 batches
  assert.equal(epochsFor(cpu, 5), 50); // capped at the preset's 50 epochs
  assert.equal(epochsFor(protocol('paper'), 188), 200);
  assert.throws(() => protocol('gpu'), /Unknown protocol 'gpu'/);
});

test('resolveBenchDatasets: MVTec category, MVTec root (one per category), Magnetic Tile root, and a clear error otherwise', async () => {
  const tmp = makeTempDir('benchds');
  const root = path.join(tmp, 'mvtec');
  await makeMvtecCategory(path.join(root, 'aaa'), { train: 2, good: 1, defective: 1 });
  await makeMvtecCategory(path.join(root, 'bbb'), { train: 2, good: 1, defective: 1 });
  assert.deepEqual((await resolveBenchDatasets(path.join(root, 'aaa'), 1)).map((d) => d.id), ['aaa']);
  assert.deepEqual((await resolveBenchDatasets(root, 1)).map((d) => d.id), ['aaa', 'bbb']);
  const mt = path.join(tmp, 'magnetic_tile');
  for (const [dir, n, defect] of [['MT_Free', 4, false], ['MT_Crack', 2, true]] as const) {
    mkdirSync(path.join(mt, dir, 'Imgs'), { recursive: true });
    for (let i = 0; i < n; i++) {
      await writeStripedImage(path.join(mt, dir, 'Imgs', `exp${i}.jpg`), i, defect ? { defect: { x: 20, y: 20 } } : {});
      if (defect) await writeSquareMask(path.join(mt, dir, 'Imgs', `exp${i}.png`), { x: 20, y: 20 });
    }
  }
  const [d] = await resolveBenchDatasets(mt, 42);
  assert.equal(d!.id, 'magnetic_tile');
  assert.ok(typeof d!.spec !== 'string' && d!.spec.normal[0]!.endsWith(path.join('MT_Free', 'Imgs')) && d!.spec.abnormal.length === 1 && d!.spec.seed === 42);
  await assert.rejects(resolveBenchDatasets(path.join(tmp, 'nope'), 1), /no such folder/);
  mkdirSync(path.join(tmp, 'empty'));
  await assert.rejects(resolveBenchDatasets(path.join(tmp, 'empty'), 1), /not an MVTec AD category.*Magnetic Tile root/);
});

test('benchTeacher(random) exports exactly the seeded teacher ntsnet trains with, in PyTorch layout for anomalib', async () => {
  const out = makeTempDir('benchteacher');
  const base = protocol('cpu').base;
  const t = await benchTeacher('random', undefined, base.train.seed, out);
  assert.equal(t.imagenet, false);
  assert.ok(!existsSync(t.file), 'benchTeacher writes nothing');
  await writeBenchTeacher(tf, t, base.model);
  const file = await readSafetensors(t.file);
  const model = NTSNet.create(tf, { ...base.model, studentBlock: 'basic' }, 'random', base.train.seed);
  const ref = paramsToRaw(model.teacher);
  assert.equal(file.size, ref.size);
  assert.deepEqual(file.get('conv1.weight')!.shape, [64, 3, 7, 7]);
  for (const [k, v] of ref) assert.deepEqual(torchToTfLayout(file.get(k)!).data, v.data, k);
  model.dispose();
  await assert.rejects(benchTeacher('imagenet', path.join(out, 'missing.pth'), base.train.seed, out), /does not exist/);
});

test('runSpeedJob writes parameter counts and images/s per batch size', async () => {
  const dir = makeTempDir('benchspeed');
  const rec = await runSpeedJob(tf, { kind: 'speed', dir, name: 'basic', model: { ...DEFAULT_MODEL_CONFIG, studentBlock: 'basic', imageSize: 64 }, batches: [1, 2], runs: 1, seed: 1 });
  assert.deepEqual(rec.speed.map((s) => s.batchSize), [1, 2]);
  assert.ok(rec.speed.every((s) => s.imagesPerSecond > 0));
  assert.equal(rec.parameters.teacher, rec.parameters.student); // symmetric
  assert.ok(existsSync(path.join(dir, 'run.json')));
});

test('ntsnet benchmark: trains, writes the report, resumes without retraining, refuses other settings in the same folder', { timeout: 600_000 }, async () => {
  const tmp = makeTempDir('benchcli');
  const data = await makeMvtecCategory(path.join(tmp, 'widget'), { train: 10, good: 3, defective: 3 });
  const out = path.join(tmp, 'results');
  const args = [cli(), 'benchmark', '--dataset', data, '--out', out, '--configs', 'baseline,ntsnet', '--peers', 'none', '--no-speed', '--epochs', '1', '--teacher', 'random'];
  const first = await run(process.execPath, args, { maxBuffer: 1 << 24 });
  const report = readFileSync(path.join(out, 'report.md'), 'utf8');
  for (const h of ['## Headline', '## Table 1', '## Table 2', '## Table 3', '## Table 4', '## Table 5', '## Fusion', 'Random teacher']) assert.ok(report.includes(h), `report has ${h}`);
  assert.match(report, /\| widget \| baseline: symmetric baseline[^|]*\| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+\.\d \|/);
  assert.match(report, /ResNet34 \| ResNet18 \| not run: ImageNet ResNet34 weights/);
  const rec = JSON.parse(readFileSync(path.join(out, 'widget', 'ntsnet', 'run.json'), 'utf8')) as { variants: { name: string; imageAuroc: number | null; aupro: number | null; f1Max: number | null }[]; config: { train: { epochs: number } }; peakRssMiB: number };
  assert.equal(rec.variants.length, 11);
  assert.ok(rec.variants.every((v) => typeof v.aupro === 'number' && typeof v.f1Max === 'number'));
  assert.equal(rec.config.train.epochs, 1);
  assert.ok(rec.peakRssMiB > 50);
  const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { protocol: string; datasets: Record<string, unknown> };
  assert.equal(summary.protocol, 'default');
  assert.ok(summary.datasets.widget);
  // The issue-10 table: the default (its val_loss choice, and the epoch chosen by synthetic defects beside it) and the levers.
  const acc = readFileSync(path.join(out, 'accuracy.md'), 'utf8');
  assert.match(acc, /## widget\n[\s\S]*\| \*\*ntsnet default\*\*, \d+ px \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+\.\d \| \d+ \|[^\n]*\| 1 of 1 \|/);
  assert.match(acc, /\| baseline, epoch chosen by synthetic defects \(--select-by synthetic\), \d+ px \| \d+\.\d \| \d+\.\d \|/);
  assert.match(acc, /^Protocol: default \([^\n]*\), epochs overridden: 1 \(--epochs\); seed 42;/m);
  assert.match(acc, /## Epoch selection checked on fresh synthetic defects[\s\S]*Verdict: selection by synthetic defects \*\*(kept|rejected)\*\*/);
  assert.match(acc, /## Label-free verdicts[^\n]*\n\nDatasets of this run: widget\.\n/);
  assert.match(acc, /## Label-free verdicts[\s\S]*`ntsnet`: \*\*(kept|rejected)\*\*[\s\S]*`lnorm`: \*\*(kept|rejected)\*\*/);
  const levers = (JSON.parse(readFileSync(path.join(out, 'levers.json'), 'utf8')) as { rows: { config: string; variant: string; test: { imageAuroc: number | null; pixelAuroc: number | null } }[] }).rows;
  assert.deepEqual([...new Set(levers.map((l) => l.variant))], ['own', 'lnorm', 'top1', 'top01', 'L3', 'L13', 'L23', 'lnorm_L13', 'lnorm_L23']);
  assert.ok(levers.every((l) => l.config === 'baseline') && levers.length === 9, 'every lever on the default model');
  const own = levers.find((l) => l.variant === 'own')!;
  const base = JSON.parse(readFileSync(path.join(out, 'widget', 'baseline', 'run.json'), 'utf8')) as { valLossChoice: { epoch: number; imageAuroc: number | null; pixelAuroc: number | null } };
  assert.equal(base.valLossChoice.epoch, 1);
  assert.equal(own.test.imageAuroc, base.valLossChoice.imageAuroc, "levers' own setting reproduces the default model's metrics");
  assert.equal(own.test.pixelAuroc, base.valLossChoice.pixelAuroc);
  assert.ok(existsSync(path.join(out, 'widget', 'baseline', 'val-loss', 'model.safetensors')), 'the val_loss choice is kept beside the synthetic one');
  assert.match(first.stderr, /\[1\/2\] widget\/baseline: running/);
  const mtime = statSync(path.join(out, 'widget', 'ntsnet', 'run.json')).mtimeMs;
  const second = await run(process.execPath, args, { maxBuffer: 1 << 24 });
  assert.match(second.stderr, /widget\/baseline: done earlier, skipped/);
  assert.match(second.stderr, /widget\/ntsnet: done earlier, skipped/);
  assert.equal(statSync(path.join(out, 'widget', 'ntsnet', 'run.json')).mtimeMs, mtime, 'finished run not redone');
  const meta0 = readFileSync(path.join(out, 'benchmark.json'), 'utf8');
  await assert.rejects(run(process.execPath, [...args.slice(0, -4), '--epochs', '2', '--teacher', 'random']), /holds a benchmark run with protocol default, seed 42, epochs 1, random teacher; this command asks for protocol default, seed 42, epochs 2/);
  // A job folder holding another plan is refused before anything is written, naming what differs.
  const job = JSON.parse(readFileSync(path.join(out, 'widget', 'baseline', 'job.json'), 'utf8')) as { config: { train: { lr: number } } };
  job.config.train.lr = 0.1;
  writeFileSync(path.join(out, 'widget', 'baseline', 'job.json'), JSON.stringify(job));
  await assert.rejects(run(process.execPath, args), /holds a job made with different settings \(old -> new\):\n {2}- config\.train\.lr: 0\.1 -> 0\.4/);
  assert.equal(readFileSync(path.join(out, 'benchmark.json'), 'utf8'), meta0, 'a refused run writes nothing');
  // The same folder name from another place is not mixed with the earlier results.
  const other = await makeMvtecCategory(path.join(tmp, 'elsewhere', 'widget'), { train: 10, good: 3, defective: 2 });
  await assert.rejects(run(process.execPath, [cli(), 'benchmark', '--dataset', other, '--out', out, '--configs', 'baseline', '--peers', 'none', '--no-speed', '--epochs', '1', '--teacher', 'random']), /different settings[\s\S]*dataset: /);
  await assert.rejects(run(process.execPath, [cli(), 'benchmark', '--dataset', data, '--configs', 'bogus', '--out', out]), /--configs: unknown bogus/);
  await assert.rejects(run(process.execPath, [cli(), 'benchmark', '--dataset', data, '--peers', 'efficientad', '--out', out]), /--peers: unknown efficientad/);
  await assert.rejects(run(process.execPath, [cli(), 'benchmark', '--dataset', data, '--peers', 'none,stfpm', '--out', out]), /'none' cannot be combined with peers/);
});

test('ntsnet benchmark refuses unsafe output folders and a missing peer environment before writing or training anything', { timeout: 300_000 }, async () => {
  const tmp = makeTempDir('benchsafe');
  const data = await makeMvtecCategory(path.join(tmp, 'widget'), { train: 4, good: 1, defective: 1 });
  const listing = (): string => JSON.stringify(readdirSync(data, { recursive: true }).sort());
  const before = listing();
  const base = ['--configs', 'baseline', '--peers', 'none', '--no-speed', '--epochs', '1', '--teacher', 'random'];
  const bench = (...a: string[]) => run(process.execPath, [cli(), 'benchmark', '--dataset', data, ...a]);
  await assert.rejects(bench('--out', path.join(data, 'results'), ...base), /inside the dataset folder/);
  await assert.rejects(bench('--out', tmp, ...base), /contains the dataset folder/);
  assert.equal(listing(), before, 'nothing written into the dataset');
  writeFileSync(path.join(tmp, 'afile'), 'x');
  await assert.rejects(bench('--out', path.join(tmp, 'afile'), ...base), /is an existing file, not a folder/);
  mkdirSync(path.join(tmp, 'mine'));
  writeFileSync(path.join(tmp, 'mine', 'report.md'), 'my notes');
  await assert.rejects(bench('--out', path.join(tmp, 'mine'), ...base), /non-empty folder that is not a benchmark run/);
  assert.equal(readFileSync(path.join(tmp, 'mine', 'report.md'), 'utf8'), 'my notes');
  const out = path.join(tmp, 'out');
  await assert.rejects(bench('--out', out, '--configs', 'baseline', '--peers', 'stfpm', '--python', path.join(tmp, 'no-python'), '--epochs', '1', '--teacher', 'random'), /anomalib environment not found: .*no-python does not exist/);
  assert.ok(!existsSync(out), 'nothing trained or written before the peer check');
  await assert.rejects(bench('--out', out, ...base, '--size', '64', '--train-rounds', '2'), /--size, --train-rounds: option\(s\) of the speed benchmark \(--speed\), which the accuracy benchmark does not use/);
  assert.ok(!existsSync(out), 'nothing written for options that would be ignored');
  await assert.rejects(bench('--out', out, '--teacher', 'random', '--teacher-weights', path.join(tmp, 'x.pth')), /--teacher-weights is used with --teacher imagenet, not --teacher random/);
});

test('ntsnet benchmark shows why a job failed on the terminal; --skip-bad skips the unreadable image', { timeout: 300_000 }, async () => {
  const tmp = makeTempDir('benchbad');
  const data = await makeMvtecCategory(path.join(tmp, 'widget'), { train: 6, good: 2, defective: 2 });
  writeFileSync(path.join(data, 'test', 'good', '001.png'), Buffer.from('not a png'));
  const args = [cli(), 'benchmark', '--dataset', data, '--out', path.join(tmp, 'out'), '--configs', 'baseline', '--peers', 'none', '--no-speed', '--epochs', '1', '--teacher', 'random'];
  await assert.rejects(run(process.execPath, args), (e: Error & { stderr?: string }) => {
    assert.match(e.stderr ?? '', /benchmark job widget\/baseline failed:\n[\s\S]*001\.png[\s\S]*--skip-bad[\s\S]*full log: .*worker\.log/);
    return true;
  });
  const ok = await run(process.execPath, [...args, '--skip-bad'], { maxBuffer: 1 << 24 });
  assert.match(ok.stderr, /warning \(widget\/baseline\): .*001\.png/);
  const rec = JSON.parse(readFileSync(path.join(tmp, 'out', 'widget', 'baseline', 'run.json'), 'utf8')) as { images: unknown[] };
  assert.equal(rec.images.length, 3);
});

const noPeerEnv = existsSync(DEFAULT_PEER_PYTHON) ? undefined : `anomalib environment ${DEFAULT_PEER_PYTHON} missing: peer check skipped (create it with 'bash benchmarks/peers/setup-anomalib.sh')`;

test('ntsnet benchmark --peers stfpm,patchcore,rd runs anomalib on the same split and scores its maps with ntsnet\'s metrics', { skip: noPeerEnv, timeout: 600_000 }, async () => {
  const tmp = makeTempDir('benchpeer');
  const data = await makeMvtecCategory(path.join(tmp, 'widget'), { train: 6, good: 2, defective: 2 });
  const out = path.join(tmp, 'results');
  await run(process.execPath, [cli(), 'benchmark', '--dataset', data, '--out', out, '--configs', 'baseline', '--peers', 'stfpm,patchcore,rd', '--no-speed', '--epochs', '1', '--teacher', 'random'], { maxBuffer: 1 << 24 });
  for (const p of ['stfpm', 'patchcore', 'rd']) {
    const rec = JSON.parse(readFileSync(path.join(out, 'widget', `anomalib-${p}`, 'run.json'), 'utf8')) as { metrics: { imageAuroc: number; pixelAuroc: number }; images: unknown[]; tool: { backboneTensorsLoaded: number; weightsFile: string } };
    assert.equal(rec.images.length, 4);
    assert.ok(rec.metrics.imageAuroc >= 0 && rec.metrics.imageAuroc <= 1 && rec.metrics.pixelAuroc >= 0 && rec.metrics.pixelAuroc <= 1);
    assert.ok(rec.tool.backboneTensorsLoaded > 50, `${p}: backbone loaded from the ntsnet teacher file`);
    assert.equal(rec.tool.weightsFile, 'teacher-random-seed42.safetensors');
  }
  assert.match(readFileSync(path.join(out, 'report.md'), 'utf8'), /anomalib STFPM-R18/);
  const acc = readFileSync(path.join(out, 'accuracy.md'), 'utf8');
  for (const p of ['STFPM-R18', 'PatchCore-R18, \\d+ px, coreset 0.1', 'Reverse Distillation \\(R18 encoder\\), \\d+ px, 1 epochs']) assert.match(acc, new RegExp(`\\| anomalib ${p}`));
  await assert.rejects(run(process.execPath, [cli(), 'benchmark', '--dataset', data, '--out', out, '--configs', 'baseline', '--peers', 'patchcore', '--coreset-ratio', '0.5', '--no-speed', '--epochs', '1', '--teacher', 'random']), /holds a PatchCore run with coreset ratio 0.1, not 0.5/);
  // A ratio that leaves PatchCore's memory bank empty is refused before anything is trained or written.
  const out2 = path.join(tmp, 'results2');
  await assert.rejects(run(process.execPath, [cli(), 'benchmark', '--dataset', data, '--out', out2, '--configs', 'baseline', '--peers', 'patchcore', '--coreset-ratio', '0.0001', '--no-speed', '--epochs', '1', '--teacher', 'random']), /--coreset-ratio 0.0001 keeps no patch of PatchCore's \d+ \(\d+ training images x 256 at 128 px\): give at least 0\.\d+/);
  assert.ok(!existsSync(out2), 'refused before the run folder is written');
});

test('SIGINT to the benchmark process alone stops its running job (no worker outlives it) and the run resumes', { timeout: 300_000 }, async () => {
  const tmp = makeTempDir('benchint');
  const data = await makeMvtecCategory(path.join(tmp, 'widget'), { train: 6, good: 2, defective: 2 });
  const out = path.join(tmp, 'out');
  const args = [cli(), 'benchmark', '--dataset', data, '--out', out, '--configs', 'baseline', '--peers', 'none', '--no-speed', '--epochs', '40', '--teacher', 'random', '--no-report'];
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  const log = path.join(out, 'widget', 'baseline', 'log.txt');
  // Wait for the worker's first epoch, then signal the parent only (not its process group, as `kill PID` does).
  while (!(existsSync(log) && /^epoch 1\/40 /m.test(readFileSync(log, 'utf8')))) await new Promise((r) => setTimeout(r, 200));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.notEqual(code, 0);
  assert.match(stderr, /benchmark interrupted during job widget\/baseline; rerun the same command to resume/);
  const epochs = readFileSync(log, 'utf8').match(/^epoch \d+\/40 /gm)!.length;
  assert.ok(epochs < 40, `the job stopped early (${epochs} epochs)`);
  const state = JSON.parse(readFileSync(path.join(out, 'widget', 'baseline', 'checkpoint', 'config.json'), 'utf8')) as { training: { status: string } };
  assert.equal(state.training.status, 'interrupted', 'the worker had stopped and marked its checkpoint before the benchmark exited');
  assert.ok(!existsSync(path.join(out, 'widget', 'baseline', 'run.json')));
  const again = await run(process.execPath, args, { maxBuffer: 1 << 24 });
  assert.match(again.stderr, /widget\/baseline: running/);
  assert.ok(existsSync(path.join(out, 'widget', 'baseline', 'run.json')), 'the rerun finishes the job');
});

test('smallestRatio: the printed minimum coreset ratio keeps at least one patch and is the tightest two-digit value', async () => {
  const { smallestRatio } = await import('../src/bench/peers.js');
  for (const patches of [1, 7, 100, 535, 768, 1280, 53504]) {
    const r = Number(smallestRatio(patches));
    assert.ok(Math.floor(r * patches) >= 1, `${patches}: ${r} keeps a patch`);
    assert.ok(r < (1 / patches) * 1.1 + 1e-12, `${patches}: ${r} is not far above 1 / ${patches}`);
  }
});
