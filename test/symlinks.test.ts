/**
 * Issue 13, item 1: symbolic link loops in a `predict` folder. The folder is walked by real path: each file once,
 * loops (`self -> .`, `up -> ..`) detected and reported, no hang.
 */
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { collectImages } from '../src/engine/predict.js';
import { makeTempDir, writeStripedImage } from './helpers.js';
import { runCli, tinyCheckpoint } from './cli_helpers.js';

async function loopFolder(): Promise<{ dir: string; outside: string }> {
  const base = makeTempDir('loops');
  const dir = path.join(base, 'inspect me');
  for (let i = 0; i < 3; i++) await writeStripedImage(path.join(dir, `${i}.png`), i, { width: 40, height: 40 });
  await writeStripedImage(path.join(dir, 'sub', '3.png'), 3, { width: 40, height: 40 });
  const outside = path.join(base, 'outside.png');
  await writeStripedImage(outside, 9, { width: 40, height: 40 });
  symlinkSync('.', path.join(dir, 'self'));
  symlinkSync('..', path.join(dir, 'up'));
  symlinkSync('../..', path.join(dir, 'sub', 'upup'));
  symlinkSync('0.png', path.join(dir, 'alias.png'));
  mkdirSync(path.join(dir, 'empty'));
  symlinkSync(path.join(dir, 'sub'), path.join(dir, 'sub-again'));
  return { dir, outside };
}

test('collectImages: links to . / .. / ../.. are loops (reported, not followed); a file or folder reached twice is listed once', async () => {
  const { dir } = await loopFolder();
  const warnings: string[] = [];
  const files = await collectImages(dir, warnings);
  assert.deepEqual(files.map((f) => path.relative(dir, f)), ['0.png', '1.png', '2.png', path.join('sub', '3.png')]);
  for (const l of ['self', 'up', path.join('sub', 'upup')]) assert.ok(warnings.some((w) => w.startsWith('symbolic link loop') && w.includes(path.join(dir, l))), `loop ${l} reported: ${warnings.join('\n')}`);
  assert.ok(warnings.some((w) => w.includes('alias.png') && w.includes('same file')), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('sub-again') && w.includes('same folder')), warnings.join('\n'));
});

test('ntsnet predict on a folder with self -> . and up -> .. finishes quickly, scores each of the 4 images once, reports the loops', async () => {
  const { checkpoint } = await tinyCheckpoint();
  const { dir } = await loopFolder();
  const out = path.join(makeTempDir('loops-out'), 'inspect');
  const t0 = Date.now();
  const r = runCli(['predict', dir, '--checkpoint', checkpoint, '--out', out], { timeoutMs: 60_000 });
  assert.equal(r.signal, null, `predict was killed (hang?) after ${Date.now() - t0} ms; stderr:\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').slice(1);
  assert.equal(lines.length, 4, r.stdout);
  assert.ok(/warning: symbolic link loop: .*self/.test(r.stderr) && /warning: symbolic link loop: .*up/.test(r.stderr), r.stderr);
});

test('datasets read each file once: a linked duplicate is dropped before the split, a linked training image never reaches the test split', async () => {
  const { readDataset } = await import('../src/data/dataset.js');
  const { realpathSync, statSync } = await import('node:fs');
  const { makeMvtecCategory } = await import('./helpers.js');
  // MVTec layout: train/good/dup.png -> 000.png, test/good/leak.png -> ../../train/good/001.png
  const cat = await makeMvtecCategory(path.join(makeTempDir('links-mvtec'), 'widget'), { train: 6, good: 2, defective: 1, width: 32, height: 32, half: 4 });
  symlinkSync('000.png', path.join(cat, 'train', 'good', 'dup.png'));
  symlinkSync('../../train/good/001.png', path.join(cat, 'test', 'good', 'leak.png'));
  linkSync(path.join(cat, 'train', 'good', '002.png'), path.join(cat, 'test', 'good', 'hard.png')); // a hard link too
  const ds = await readDataset(cat, { valFraction: 0.2, seed: 1 });
  const all = [...ds.train, ...ds.val, ...ds.test.map((t) => t.path)].map((p) => `${statSync(p).dev}:${statSync(p).ino}`);
  assert.equal(new Set(all).size, all.length, 'every real file once');
  assert.equal(ds.train.length + ds.val.length, 6);
  assert.ok(!ds.test.some((t) => t.path.endsWith('leak.png') || t.path.endsWith('hard.png')));
  assert.ok(ds.warnings.some((w) => /dup\.png is the same file as .*000\.png \(a link\): read once/.test(w)), ds.warnings.join('\n'));
  assert.ok(ds.warnings.some((w) => /leak\.png is the same file as .*001\.png .*a training image; left out of the test split/.test(w)), ds.warnings.join('\n'));

  // Folder dataset: a link beside its target must not be split into train and test as two images.
  const dir = path.join(makeTempDir('links-folder'), 'normal');
  for (let i = 0; i < 10; i++) await writeStripedImage(path.join(dir, `${String(i).padStart(3, '0')}.png`), i, { width: 32, height: 32 });
  for (let i = 0; i < 10; i++) symlinkSync(`${String(i).padStart(3, '0')}.png`, path.join(dir, `same_as_${i}.png`));
  for (const seed of [1, 2, 3, 4]) {
    const f = await readDataset({ normal: [dir], abnormal: [], split: { train: 0.6, val: 0.2, test: 0.2 }, seed }, { valFraction: 0.2, seed });
    const reals = [...f.train, ...f.val, ...f.test.map((t) => t.path)].map((p) => realpathSync(p));
    assert.equal(reals.length, 10, `seed ${seed}: 10 distinct images`);
    assert.equal(new Set(reals).size, 10);
  }

  // The same file as normal and as defective: refused, naming both.
  const abn = path.join(path.dirname(dir), 'scratch');
  mkdirSync(abn);
  symlinkSync(path.join(dir, '003.png'), path.join(abn, 'x.png'));
  await assert.rejects(readDataset({ normal: [dir], abnormal: [abn], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 }, { valFraction: 0.2, seed: 1 }), /Defective image .*x\.png is the same file as the normal image .*003\.png/);
});
