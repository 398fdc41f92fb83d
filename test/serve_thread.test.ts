/**
 * The service's engine in a worker thread (serve/threadedEngine.ts): the same scores and maps as the engine on the
 * calling thread, an event loop that keeps running during a forward pass, clear errors for a bad checkpoint, live
 * tensor counts from the worker, and a disposed engine that refuses work instead of hanging.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { loadCheckpoint } from '../src/engine/checkpoint.js';
import { loadImage } from '../src/data/image.js';
import { openEngine, type InferenceEngine } from '../src/serve/engine.js';
import { ThreadedEngine } from '../src/serve/threadedEngine.js';
import { makeMvtecCategory, makeTempDir, repoRoot } from './helpers.js';

const run = promisify(execFile);
const SIZE = 192;
let tmp = '', ckpt = '';
let inputs: Float32Array[] = [];
let threaded: ThreadedEngine | undefined, local: InferenceEngine | undefined;

before(async () => {
  tmp = makeTempDir('serve-thread');
  const data = await makeMvtecCategory(path.join(tmp, 'part'), { width: 96, height: 96, half: 8, train: 6, good: 2, defective: 2 });
  ckpt = path.join(tmp, 'ckpt');
  await run(process.execPath, [path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'fit', '--data', data, '--out', ckpt, '--preset', 'tiny', '--image-size', String(SIZE), '--epochs', '1'], { maxBuffer: 1 << 24 });
  const files = ['good', 'spot'].flatMap((d) => readdirSync(path.join(data, 'test', d)).sort().map((f) => path.join(data, 'test', d, f)));
  inputs = await Promise.all(files.map((f) => loadImage(f, SIZE)));
  const tf = loadTf();
  threaded = await ThreadedEngine.open({ checkpointDir: ckpt, choice: 'tfjs' });
  local = await openEngine(tf, (await loadCheckpoint(tf, ckpt)).model, ckpt, 'tfjs');
});

after(async () => {
  await threaded?.dispose();
  await local?.dispose();
});

const batchOf = (xs: Float32Array[]): Float32Array => {
  const out = new Float32Array(xs.reduce((n, x) => n + x.length, 0));
  xs.forEach((x, i) => out.set(x, i * x.length));
  return out;
};

test('threaded engine: scores and maps equal the engine on the calling thread; the input batch stays usable', { timeout: 120_000 }, async () => {
  const batch = batchOf(inputs);
  const a = await threaded!.run(batch, inputs.length);
  const b = await local!.run(batch, inputs.length);
  assert.equal(a.scores.length, inputs.length);
  assert.equal(a.maps.length, inputs.length * SIZE * SIZE);
  assert.deepEqual([...a.scores], [...b.scores]);
  let worst = 0;
  for (let i = 0; i < a.maps.length; i++) worst = Math.max(worst, Math.abs(a.maps[i]! - b.maps[i]!));
  assert.equal(worst, 0, 'maps identical');
  assert.equal(batch.length, inputs.length * SIZE * SIZE * 3, 'the caller keeps its batch (copied, not transferred)');
  assert.ok(new Set(a.scores).size > 1, 'different images get different scores');
});

test('threaded engine: the event loop keeps running during a forward pass (it stops with the engine on this thread)', { timeout: 120_000 }, async () => {
  const n = 12, batch = batchOf(Array.from({ length: n }, (_, i) => inputs[i % inputs.length]!));
  const ticksDuring = async (e: InferenceEngine): Promise<{ ticks: number; ms: number }> => {
    let ticks = 0;
    const iv = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    await e.run(batch, n);
    const ms = performance.now() - t0;
    clearInterval(iv);
    return { ticks, ms };
  };
  await threaded!.run(batch, n); // warm-up of the batch shape
  await local!.run(batch, n);
  const t = await ticksDuring(threaded!), l = await ticksDuring(local!);
  // A 5 ms timer fires about ms/5 times when the loop is free; a pass on this thread lets it fire about once.
  assert.ok(t.ticks >= Math.max(4, (t.ms / 5) * 0.3), `threaded: ${t.ticks} timer ticks during a ${t.ms.toFixed(0)} ms pass`);
  assert.ok(l.ticks <= 3, `calling thread: ${l.ticks} timer ticks during a ${l.ms.toFixed(0)} ms pass (expected the loop to be blocked)`);
});

test('threaded engine: tensors are counted in the worker and stay constant across passes', { timeout: 60_000 }, async () => {
  const before = await threaded!.tensors();
  assert.ok(before > 0, 'the model\'s weights are tensors in the worker');
  for (let i = 0; i < 3; i++) await threaded!.run(inputs[0]!, 1);
  assert.equal(await threaded!.tensors(), before);
});

test('threaded engine: a folder without a checkpoint fails with the loader\'s message; a disposed engine refuses work', { timeout: 60_000 }, async () => {
  await assert.rejects(ThreadedEngine.open({ checkpointDir: path.join(tmp, 'nothing-here'), choice: 'tfjs' }), /Checkpoint not found: .*nothing-here.*ntsnet fit/);
  const e = await ThreadedEngine.open({ checkpointDir: ckpt, choice: 'tfjs' });
  assert.equal(e.imageSize, SIZE);
  assert.equal(e.name, 'tfjs-node');
  assert.equal(e.failure, undefined);
  await e.dispose();
  await assert.rejects(e.run(inputs[0]!, 1), /inference thread exited/);
  assert.match(e.failure ?? '', /inference thread exited/, '/readyz reads this and answers 503');
});
