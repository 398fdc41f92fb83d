/**
 * `ntsnet predict --engine onnxruntime`: tiny fit (64 px, random teacher) on a generated category, then predict with
 * both engines; the scores, labels and written files must agree (scores within 1e-4).
 */
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { existsSync, writeFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { makeTempDir, repoRoot, writeStripedImage } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const TOL = 1e-4;

interface Pred { engine: string; images: { file: string; score: number; label: string; files?: Record<string, string> }[] }

test('predict --engine onnxruntime gives the scores of the default engine (auto-export, then --onnx), same files', { timeout: 300_000 }, async (t) => {
  const tmp = makeTempDir('onnx-predict');
  const data = path.join(tmp, 'widget');
  for (const d of ['train/good', 'test/good', 'test/spot']) mkdirSync(path.join(data, d), { recursive: true });
  for (let i = 0; i < 8; i++) await writeStripedImage(path.join(data, 'train/good', `${i}.png`), i);
  for (let i = 0; i < 3; i++) await writeStripedImage(path.join(data, 'test/good', `${i}.png`), 50 + i);
  for (let i = 0; i < 3; i++) await writeStripedImage(path.join(data, 'test/spot', `${i}.png`), 70 + i, { defect: { x: 20 + 20 * i, y: 40 } });
  const ckpt = path.join(tmp, 'run');
  await run(process.execPath, [cli(), 'fit', '--data', path.join(data), '--out', ckpt, '--preset', 'tiny'], { maxBuffer: 1 << 24 });

  const input = path.join(data, 'test');
  const outTf = path.join(tmp, 'pred-tf'), outOrt = path.join(tmp, 'pred-ort');
  const tfRun = await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--out', outTf, '--map-format', 'both', '--engine', 'tfjs'], { maxBuffer: 1 << 24 });
  const ortRun = await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--out', outOrt, '--map-format', 'both', '--engine', 'onnxruntime', '--batch-size', '4'], { maxBuffer: 1 << 24 });
  assert.match(ortRun.stderr, /engine onnxruntime: exported the checkpoint to .*model\.onnx/);
  const onnx = path.join(ckpt, 'model.onnx');
  assert.ok(existsSync(onnx), 'model.onnx written next to the checkpoint');

  const a = JSON.parse(readFileSync(path.join(outTf, 'predictions.json'), 'utf8')) as Pred;
  const b = JSON.parse(readFileSync(path.join(outOrt, 'predictions.json'), 'utf8')) as Pred;
  assert.equal(a.engine, 'tfjs-node');
  assert.equal(b.engine, 'onnxruntime-node');
  assert.equal(a.images.length, 6);
  assert.deepEqual(b.images.map((i) => i.file), a.images.map((i) => i.file));
  let maxDiff = 0;
  for (const [i, im] of a.images.entries()) {
    maxDiff = Math.max(maxDiff, Math.abs(im.score - b.images[i]!.score));
    assert.deepEqual(b.images[i]!.files, im.files);
    for (const f of Object.values(im.files!)) assert.ok(existsSync(path.join(outOrt, f)), `${f} written by the onnxruntime engine`);
  }
  // The .npy maps (float32, 64x64) agree too.
  let mapDiff = 0;
  for (const im of a.images) {
    const fa = readFileSync(path.join(outTf, im.files!.npy!)), fb = readFileSync(path.join(outOrt, im.files!.npy!));
    const off = fa.length - 64 * 64 * 4;
    for (let k = 0; k < 64 * 64; k++) mapDiff = Math.max(mapDiff, Math.abs(fa.readFloatLE(off + 4 * k) - fb.readFloatLE(off + 4 * k)));
  }
  t.diagnostic(`tfjs-node vs onnxruntime-node on 6 images: max |score diff| ${maxDiff.toExponential(2)}, max |map diff| ${mapDiff.toExponential(2)} (scores ${a.images.map((i) => i.score.toFixed(4)).join(', ')})`);
  assert.ok(maxDiff < TOL, `scores differ by ${maxDiff}`);
  assert.ok(mapDiff < TOL, `maps differ by ${mapDiff}`);
  const tfLines = tfRun.stdout.trim().split('\n'), ortLines = ortRun.stdout.trim().split('\n');
  assert.equal(ortLines.length, tfLines.length);

  // Second run reuses the export; --onnx with an explicit file also works.
  const mtime = statSync(onnx).mtimeMs;
  const again = await run(process.execPath, [cli(), 'predict', path.join(input, 'spot', '0.png'), '--checkpoint', ckpt, '--engine', 'onnxruntime'], { maxBuffer: 1 << 24 });
  assert.match(again.stderr, /engine onnxruntime: using .*model\.onnx/);
  assert.equal(statSync(onnx).mtimeMs, mtime);
  const explicit = await run(process.execPath, [cli(), 'predict', path.join(input, 'spot', '0.png'), '--checkpoint', ckpt, '--engine', 'onnxruntime', '--onnx', onnx], { maxBuffer: 1 << 24 });
  const sTf = a.images.find((i) => i.file === 'spot/0.png')!.score;
  assert.ok(Math.abs(Number(explicit.stdout.trim().split('\n')[1]!.split('\t')[1]) - sTf) < TOL);
  await assert.rejects(run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--onnx', onnx, '--engine', 'tfjs']), (e: { stderr: string }) => {
    assert.match(e.stderr, /--onnx needs --engine onnxruntime/);
    return true;
  });
  // Without --engine, --onnx means onnxruntime (auto).
  const implied = await run(process.execPath, [cli(), 'predict', path.join(input, 'spot', '0.png'), '--checkpoint', ckpt, '--onnx', onnx], { maxBuffer: 1 << 24 });
  assert.match(implied.stderr, /engine: onnxruntime-node/);
  // A damaged model.onnx (cut short, e.g. by a copy that failed) is replaced by a fresh export, not used or kept.
  writeFileSync(onnx, readFileSync(onnx).subarray(0, 200));
  const repaired = await run(process.execPath, [cli(), 'predict', path.join(input, 'spot', '0.png'), '--checkpoint', ckpt, '--engine', 'onnxruntime'], { maxBuffer: 1 << 24 });
  assert.match(repaired.stderr, /exported the checkpoint to .*model\.onnx \(replacing a damaged file there\)/);
  assert.ok(Math.abs(Number(repaired.stdout.trim().split('\n')[1]!.split('\t')[1]) - sTf) < TOL);
});

