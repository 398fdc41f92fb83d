/**
 * Issue 13, item 4: no silent wrong results. ONNX exports are bound to their checkpoint; a damaged
 * model.safetensors is refused (SHA-256 in the config); two fits into one --out cannot both succeed (lock); a
 * same-stem PNG photo is not taken as a mask.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { makeTempDir, writeStripedImage } from './helpers.js';
import { FAST_FIT, runCli, startCli, tinyCategory, tinyCheckpoint } from './cli_helpers.js';

test('predict --engine onnxruntime refuses an ONNX file exported from another checkpoint of the same size', async () => {
  const a = await tinyCheckpoint();
  const b = await tinyCheckpoint(['--seed', '7']);
  const onnxA = path.join(makeTempDir('onnx'), 'a.onnx');
  const ex = runCli(['export', a.checkpoint, '--format', 'onnx', '--out', onnxA]);
  assert.equal(ex.status, 0, ex.stderr);
  const input = path.join(a.data, 'test', 'good');
  const wrong = runCli(['predict', input, '--checkpoint', b.checkpoint, '--engine', 'onnxruntime', '--onnx', onnxA]);
  assert.equal(wrong.status, 1, wrong.stderr);
  assert.match(wrong.stderr, /a\.onnx was exported from another checkpoint \(weights SHA-256 [0-9a-f]{12}\.\.\.; this checkpoint's is [0-9a-f]{12}\.\.\.\)/);
  assert.equal(wrong.stdout, '', 'nothing scored');
  const right = runCli(['predict', input, '--checkpoint', a.checkpoint, '--engine', 'onnxruntime', '--onnx', onnxA]);
  assert.equal(right.status, 0, right.stderr);
  assert.equal(right.stdout.trim().split('\n').length, 1 + 2);
});

test('a model.safetensors of the right size with its second half zeroed is refused (SHA-256 recorded in config.json)', async () => {
  const { checkpoint, data } = await tinyCheckpoint();
  const cfg = JSON.parse(readFileSync(path.join(checkpoint, 'config.json'), 'utf8')) as { weightsSha256?: string };
  assert.match(cfg.weightsSha256 ?? '', /^[0-9a-f]{64}$/);
  const file = path.join(checkpoint, 'model.safetensors');
  const buf = readFileSync(file);
  buf.fill(0, Math.floor(buf.length / 2));
  writeFileSync(file, buf);
  const r = runCli(['predict', path.join(data, 'test', 'good'), '--checkpoint', checkpoint]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /model\.safetensors is corrupt: its tensors have SHA-256 [0-9a-f]{16}\.\.\., but the checkpoint recorded [0-9a-f]{16}\.\.\..*Restore the file/);
  assert.equal(r.stdout, '');
});

test('two concurrent fits into the same --out: the second stops with a clear message, the first succeeds', async () => {
  const data = await tinyCategory(16);
  const out = path.join(makeTempDir('lock'), 'run');
  const first = startCli(['fit', '--data', data, '--out', out, ...FAST_FIT, '--epochs', '6']);
  await first.waitFor(/^data: /m);
  const second = runCli(['fit', '--data', data, '--out', out, ...FAST_FIT, '--epochs', '1', '--force']);
  assert.equal(second.status, 1, second.stderr);
  assert.match(second.stderr, new RegExp(`${out} is in use by another ntsnet fit \\(process ${first.child.pid}, started .*\\)\\. Two runs must not write the same folder`));
  const done = await first.done;
  assert.equal(done.status, 0, first.out.stderr);
  const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { config: { train: { epochs: number } }; training: { status: string } };
  assert.equal(cfg.config.train.epochs, 6, 'the first run\'s checkpoint, not the second\'s');
  assert.equal(cfg.training.status, 'complete');
  assert.ok(!existsSync(path.join(out, '.ntsnet.lock')), 'lock released');
});

test('folder dataset with a.jpg + a.png photos: fit and data check stop with the same message; real masks still pair', async () => {
  const base = makeTempDir('photos');
  const good = path.join(base, 'good');
  for (let i = 0; i < 6; i++) {
    await writeStripedImage(path.join(good, `p${i}.png`), i, { width: 40, height: 40 });
    await sharp(path.join(good, `p${i}.png`)).jpeg().toFile(path.join(good, `p${i}.jpg`));
  }
  const bad = path.join(base, 'scratch');
  await writeStripedImage(path.join(bad, 's0.png'), 30, { width: 40, height: 40 });
  await sharp(path.join(bad, 's0.png')).jpeg().toFile(path.join(bad, 's0.jpg'));
  writeFileSync(path.join(bad, 's0.png'), await sharp(Buffer.alloc(40 * 40).fill(255, 0, 200), { raw: { width: 40, height: 40, channels: 1 } }).png().toBuffer()); // a genuine mask
  const flags = ['--normal', good, '--abnormal', bad];
  const msg = /good\/p0\.png shares its stem with .*good\/p0\.jpg, so it would be taken as that image's mask, but it does not look like a mask: it is a colour image/;
  const c = runCli(['data', 'check', ...flags]);
  assert.equal(c.status, 1);
  assert.match(c.stderr, msg);
  const f = runCli(['fit', ...flags, '--out', path.join(base, 'run'), ...FAST_FIT]);
  assert.equal(f.status, 1, f.stderr);
  assert.match(f.stderr, msg);
  assert.doesNotMatch(f.stderr, /epoch 1/);
  // Renamed photos: the dataset is accepted, and the genuine mask beside s0.jpg is still its mask.
  for (let i = 0; i < 6; i++) writeFileSync(path.join(good, `p${i}_2.png`), readFileSync(path.join(good, `p${i}.png`)));
  for (let i = 0; i < 6; i++) writeFileSync(path.join(good, `p${i}.png`), ''), (await import('node:fs')).rmSync(path.join(good, `p${i}.png`));
  const ok = runCli(['data', 'check', ...flags]);
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /scratch +1 images, 1 with mask/);
  assert.match(ok.stdout, /train \d+, val \d+, test \d+/);
  assert.match(ok.stdout, /Images: 13 readable/);
});
