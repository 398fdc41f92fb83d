import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  DataError,
  hasMasks,
  holdOut,
  IMAGENET_MEAN,
  IMAGENET_STD,
  loadImage,
  loadImageRgb8,
  loadMask,
  loadMaskFull,
  naturalCompare,
  readMvtecCategory,
} from '../src/data/index.js';
import type { MvtecCategory } from '../src/data/index.js';
import { Rng, shuffle, uniform } from '../src/util/rng.js';
import { makeTempDir, sharedDataPath } from './helpers.js';

const norm = (v: number, c: number): number => (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;

async function solidPng(file: string, w: number, h: number, rgb: [number, number, number]): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(file);
}

async function rawPng(file: string, w: number, h: number, channels: 1 | 2 | 3 | 4, px: number[]): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  let img = sharp(Buffer.from(px), { raw: { width: w, height: h, channels } });
  if (channels <= 2) img = img.toColourspace('b-w'); // otherwise sharp writes greyscale input as RGB
  await img.png().toFile(file);
  assert.equal((await sharp(file).metadata()).channels, channels, `${file}: PNG written with ${channels} channel(s)`);
}

/** A small MVTec-layout category with decoys (.DS_Store, notes.txt, Thumbs.db). */
async function makeCategory(withGroundTruth: boolean): Promise<string> {
  const root = path.join(makeTempDir('mvtec'), 'widget');
  for (const n of ['000', '001', '002']) await solidPng(path.join(root, 'train', 'good', `${n}.png`), 16, 16, [200, 200, 200]);
  for (const n of ['000', '001']) await solidPng(path.join(root, 'test', 'good', `${n}.png`), 16, 16, [200, 200, 200]);
  for (const n of ['000', '001']) {
    await solidPng(path.join(root, 'test', 'crack', `${n}.png`), 16, 16, [90, 10, 10]);
    if (withGroundTruth) await rawPng(path.join(root, 'ground_truth', 'crack', `${n}_mask.png`), 2, 2, 1, [0, 255, 0, 0]);
  }
  writeFileSync(path.join(root, 'train', 'good', '.DS_Store'), 'junk');
  writeFileSync(path.join(root, 'train', 'good', 'notes.txt'), 'not an image');
  writeFileSync(path.join(root, 'test', '.DS_Store'), 'junk');
  writeFileSync(path.join(root, 'test', 'crack', 'Thumbs.db'), 'junk');
  if (withGroundTruth) writeFileSync(path.join(root, 'ground_truth', 'crack', 'notes.txt'), 'x');
  return root;
}

test('readMvtecCategory reads the layout exactly, skipping hidden and non-image files', async () => {
  const root = await makeCategory(true);
  const cat = await readMvtecCategory(root);
  const p = (...parts: string[]): string => path.join(root, ...parts);
  const expected: MvtecCategory = {
    name: 'widget',
    root,
    train: [p('train/good/000.png'), p('train/good/001.png'), p('train/good/002.png')],
    test: [
      { path: p('test/good/000.png'), label: 0, defectType: 'good' },
      { path: p('test/good/001.png'), label: 0, defectType: 'good' },
      { path: p('test/crack/000.png'), label: 1, defectType: 'crack', maskPath: p('ground_truth/crack/000_mask.png') },
      { path: p('test/crack/001.png'), label: 1, defectType: 'crack', maskPath: p('ground_truth/crack/001_mask.png') },
    ],
    warnings: [],
  };
  assert.deepEqual(cat, expected);
  assert.equal(hasMasks(cat.test), true);
  // Relative roots resolve to absolute paths.
  const rel = path.relative(process.cwd(), root);
  assert.deepEqual(await readMvtecCategory(rel), expected);
});

test('readMvtecCategory without ground_truth: maskPath undefined, hasMasks false', async () => {
  const root = await makeCategory(false);
  const cat = await readMvtecCategory(root);
  assert.equal(cat.test.length, 4);
  assert.ok(cat.test.every((t) => t.maskPath === undefined && !('maskPath' in t)));
  assert.equal(hasMasks(cat.test), false);
  assert.deepEqual(cat.warnings, []);
  assert.equal(hasMasks(cat.test.filter((t) => t.label === 0)), false, 'no anomalous items: no pixel metrics');
});