test('predict --engine auto (the default) times both engines once, says which it chose and why, caches it, and resumes with the journal\'s engine', { timeout: 300_000 }, async () => {
  const tmp = makeTempDir('engine-auto');
  const data = path.join(tmp, 'widget');
  for (const d of ['train/good', 'test/good']) mkdirSync(path.join(data, d), { recursive: true });
  for (let i = 0; i < 8; i++) await writeStripedImage(path.join(data, 'train/good', `${i}.png`), i);
  for (let i = 0; i < 3; i++) await writeStripedImage(path.join(data, 'test/good', `${i}.png`), 50 + i);
  const ckpt = path.join(tmp, 'run');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', ckpt, '--preset', 'tiny'], { maxBuffer: 1 << 24 });
  const input = path.join(data, 'test');
  const first = await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--out', path.join(tmp, 'p1'), '--batch-size', '2'], { maxBuffer: 1 << 24 });
  const m = /engine: (tfjs-node|onnxruntime-node) \(faster at batch 2, 64 px on this machine: onnxruntime-node ([\d.]+) images\/s, tfjs-node ([\d.]+) images\/s; measured now, cached in (.*engine-choice\.json);/.exec(first.stderr);
  assert.ok(m, `the choice and its figures are stated:\n${first.stderr}`);
  const [ort, tfjs] = [Number(m[2]), Number(m[3])];
  assert.ok(ort > 0 && tfjs > 0);
  assert.equal(m[1], ort >= tfjs ? 'onnxruntime-node' : 'tfjs-node', 'the faster engine is chosen');
  const cache = JSON.parse(readFileSync(path.join(ckpt, 'engine-choice.json'), 'utf8')) as { measurements: { chosen: string; key: string }[] };
  assert.equal(cache.measurements.length, 1);
  assert.equal(cache.measurements[0]!.chosen, m[1]);
  const p1 = JSON.parse(readFileSync(path.join(tmp, 'p1', 'predictions.json'), 'utf8')) as Pred;
  assert.equal(p1.engine, m[1], 'predictions.json records the engine used');
  // Second run: same batch size -> cached; another batch size -> measured again and added.
  const second = await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--batch-size', '2'], { maxBuffer: 1 << 24 });
  assert.match(second.stderr, /engine: .* cached in .*engine-choice\.json/);
  assert.doesNotMatch(second.stderr, /measured now/);
  await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--batch-size', '3'], { maxBuffer: 1 << 24 });
  assert.equal((JSON.parse(readFileSync(path.join(ckpt, 'engine-choice.json'), 'utf8')) as { measurements: unknown[] }).measurements.length, 2);
  // A damaged cache is only a cache: measured again, no error.
  writeFileSync(path.join(ckpt, 'engine-choice.json'), '{"measurements": [');
  const damaged = await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--batch-size', '2'], { maxBuffer: 1 << 24 });
  assert.match(damaged.stderr, /measured now/);
  // An interrupted run is resumed with the engine its journal names (here the engine auto did not choose).
  const other = m[1] === 'tfjs-node' ? 'onnxruntime' : 'tfjs';
  const many = path.join(tmp, 'many');
  mkdirSync(many);
  for (let i = 0; i < 40; i++) await writeStripedImage(path.join(many, `${i}.png`), 100 + i);
  const p2 = path.join(tmp, 'p2');
  const child = spawn(process.execPath, [cli(), 'predict', many, '--checkpoint', ckpt, '--out', p2, '--engine', other, '--batch-size', '1'], { stdio: 'ignore' });
  const journal = path.join(p2, 'predictions.partial.jsonl');
  const t0 = Date.now();
  while (!(existsSync(journal) && readFileSync(journal, 'utf8').split('\n').filter(Boolean).length >= 3) && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(existsSync(journal), 'the killed run left its journal');
  const resumed = await run(process.execPath, [cli(), 'predict', many, '--checkpoint', ckpt, '--out', p2, '--batch-size', '1'], { maxBuffer: 1 << 24 });
  assert.match(resumed.stderr, new RegExp(`engine: ${other}-node \\(the engine of the earlier run in `));
  assert.match(resumed.stderr, /\(\d+ resumed\)/);
  assert.equal((JSON.parse(readFileSync(path.join(p2, 'predictions.json'), 'utf8')) as Pred).engine, `${other}-node`);
});
