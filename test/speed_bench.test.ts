/**
 * `ntsnet benchmark --speed` (bench/speedBench.ts) at a small size on real PNG images with the ImageNet teacher from
 * ../shared/weights (skipped without it): every engine timed, ceilings and per-op profiles measured, the training and
 * memory jobs run in their own processes, the report written, and a rerun reuses the finished jobs.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadTf } from '../src/backend/index.js';
import { resolveBenchDatasets } from '../src/bench/datasets.js';
import { DEFAULT_PEER_PYTHON } from '../src/bench/peers.js';
import { runSpeedBenchmark } from '../src/bench/speedBench.js';
import type { SpeedSummary } from '../src/bench/speedReport.js';
import { runCli, tinyCategory } from './cli_helpers.js';
import { makeTempDir, sharedWeightsPath } from './helpers.js';

test('benchmark --speed: engines, ceilings, profiles, training and memory jobs, report; rerun resumes', { timeout: 600_000 }, async (t) => {
  const trunk = sharedWeightsPath('resnet18-imagenet-trunk.safetensors');
  if (!trunk) return t.skip('../shared/weights/resnet18-imagenet-trunk.safetensors absent (the speed benchmark times the ImageNet-teacher detector)');
  const data = await tinyCategory(8);
  const [ds] = await resolveBenchDatasets(data, 42);
  const out = path.join(makeTempDir('speed'), 'run');
  const logs: string[] = [];
  const o = {
    dataset: ds!, out, teacherWeights: trunk, seed: 42, imageSize: 64, batches: [1, 2], runs: [3, 2], warmup: 1,
    train: { imageSize: 64, batchSize: 4, epochs: 2, rounds: 2 }, memory: { imageSize: 64, batchSize: 4, batches: 3 },
    peers: false, python: DEFAULT_PEER_PYTHON, command: 'test', log: (l: string) => logs.push(l),
  };
  const md = await runSpeedBenchmark(loadTf(), o);
  const s = JSON.parse(readFileSync(path.join(out, 'speed.json'), 'utf8')) as SpeedSummary;
  const engines = ['tfjs-node fp32', 'onnxruntime-node fp32', 'onnxruntime-node int8'];
  assert.deepEqual(s.engines.rows.map((r) => `${r.engine}/${r.batchSize}`), [1, 2].flatMap((b) => engines.map((e) => `${e}/${b}`)));
  for (const r of s.engines.rows) {
    assert.ok(r.imagesPerSecond > 0 && r.p99MsPerBatch >= r.medianMsPerBatch, JSON.stringify(r));
    assert.equal(r.runs, r.batchSize === 1 ? 3 : 2);
    assert.ok(r.gflopPerSecond !== null && Math.abs(r.gflopPerSecond - s.engines.gflopPerImage! * r.imagesPerSecond) < 1e-6 * r.gflopPerSecond);
  }
  // Teacher + student convolutions of the ResNet18 trunk to layer3 at 64 px: 2 x 0.228 GFLOP.
  assert.ok(Math.abs(s.engines.gflopPerImage! - 0.4577) < 0.001, String(s.engines.gflopPerImage));
  assert.equal(s.engines.ceilings.length, 6);
  assert.ok(s.engines.ceilings.every((c) => c.gflopPerSecond > 0 && c.medianMs > 0));
  assert.ok(s.engines.int8Parity.scoreRel < 0.1, `int8 scores within 10 % (${s.engines.int8Parity.scoreRel})`);
  const prof = (what: string, engine: string) => s.engines.profiles.find((p) => p.what.startsWith(what) && p.engine === engine)!;
  const train = prof('training step', 'tfjs-node fp32');
  assert.match(train.what, /teacher features cached/);
  const ops = train.ops.map((x) => x.op);
  assert.ok(ops.includes('Conv2DBackpropFilter'), ops.join(','));
  assert.ok(!ops.includes('Step'), `the ReLU gradient runs as ReluGrad, not Step + Select: ${ops.join(',')}`);
  assert.ok(Math.abs(train.ops.reduce((a, x) => a + x.share, 0) - 1) < 1e-9);
  assert.ok(prof('inference', 'onnxruntime-node int8').ops.some((x) => x.op === 'QLinearConv'), 'int8 runs integer convolutions');
  assert.ok(prof('inference', 'onnxruntime-node int8').ops.some((x) => x.op === 'NhwcMaxPool' || x.op === 'MaxPool'));
  assert.equal(s.train.length, 2, 'two training rounds');
  for (const t of s.train) {
    assert.equal(t.history.length, 2);
    assert.equal(t.imagesPerEpoch, t.trainImages);
    assert.ok(t.trainSecondsPerEpoch > 0);
  }
  assert.equal(s.memory.imagesPerEpoch, 7, 'all 7 training images (3 batches of 4 asked for)');
  assert.match(md, /only 7 training images, fewer than the 3 batches asked for/);
  assert.ok(s.memory.peakRssMiB > 100);
  assert.match(md, /## Targets/);
  assert.match(md, /training peak memory at 64 px, batch 4 <= 6 GB \| [\d.]+ GB/);
  assert.doesNotMatch(md, /anomalib OpenVINO/, 'no peer rows without peers');
  assert.equal(readFileSync(path.join(out, 'speed.md'), 'utf8'), md);
  // Rerun: every job is kept.
  logs.length = 0;
  await runSpeedBenchmark(loadTf(), o);
  assert.equal(logs.filter((l) => /done earlier, skipped/.test(l)).length, 4, logs.join('\n'));
  assert.ok(existsSync(path.join(out, 'speed', 'engines', 'model-int8.onnx')));
});

test('benchmark --speed: usage errors before any work', async () => {
  const data = await tinyCategory(4);
  const two = runCli(['benchmark', '--speed', '--dataset', data, data, '--peers', 'none']);
  assert.equal(two.status, 1);
  assert.match(two.stderr, /--speed takes one --dataset/);
  const runs = runCli(['benchmark', '--speed', '--dataset', data, '--batches', '1,32', '--runs', '3,2,1', '--peers', 'none']);
  assert.match(runs.stderr, /--runs: 3 value\(s\) for 2 batch size\(s\)/);
  const acc = runCli(['benchmark', '--speed', '--dataset', data, '--configs', 'cot', '--epochs', '3', '--peers', 'none']);
  assert.match(acc.stderr, /--speed does not use --configs, --epochs/);
  const out = path.join(makeTempDir('speedbad'), 'o');
  const size = runCli(['benchmark', '--speed', '--dataset', data, '--size', '63', '--peers', 'none', '--out', out]);
  assert.match(size.stderr, /--size must be a multiple of 16/);
  assert.ok(!existsSync(out), 'nothing written');
  const dup = runCli(['benchmark', '--speed', '--dataset', data, '--batches', '1,1', '--peers', 'none', '--out', out]);
  assert.match(dup.stderr, /--batches lists a batch size twice/);
  const file = path.join(makeTempDir('speedfile'), 'f.txt');
  writeFileSync(file, 'x');
  assert.match(runCli(['benchmark', '--speed', '--dataset', data, '--peers', 'none', '--out', file]).stderr, /is an existing file, not a folder/);
  const bad = runCli(['benchmark', '--speed', '--dataset', data, '--batches', '1,x', '--peers', 'none']);
  assert.match(bad.stderr, /--batches: expected a comma-separated list of positive integers, got '1,x'/);
  const rnd = runCli(['benchmark', '--speed', '--dataset', data, '--teacher', 'random']);
  assert.match(rnd.stderr, /--teacher random does not apply/);
});
