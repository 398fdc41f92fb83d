import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { makeMvtecCategory, makeTempDir, repoRoot } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** A small MVTec-layout category: 10 train, 3 good + 3 defective test images with masks. */
const makeCategory = (root: string): Promise<string> => makeMvtecCategory(root, { train: 10, good: 3, defective: 3 });

test('CLI: tiny fit (2 epochs, 64 px, random teacher) + test writes metrics in [0, 1]; predict writes overlays; info prints counts', { timeout: 300_000 }, async () => {
  const tmp = makeTempDir('cli');
  const data = path.join(tmp, 'widget');
  await makeCategory(data);
  const out = path.join(tmp, 'run');
  const fit = await run(process.execPath, [cli(), 'fit', '--data', data, '--out', out, '--preset', 'tiny', '--test'], { maxBuffer: 1 << 24 });
  assert.match(fit.stdout, /\| widget \| \d+\.\d \| \d+\.\d \|/);
  for (const f of ['model.safetensors', 'config.json', 'results.json', 'metrics.md']) assert.ok(existsSync(path.join(out, f)), `${f} written`);
  const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { results: { imageAuroc: number; pixelAuroc: number; images: unknown[] }[] };
  const r = res.results[0]!;
  for (const v of [r.imageAuroc, r.pixelAuroc]) assert.ok(typeof v === 'number' && v >= 0 && v <= 1, `metric ${v} in [0, 1]`);
  assert.equal(r.images.length, 6);
  const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { config: { train: { epochs: number; seed: number } }; split: { files: { train: string[]; val: string[]; test: string[] } } };
  assert.equal(cfg.config.train.epochs, 2);
  assert.ok([...cfg.split.files.train, ...cfg.split.files.test].every((p) => !path.isAbsolute(p)), 'no absolute paths in the checkpoint');
  assert.equal(cfg.split.files.train.length + (cfg.split.files.val?.length ?? 0), 10);
  // nothing written into the dataset
  assert.deepEqual(readdirSync(data).sort(), ['ground_truth', 'test', 'train']);

  const overlays = path.join(tmp, 'overlays');
  const pred = await run(process.execPath, [cli(), 'predict', path.join(data, 'test'), '--checkpoint', out, '--out', overlays], { maxBuffer: 1 << 24 });
  const lines = pred.stdout.trim().split('\n').slice(1);
  assert.equal(lines.length, 6);
  for (const l of lines) assert.ok(Number.isFinite(Number(l.split('\t')[1])), l);
  assert.ok(existsSync(path.join(overlays, 'spot', '000_overlay.png')));
  const meta = await sharp(path.join(overlays, 'spot', '000_overlay.png')).metadata();
  assert.equal(meta.width, 96);
  assert.equal(meta.height, 80);

  const info = await run(process.execPath, [cli(), 'info', '--image-size', '64'], { maxBuffer: 1 << 24 });
  assert.match(info.stdout, /teacher parameters: 2782784 /);
  assert.match(info.stdout, /student parameters: \d+ /);
});

test('CLI: refuses an output folder inside the dataset and names it', { timeout: 120_000 }, async () => {
  const tmp = makeTempDir('cli');
  const data = path.join(tmp, 'widget');
  await makeCategory(data);
  await assert.rejects(run(process.execPath, [cli(), 'fit', '--data', data, '--out', path.join(data, 'out'), '--preset', 'tiny']), (e: { stderr: string }) => {
    assert.match(e.stderr, /inside the dataset folder/);
    return true;
  });
  assert.deepEqual(readdirSync(data).sort(), ['ground_truth', 'test', 'train']);
});

test('CLI: never loses user files: existing checkpoint, --out that is a file, export targets; early, clear option errors', { timeout: 300_000 }, async () => {
  const tmp = makeTempDir('cli');
  const data = path.join(tmp, 'widget');
  await makeCategory(data);
  const out = path.join(tmp, 'run');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', out, '--preset', 'tiny', '--epochs', '1']);
  const before = readFileSync(path.join(out, 'model.safetensors'));
  const fails = async (args: string[], re: RegExp): Promise<void> => {
    await assert.rejects(run(process.execPath, [cli(), ...args]), (e: { stderr: string }) => {
      assert.match(e.stderr, re);
      return true;
    });
  };
  await fails(['fit', '--data', data, '--out', out, '--preset', 'tiny'], /already holds a checkpoint.*--force/);
  assert.deepEqual(readFileSync(path.join(out, 'model.safetensors')), before, 'checkpoint untouched');
  const file = path.join(tmp, 'notes.txt');
  writeFileSync(file, 'mine');
  await fails(['fit', '--data', data, '--out', file, '--preset', 'tiny'], /is an existing file, not a folder/);
  await fails(['fit', '--data', data, '--normal', path.join(data, 'train/good'), '--out', path.join(tmp, 'r2'), '--preset', 'tiny'], /either --data .* or --normal/);
  await fails(['fit', '--data', data, '--out', path.join(tmp, 'r3'), '--image-size', 'abc'], /argument 'abc' is invalid. expected a number/);
  await fails(['fit', '--data', data, '--out', path.join(tmp, 'r3'), '--image-size', '50'], /multiple of 16.*e\.g\. 48 or 64/);
  await fails(['export', out, '--format', 'onnx', '--out', file], /already exists.*--force/);
  assert.equal(readFileSync(file, 'utf8'), 'mine');
  // a single image: its own folder is not a dataset, so writing next to it is fine
  const single = path.join(tmp, 'photo.png');
  writeFileSync(single, readFileSync(path.join(data, 'test/spot/000.png')));
  await run(process.execPath, [cli(), 'predict', single, '--checkpoint', out, '--out', path.join(tmp, 'inspect')]);
  assert.ok(existsSync(path.join(tmp, 'inspect', 'photo_overlay.png')));
  // --force replaces the checkpoint and removes the stale results
  writeFileSync(path.join(out, 'results.json'), '{}');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', out, '--preset', 'tiny', '--epochs', '1', '--seed', '7', '--force']);
  assert.ok(!existsSync(path.join(out, 'results.json')), 'stale results removed');
  assert.notDeepEqual(readFileSync(path.join(out, 'model.safetensors')), before);
});
