/**
 * `ntsnet predict --engine onnxruntime`: tiny fit (64 px, random teacher) on a generated category, then predict with
 * both engines; the scores, labels and written files must agree (scores within 1e-4).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
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
  const tfRun = await run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--out', outTf, '--map-format', 'both'], { maxBuffer: 1 << 24 });
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
  await assert.rejects(run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--onnx', onnx]), (e: { stderr: string }) => {
    assert.match(e.stderr, /--onnx needs --engine onnxruntime/);
    return true;
  });
  // A damaged model.onnx (cut short, e.g. by a copy that failed) is replaced by a fresh export, not used or kept.
  writeFileSync(onnx, readFileSync(onnx).subarray(0, 200));
  const repaired = await run(process.execPath, [cli(), 'predict', path.join(input, 'spot', '0.png'), '--checkpoint', ckpt, '--engine', 'onnxruntime'], { maxBuffer: 1 << 24 });
  assert.match(repaired.stderr, /exported the checkpoint to .*model\.onnx \(replacing a damaged file there\)/);
  assert.ok(Math.abs(Number(repaired.stdout.trim().split('\n')[1]!.split('\t')[1]) - sTf) < TOL);
});