test('readMvtecCategory warns about a missing mask when ground_truth exists', async () => {
  const root = await makeCategory(true);
  await solidPng(path.join(root, 'test', 'crack', '002.png'), 16, 16, [1, 2, 3]);
  const cat = await readMvtecCategory(root);
  assert.equal(cat.test.length, 5);
  assert.equal(cat.test[4]!.maskPath, undefined);
  assert.equal(hasMasks(cat.test), false);
  assert.equal(cat.warnings.length, 1);
  assert.match(cat.warnings[0]!, /No mask for .*002\.png \(expected .*002_mask\.png\)/);
});

test('readMvtecCategory errors name the folder and say what is expected', async () => {
  const base = makeTempDir('bad');
  await assert.rejects(readMvtecCategory(path.join(base, 'nope')), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /nope does not exist/);
    return true;
  });
  mkdirSync(path.join(base, 'cat', 'train', 'good'), { recursive: true });
  await assert.rejects(readMvtecCategory(path.join(base, 'cat')), /cat is not an MVTec AD category folder: expected train\/good and test\/ \(missing: test\/\)/);
  // Pointing at the dataset root suggests a category.
  const dsRoot = path.join(base, 'dataset');
  await makeCategoryAt(path.join(dsRoot, 'widget'));
  await assert.rejects(readMvtecCategory(dsRoot), /dataset root holding categories \(widget\)/);
  // Empty train/good.
  mkdirSync(path.join(base, 'empty', 'train', 'good'), { recursive: true });
  mkdirSync(path.join(base, 'empty', 'test', 'good'), { recursive: true });
  writeFileSync(path.join(base, 'empty', 'train', 'good', 'readme.txt'), 'x');
  await assert.rejects(readMvtecCategory(path.join(base, 'empty')), /No training images in .*empty\/train\/good/);
});

async function makeCategoryAt(root: string): Promise<void> {
  await solidPng(path.join(root, 'train', 'good', '0.png'), 4, 4, [0, 0, 0]);
  await solidPng(path.join(root, 'test', 'good', '0.png'), 4, 4, [0, 0, 0]);
}

test('naturalCompare orders numbers by value and is locale independent', () => {
  const names = ['10.png', '2.png', '1.png', 'b.png', 'a10.png', 'a9.png', '002.png', 'A.png'];
  assert.deepEqual([...names].sort(naturalCompare), ['1.png', '002.png', '2.png', '10.png', 'A.png', 'a9.png', 'a10.png', 'b.png']);
});

test('loadImage: constant colour gives hand-computed ImageNet-normalised values, HWC float32', async () => {
  const dir = makeTempDir('img');
  const file = path.join(dir, 'const.png');
  await solidPng(file, 37, 23, [255, 128, 0]);
  const x = await loadImage(file, 8);
  assert.ok(x instanceof Float32Array);
  assert.equal(x.length, 8 * 8 * 3);
  // (255/255 - 0.485)/0.229, (128/255 - 0.456)/0.224, (0/255 - 0.406)/0.225
  const expected = [2.2489082969432315, 0.20518207282913165, -1.8044444444444445];
  for (let i = 0; i < 64; i++) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(x[i * 3 + c]! - expected[c]!) < 1e-5, `pixel ${i} channel ${c}: ${x[i * 3 + c]}`);
  }
});

test('loadImage: greyscale, RGBA, palette and 16-bit inputs become 3-channel 8-bit RGB', async () => {
  const dir = makeTempDir('img');
  const grey = path.join(dir, 'grey.png');
  await rawPng(grey, 2, 2, 1, [100, 100, 100, 100]);
  assert.equal((await sharp(grey).metadata()).channels, 1);
  const g = await loadImage(grey, 4);
  assert.equal(g.length, 4 * 4 * 3);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(g[c]! - norm(100, c)) < 1e-5);

  // RGBA: opaque pixels keep their colour, fully transparent ones become black (flattened onto black).
  const rgba = path.join(dir, 'rgba.png');
  await rawPng(rgba, 2, 1, 4, [10, 20, 30, 255, 200, 200, 200, 0]);
  assert.equal((await sharp(rgba).metadata()).channels, 4);
  const a = await loadImageRgb8(rgba);
  assert.deepEqual([a.width, a.height], [2, 1]);
  assert.deepEqual(Array.from(a.data), [10, 20, 30, 0, 0, 0]);
  const an = await loadImage(rgba, 2);
  assert.equal(an.length, 2 * 2 * 3);

  // Greyscale + alpha (2 channels).
  const ga = path.join(dir, 'ga.png');
  await rawPng(ga, 2, 1, 2, [100, 255, 50, 0]);
  assert.deepEqual(Array.from((await loadImageRgb8(ga)).data), [100, 100, 100, 0, 0, 0]);

  // Palette PNG.
  const pal = path.join(dir, 'pal.png');
  await sharp(Buffer.from([255, 0, 0, 0, 0, 255]), { raw: { width: 2, height: 1, channels: 3 } }).png({ palette: true }).toFile(pal);
  assert.equal((await sharp(pal).metadata()).isPalette, true);
  assert.deepEqual(Array.from((await loadImageRgb8(pal)).data), [255, 0, 0, 0, 0, 255]);

  // 16-bit RGB PNG -> 8 bit.
  const rgb16 = path.join(dir, 'rgb16.png');
  const u = new Uint16Array([65535, 32896, 0, 65535, 32896, 0]);
  await sharp(u, { raw: { width: 2, height: 1, channels: 3 } }).toColourspace('rgb16').png().toFile(rgb16);
  assert.equal((await sharp(rgb16).metadata()).depth, 'ushort');
  assert.deepEqual(Array.from((await loadImageRgb8(rgb16)).data), [255, 128, 0, 255, 128, 0]);
});

test('loadImageRgb8 applies EXIF orientation', async () => {
  const dir = makeTempDir('img');
  const file = path.join(dir, 'rot.jpg');
  // 20 wide x 10 high, stored with orientation 6 (rotate 90 degrees clockwise to display).
  await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 50, g: 100, b: 150 } } }).jpeg().withMetadata({ orientation: 6 }).toFile(file);
  assert.equal((await sharp(file).metadata()).orientation, 6);
  const img = await loadImageRgb8(file);
  assert.deepEqual([img.width, img.height], [10, 20]);
  assert.equal(img.data.length, 10 * 20 * 3);
  const resized = await loadImageRgb8(file, 6);
  assert.deepEqual([resized.width, resized.height, resized.data.length], [6, 6, 108]);
});

test('loadMask: binarises with value > 0 and resizes nearest-neighbour', async () => {
  const dir = makeTempDir('mask');
  const m = path.join(dir, 'm.png');
  await rawPng(m, 4, 1, 1, [0, 1, 128, 255]);
  const full = await loadMaskFull(m);
  assert.deepEqual([full.width, full.height], [4, 1]);
  assert.deepEqual(Array.from(full.data), [0, 1, 1, 1]);
  // 2x2 -> 4x4 nearest.
  const m2 = path.join(dir, 'm2.png');
  await rawPng(m2, 2, 2, 1, [0, 255, 128, 0]);
  const r = await loadMask(m2, 4);
  assert.ok(r instanceof Uint8Array);
  assert.deepEqual(Array.from(r), [0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0]);
  // 4x4 -> 2x2 samples pixel centres (rows/cols 1 and 3).
  const m3 = path.join(dir, 'm3.png');
  await rawPng(m3, 4, 4, 1, [0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
  assert.deepEqual(Array.from(await loadMask(m3, 2)), [1, 0, 0, 1]);
  // 16-bit greyscale mask: tiny values still count (no lossy 8-bit conversion first).
  const m16 = path.join(dir, 'm16.png');
  await sharp(new Uint16Array([0, 1, 256, 65535]), { raw: { width: 4, height: 1, channels: 1 } }).toColourspace('grey16').png().toFile(m16);
  assert.equal((await sharp(m16).metadata()).depth, 'ushort');
  assert.deepEqual(Array.from((await loadMaskFull(m16)).data), [0, 1, 1, 1]);
  // RGB and RGBA masks: any channel > 0 counts; transparent pixels are 0.
  const rgb = path.join(dir, 'rgb.png');
  await rawPng(rgb, 3, 1, 3, [0, 0, 0, 0, 0, 1, 255, 0, 0]);
  assert.deepEqual(Array.from(await loadMask(rgb, 3).then((x) => x.slice(0, 3))), [0, 1, 1]);
  const rgba = path.join(dir, 'rgba.png');
  await rawPng(rgba, 2, 1, 4, [255, 255, 255, 0, 255, 255, 255, 255]);
  assert.deepEqual(Array.from((await loadMaskFull(rgba)).data), [0, 1]);
});

test('image loaders: errors name the file and say what to do', async () => {
  const dir = makeTempDir('err');
  const missing = path.join(dir, 'missing.png');
  await assert.rejects(loadImage(missing, 8), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.path, missing);
    assert.match(e.message, /Image file not found: .*missing\.png/);
    return true;
  });
  await assert.rejects(loadMask(missing, 8), /Mask file not found: .*missing\.png/);
  const empty = path.join(dir, 'empty.png');
  writeFileSync(empty, '');
  await assert.rejects(loadImage(empty, 8), /empty\.png is empty \(0 bytes\).*Copy it again or delete it/);
  const text = path.join(dir, 'notes.png');
  writeFileSync(text, 'this is not an image');
  await assert.rejects(loadImage(text, 8), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /Could not decode image .*notes\.png: .*not an image in a supported format/);
    return true;
  });
  await assert.rejects(loadMask(text, 8), /Could not decode mask .*notes\.png/);
  await assert.rejects(loadImage(dir, 8), /is not a regular file/);
  await assert.rejects(loadImage(missing, 0), RangeError);
});

test('holdOut is seeded, deterministic and keeps at least one training item', () => {
  const items = Array.from({ length: 20 }, (_, i) => `img${i}`);
  const a = holdOut(items, 0.25, 42);
  const b = holdOut(items, 0.25, 42);
  assert.deepEqual(a, b);
  assert.equal(a.val.length, 5);
  assert.equal(a.train.length, 15);
  assert.deepEqual([...a.train, ...a.val].sort(), [...items].sort());
  // Order is preserved inside each part.
  assert.deepEqual(a.train, items.filter((x) => a.train.includes(x)));
  const c = holdOut(items, 0.25, 43);
  assert.notDeepEqual(c.val, a.val);
  assert.deepEqual(holdOut(items, 0, 1), { train: items, val: [] });
  assert.deepEqual(holdOut(['x', 'y'], 0.01, 1).val.length, 1, 'fraction > 0 holds out at least one');
  assert.equal(holdOut(['x', 'y', 'z'], 0.99, 1).train.length, 1, 'at least one stays in train');
  assert.throws(() => holdOut(['only'], 0.2, 1), /Only 1 normal training image\(s\): a validation image cannot be held out and training needs at least 2\. Add normal images/);
  assert.throws(() => holdOut(items, 1, 1), /fraction must be in \[0, 1\)/);
  assert.throws(() => holdOut([], 0.1, 1), /no items/);
});

test('Rng: deterministic, uniform in range, shuffle is a permutation', () => {
  const r1 = new Rng(5);
  const r2 = new Rng(5);
  for (let i = 0; i < 100; i++) assert.equal(r1.next(), r2.next());
  assert.notEqual(new Rng(5).next(), new Rng(6).next());
  const u = uniform(10000, 3, -2, 3);
  let mean = 0;
  for (const v of u) {
    assert.ok(v >= -2 && v < 3);
    mean += v / u.length;
  }
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  const s = shuffle([1, 2, 3, 4, 5, 6, 7, 8], 9);
  assert.deepEqual(s, shuffle([1, 2, 3, 4, 5, 6, 7, 8], 9));
  assert.deepEqual([...s].sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
  const counts = new Array<number>(5).fill(0);
  const r = new Rng(11);
  for (let i = 0; i < 5000; i++) counts[r.int(5)]!++;
  assert.ok(counts.every((c) => c > 900 && c < 1100), `int(5) counts ${counts}`);
  assert.throws(() => new Rng(NaN), RangeError);
});

test('real data: MVTec AD bottle has 209 train, 83 test and 63 masks', async (t) => {
  const root = sharedDataPath('mvtec_ad', 'bottle');
  if (root === undefined) {
    t.skip('shared data mvtec_ad/bottle not found (../shared/data or $NTSNET_SHARED_DATA); skipping');
    return;
  }
  const cat = await readMvtecCategory(root);
  assert.equal(cat.name, 'bottle');
  assert.equal(cat.train.length, 209);
  assert.equal(cat.test.length, 83);
  assert.equal(cat.test.filter((x) => x.maskPath !== undefined).length, 63);
  assert.equal(cat.test.filter((x) => x.label === 0).length, 20);
  assert.deepEqual([...new Set(cat.test.map((x) => x.defectType))], ['good', 'broken_large', 'broken_small', 'contamination']);
  assert.equal(hasMasks(cat.test), true);
  assert.deepEqual(cat.warnings, []);
  assert.equal(path.basename(cat.train[0]!), '000.png');
  assert.equal(path.basename(cat.train[208]!), '208.png');
  const img = await loadImage(cat.train[0]!, 64);
  assert.equal(img.length, 64 * 64 * 3);
  const defective = cat.test.find((x) => x.label === 1)!;
  const mask = await loadMask(defective.maskPath!, 64);
  const ones = mask.reduce((s, v) => s + v, 0);
  assert.ok(ones > 0 && ones < mask.length, `mask has ${ones} anomalous pixels of ${mask.length}`);
});

test('mask look-alike: a mostly black grey photo is not a mask; a resized (soft-edged) mask and real dataset masks are', async (t) => {
  const { notMaskReason } = await import('../src/data/maskLike.js');
  const dir = makeTempDir('masklike');
  // A grey "photo": smooth shading with texture, 62 % of it pure black (dark background).
  const w = 120, h = 100, photo = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) photo[y * w + x] = x < 0.62 * w ? 0 : 40 + ((x * 7 + y * 3) % 90) + (y % 5) * 10;
  await sharp(photo, { raw: { width: w, height: h, channels: 1 } }).png().toFile(path.join(dir, 'dark.png'));
  assert.match((await notMaskReason(path.join(dir, 'dark.png')))!, /of its intermediate pixels are more than 2 px from any pixel at 0 or at its maximum/);
  // A binary disc mask downscaled 4x with a linear filter: soft ramps at the edge only.
  const big = Buffer.alloc(400 * 400);
  for (let y = 0; y < 400; y++) for (let x = 0; x < 400; x++) big[y * 400 + x] = (x - 200) ** 2 + (y - 180) ** 2 < 90 ** 2 ? 255 : 0;
  await sharp(big, { raw: { width: 400, height: 400, channels: 1 } }).resize(100, 100, { kernel: 'linear' }).png().toFile(path.join(dir, 'soft.png'));
  const soft = (await sharp(path.join(dir, 'soft.png')).raw().toBuffer()).filter((v) => v !== 0 && v !== 255).length;
  assert.ok(soft > 50, `the fixture has soft edges (${soft} px)`);
  assert.equal(await notMaskReason(path.join(dir, 'soft.png')), undefined);
  const gt = sharedDataPath('mvtec_ad', 'bottle', 'ground_truth', 'broken_large');
  if (!gt) { t.diagnostic('../shared/data not present: real-mask half skipped'); return; }
  const { readdirSync } = await import('node:fs');
  for (const f of readdirSync(gt).slice(0, 5)) assert.equal(await notMaskReason(path.join(gt, f)), undefined, f);
});
