/**
 * Every family of bad or unusual input, each generated here with sharp in a temporary folder:
 * channel modes and encodings, mask value conventions, geometry, folder layout, degenerate files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  applySavedSplit,
  checkDataset,
  DataError,
  formatCheckReport,
  IMAGENET_MEAN,
  IMAGENET_STD,
  loadImage,
  loadImageRgb8,
  loadMask,
  loadMaskForImage,
  loadMaskFull,
  maskAlignment,
  probeImageFile,
  readFolderDataset,
  readMvtecCategory,
  splitToJson,
} from '../src/data/index.js';
import type { FolderSpec } from '../src/data/index.js';
import { makeTempDir } from './helpers.js';

const norm = (v: number, c: number): number => (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;

/** Writes raw 8-bit pixels as PNG with exactly `channels` channels. */
async function rawPng(file: string, w: number, h: number, channels: 1 | 2 | 3 | 4, px: ArrayLike<number>): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  let img = sharp(Buffer.from(Array.from(px)), { raw: { width: w, height: h, channels } });
  if (channels <= 2) img = img.toColourspace('b-w');
  await img.png().toFile(file);
  assert.equal((await sharp(file).metadata()).channels, channels);
}

/** A constant grey image (PNG, or JPEG when the name ends with .jpg). */
async function grey(file: string, w: number, h: number, v = 128): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const s = sharp(Buffer.alloc(w * h, v), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w');
  await (file.endsWith('.jpg') ? s.jpeg({ quality: 95 }) : s.png()).toFile(file);
}

/** A noisy RGB image (large enough that cutting it in half breaks the pixel data, not only the header). */
async function noisy(file: string, w = 64, h = 48): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const b = Buffer.alloc(w * h * 3);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7919 + (i >> 3) * 31) % 251;
  const s = sharp(b, { raw: { width: w, height: h, channels: 3 } });
  await (file.endsWith('.jpg') ? s.jpeg() : s.png()).toFile(file);
}

/** A `w x h` single-channel PNG mask, 255 inside the top-left quarter. */
async function quarterMask(file: string, w: number, h: number): Promise<void> {
  const px = new Array<number>(w * h).fill(0);
  for (let y = 0; y < h / 2; y++) for (let x = 0; x < w / 2; x++) px[y * w + x] = 255;
  await rawPng(file, w, h, 1, px);
}

function truncate(file: string, keep = 0.5): void {
  const b = readFileSync(file);
  writeFileSync(file, b.subarray(0, Math.floor(b.length * keep)));
}

/** Minimal MVTec category: 4 train, 2 good test, defective `crack` images 000/001 (+ masks unless disabled). */
async function mvtec(root: string, opts: { masks?: boolean } = {}): Promise<void> {
  for (const n of ['000', '001', '002', '003']) await grey(path.join(root, 'train', 'good', `${n}.png`), 40, 40, 100);
  for (const n of ['000', '001']) await grey(path.join(root, 'test', 'good', `${n}.png`), 40, 40, 100);
  for (const n of ['000', '001']) {
    await grey(path.join(root, 'test', 'crack', `${n}.png`), 40, 40, 200);
    if (opts.masks ?? true) await quarterMask(path.join(root, 'ground_truth', 'crack', `${n}_mask.png`), 40, 40);
  }
}

// ---------------------------------------------------------------- channels and encodings

test('channels/encodings: grey, grey+alpha, RGB, RGBA, palette, 16-bit PNG and 16-bit TIFF load as the same 3-channel RGB', async () => {
  const dir = makeTempDir('enc');
  const W = 32;
  const H = 2;
  // Reference: x = i / 31 on a 32-step ramp; 8-bit value round(255 x), 16-bit value round(65535 x).
  const x = Array.from({ length: W * H }, (_, i) => (i % W) / (W - 1));
  const v8 = x.map((t) => Math.round(255 * t));
  const v16 = x.map((t) => Math.round(65535 * t));
  const files: Record<string, string> = {};
  const f = (n: string): string => (files[n] = path.join(dir, n));
  await rawPng(f('grey.png'), W, H, 1, v8);
  await rawPng(f('grey_alpha.png'), W, H, 2, v8.flatMap((v) => [v, 255]));
  await rawPng(f('rgb.png'), W, H, 3, v8.flatMap((v) => [v, v, v]));
  await rawPng(f('rgba.png'), W, H, 4, v8.flatMap((v) => [v, v, v, 255]));
  await sharp(Buffer.from(v8.flatMap((v) => [v, v, v])), { raw: { width: W, height: H, channels: 3 } }).png({ palette: true, colours: 256, dither: 0 }).toFile(f('palette.png'));
  await sharp(new Uint16Array(v16), { raw: { width: W, height: H, channels: 1 } }).toColourspace('grey16').png().toFile(f('grey16.png'));
  await sharp(new Uint16Array(v16.flatMap((v) => [v, v, v])), { raw: { width: W, height: H, channels: 3 } }).toColourspace('rgb16').png().toFile(f('rgb16.png'));
  await sharp(new Uint16Array(v16.flatMap((v) => [v, v, v])), { raw: { width: W, height: H, channels: 3 } }).toColourspace('rgb16').tiff({ compression: 'lzw' }).toFile(f('rgb16.tif'));
  await sharp(new Uint16Array(v16), { raw: { width: W, height: H, channels: 1 } }).toColourspace('grey16').tiff({ compression: 'lzw' }).toFile(f('grey16.tif'));

  // The files really are in the intended modes.
  const modes = await Promise.all(Object.entries(files).map(async ([n, p]) => {
    const m = await probeImageFile(p);
    return [n, m.format, m.channels, m.bitDepth, m.isPalette, m.hasAlpha];
  }));
  assert.deepEqual(modes, [
    ['grey.png', 'png', 1, 8, false, false],
    ['grey_alpha.png', 'png', 2, 8, false, true],
    ['rgb.png', 'png', 3, 8, false, false],
    ['rgba.png', 'png', 4, 8, false, true],
    ['palette.png', 'png', 3, 8, true, false],
    ['grey16.png', 'png', 1, 16, false, false],
    ['rgb16.png', 'png', 3, 16, false, false],
    ['rgb16.tif', 'tiff', 3, 16, false, false],
    ['grey16.tif', 'tiff', 1, 16, false, false],
  ]);
  const expected = v8.flatMap((v) => [v, v, v]);
  for (const [n, p] of Object.entries(files)) {
    const im = await loadImageRgb8(p);
    assert.deepEqual([im.width, im.height, im.data.length], [W, H, W * H * 3], n);
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(im.data[i]! - expected[i]!));
    // 8-bit encodings are exact; 16-bit ones (v16 / 257 truncated or rounded) are within one level.
    assert.ok(maxDiff <= (n.includes('16') ? 1 : 0), `${n}: max difference ${maxDiff} levels`);
    // Model input: 3-channel, ImageNet-normalised, same values within one level.
    const t = await loadImage(p, W);
    assert.equal(t.length, W * W * 3);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(t[c]! - norm(0, c)) < 1e-5, `${n}: black pixel channel ${c}`);
  }
  // Transparent pixels are flattened onto black (documented).
  const ga = path.join(dir, 'ga_transparent.png');
  await rawPng(ga, 2, 1, 2, [200, 255, 200, 0]);
  assert.deepEqual(Array.from((await loadImageRgb8(ga)).data), [200, 200, 200, 0, 0, 0]);
});

// ---------------------------------------------------------------- mask values

test('masks: 0/1, soft edges and 200-254 values count every non-zero pixel; JPEG masks are binarised at >= 128', async () => {
  const dir = makeTempDir('maskvals');
  const m01 = path.join(dir, 'm01.png');
  await rawPng(m01, 4, 1, 1, [0, 1, 1, 0]);
  assert.deepEqual(Array.from((await loadMaskFull(m01)).data), [0, 1, 1, 0]);
  const soft = path.join(dir, 'soft.png');
  await rawPng(soft, 6, 1, 1, [0, 1, 64, 128, 254, 255]);
  assert.deepEqual(Array.from((await loadMaskFull(soft)).data), [0, 1, 1, 1, 1, 1]);
  const high = path.join(dir, 'high.png');
  await rawPng(high, 4, 1, 1, [0, 200, 230, 254]);
  assert.deepEqual(Array.from((await loadMaskFull(high)).data), [0, 1, 1, 1]);

  // 16-bit grey + alpha: value 1 counts; a fully transparent pixel does not.
  const ga16 = path.join(dir, 'ga16.png');
  await sharp(new Uint16Array([1, 65535, 65535, 0, 0, 65535]), { raw: { width: 3, height: 1, channels: 2 } }).toColourspace('grey16').png().toFile(ga16);
  assert.deepEqual([(await sharp(ga16).metadata()).depth, (await sharp(ga16).metadata()).channels], ['ushort', 2]);
  assert.deepEqual(Array.from((await loadMaskFull(ga16)).data), [1, 0, 0]);
  // Palette mask (indexed colours): any non-black entry counts.
  const pal = path.join(dir, 'pal.png');
  await sharp(Buffer.from([0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 255]), { raw: { width: 4, height: 1, channels: 3 } }).png({ palette: true, colours: 4, dither: 0 }).toFile(pal);
  assert.equal((await sharp(pal).metadata()).isPalette, true);
  assert.deepEqual(Array.from((await loadMaskFull(pal)).data), [0, 1, 0, 1]);

  // JPEG: an 8x8 white square in a 16x16 black mask. Compression leaves faint non-zero noise
  // around it (so "> 0" would grow the mask); ">= 128" recovers the square exactly.
  const W = 16;
  const sq = new Uint8Array(W * W);
  for (let y = 4; y < 12; y++) for (let x = 4; x < 12; x++) sq[y * W + x] = 1;
  const jpg = path.join(dir, 'mask.jpg');
  await sharp(Buffer.from(Array.from(sq, (v) => v * 255)), { raw: { width: W, height: W, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 50 }).toFile(jpg);
  const raw = await sharp(jpg).extractChannel(0).raw().toBuffer();
  const noiseOutside = Array.from(raw).filter((v, i) => sq[i] === 0 && v > 0).length;
  assert.ok(noiseOutside > 10, `JPEG noise outside the square: ${noiseOutside} pixels (the test needs some)`);
  assert.deepEqual(Array.from((await loadMaskFull(jpg)).data), Array.from(sq));
  const ref = path.join(dir, 'ref.png');
  await rawPng(ref, W, W, 1, Array.from(sq, (v) => v * 255));
  assert.deepEqual(Array.from(await loadMask(jpg, 8)), Array.from(await loadMask(ref, 8)));
  // The threshold is exactly 128 of 255 (no colour conversion shifts it).
  const edge = path.join(dir, 'edge.jpg');
  await sharp(Buffer.alloc(64 * 8, 127), { raw: { width: 64, height: 8, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 100 }).toFile(edge);
  const e127 = await sharp(edge).extractChannel(0).raw().toBuffer();
  assert.ok(e127.every((v) => v === 127), 'flat JPEG keeps 127 exactly');
  assert.ok((await loadMaskFull(edge)).data.every((v) => v === 0), '127 < 128: normal');
  await sharp(Buffer.alloc(64 * 8, 128), { raw: { width: 64, height: 8, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 100 }).toFile(edge);
  assert.ok((await loadMaskFull(edge)).data.every((v) => v === 1), '128: anomalous');
  // The same JPEG named .png is still treated as JPEG (format from the content, not the extension).
  const disguised = path.join(dir, 'disguised.png');
  writeFileSync(disguised, readFileSync(jpg));
  assert.deepEqual(Array.from((await loadMaskFull(disguised)).data), Array.from(sq));
});

test('data check mask statistics: binary 0/255, 0/1, two-valued other, soft, empty, JPEG', async () => {
  const root = path.join(makeTempDir('maskstats'), 'ds');
  for (const n of ['a', 'b', 'c', 'd', 'e']) await grey(path.join(root, 'ok', `${n}.png`), 4, 4);
  const defects = path.join(root, 'defect');
  const masks: Record<string, number[]> = {
    bin255: [0, 255, 255, 0],
    bin01: [0, 1, 0, 0],
    two200: [0, 200, 200, 0],
    two230: [230, 0, 0, 0],
    soft: [0, 30, 255, 255],
    empty: [0, 0, 0, 0],
  };
  for (const [n, px] of Object.entries(masks)) {
    await grey(path.join(defects, `${n}.jpg`), 2, 2);
    await rawPng(path.join(defects, `${n}.png`), 2, 2, 1, px);
  }
  // A JPEG mask (by the suffix rule): flat white decodes to exactly 255.
  await grey(path.join(defects, 'jm.png'), 2, 2);
  await sharp(Buffer.alloc(4, 255), { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('b-w').jpeg().toFile(path.join(defects, 'jm_mask.jpg'));
  const spec: FolderSpec = { normal: [path.join(root, 'ok')], abnormal: [defects], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 };
  const r = await checkDataset(spec);
  assert.deepEqual(r.masks, { count: 7, binary0255: 2, binary01: 1, binaryOther: 2, soft: 1, zero: 1, empty: 1, jpeg: 1, otherValues: [200, 230] });
  assert.match(formatCheckReport(r), /\nMasks of defective images: 7 decoded \(1 JPEG, binarised at >= 128\)\n  binary 0\/255: 2, binary 0\/1: 1, two-valued other: 2 \(values 200, 230\), soft edges: 1, all zero: 1; empty after binarisation: 1\n/);
  assert.deepEqual(r.problems.filter((p) => p.message.includes('is empty')).map((p) => p.message), [
    `Mask ${path.join(defects, 'empty.png')} of defective image ${path.join(defects, 'empty.jpg')} is empty (no anomalous pixel): the image still counts for image AUROC but adds no anomalous pixel to pixel AUROC.`,
  ]);
});

// ---------------------------------------------------------------- geometry

test('geometry: non-square and tiny images are resized (tiny ones upscaled, with a check warning)', async () => {
  const dir = makeTempDir('geom');
  const wide = path.join(dir, 'wide.png');
  await grey(wide, 30, 50, 60);
  const w = await loadImageRgb8(wide);
  assert.deepEqual([w.width, w.height], [30, 50]);
  const t = await loadImage(wide, 16);
  assert.equal(t.length, 16 * 16 * 3);
  assert.ok(t.every((v, i) => Math.abs(v - norm(60, i % 3)) < 1e-5));
  // 8x8 image -> 64x64 input: upscaled, values kept.
  const tiny = path.join(dir, 'tiny.png');
  await grey(tiny, 8, 8, 77);
  const u = await loadImage(tiny, 64);
  assert.equal(u.length, 64 * 64 * 3);
  assert.ok(u.every((v, i) => Math.abs(v - norm(77, i % 3)) < 1e-5));

  // Mixed sizes and a tiny image in a folder dataset.
  const root = path.join(dir, 'mixed');
  await grey(path.join(root, 'ok', 'a.png'), 40, 36);
  await grey(path.join(root, 'ok', 'b.png'), 40, 36);
  await grey(path.join(root, 'ok', 'c.png'), 64, 48);
  await grey(path.join(root, 'ok', 'd.png'), 20, 100);
  await grey(path.join(root, 'ok', 'e.png'), 31, 32);
  const r = await checkDataset({ normal: [path.join(root, 'ok')], abnormal: [], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 });
  assert.deepEqual(r.images.sizes, {
    minWidth: 20, maxWidth: 64, minHeight: 32, maxHeight: 100,
    distinct: [{ width: 40, height: 36, count: 2 }, { width: 20, height: 100, count: 1 }, { width: 31, height: 32, count: 1 }, { width: 64, height: 48, count: 1 }],
  });
  assert.deepEqual(r.problems.filter((p) => p.message.includes('network minimum')), [
    { severity: 'warning', kind: 'small-image', message: `Image ${path.join(root, 'ok', 'd.png')} is 20x100 px, smaller than the network minimum of 32 px: it is upscaled to the model input size and holds little detail.` },
    { severity: 'warning', kind: 'small-image', message: `Image ${path.join(root, 'ok', 'e.png')} is 31x32 px, smaller than the network minimum of 32 px: it is upscaled to the model input size and holds little detail.` },
  ]);
  assert.equal(r.errors, 0);
});

test('geometry: a mask of another size is scaled when the aspect ratio matches, refused otherwise', async () => {
  assert.equal(maskAlignment({ width: 40, height: 36 }, { width: 40, height: 36 }), 'same');
  assert.equal(maskAlignment({ width: 20, height: 18 }, { width: 40, height: 36 }), 'scaled');
  assert.equal(maskAlignment({ width: 124, height: 187 }, { width: 248, height: 373 }), 'scaled', 'rounding of an odd size');
  assert.equal(maskAlignment({ width: 40, height: 40 }, { width: 40, height: 36 }), 'mismatch');
  assert.equal(maskAlignment({ width: 36, height: 40 }, { width: 40, height: 36 }), 'mismatch', 'rotated');

  const root = path.join(makeTempDir('masksize'), 'ds');
  for (const n of ['a', 'b', 'c', 'd', 'e']) await grey(path.join(root, 'ok', `${n}.png`), 40, 36);
  const d = path.join(root, 'bad');
  await grey(path.join(d, 'half.jpg'), 40, 36);
  await rawPng(path.join(d, 'half.png'), 20, 18, 1, new Array(20 * 18).fill(255));
  await grey(path.join(d, 'square.jpg'), 40, 36);
  await rawPng(path.join(d, 'square.png'), 40, 40, 1, new Array(40 * 40).fill(255));
  const r = await checkDataset({ normal: [path.join(root, 'ok')], abnormal: [d], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 });
  assert.deepEqual(r.problems, [
    { severity: 'warning', kind: 'mask-scaled', message: `Mask ${path.join(d, 'half.png')} is 20x18 px but its image ${path.join(d, 'half.jpg')} is 40x36 px (same aspect ratio): the mask is scaled to the image (nearest neighbour).` },
    { severity: 'error', kind: 'mask-mismatch', message: `Mask ${path.join(d, 'square.png')} is 40x40 px but its image ${path.join(d, 'square.jpg')} is 40x36 px: the aspect ratios differ, so the mask cannot be aligned and evaluation refuses it. Check that it belongs to this image, then fix or remove it.` },
  ]);
  assert.equal(r.errors, 1);
  assert.deepEqual(Array.from(await loadMaskForImage(path.join(d, 'half.png'), path.join(d, 'half.jpg'), 4)), new Array(16).fill(1));
  await assert.rejects(loadMaskForImage(path.join(d, 'square.png'), path.join(d, 'square.jpg'), 4), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.path, path.join(d, 'square.png'));
    assert.equal(e.message, `Mask ${path.join(d, 'square.png')} is 40x40 px but its image ${path.join(d, 'square.jpg')} is 40x36 px: the aspect ratios differ, so the mask cannot be aligned with the image. Check that the mask belongs to this image, then fix or remove it.`);
    return true;
  });
});

test('geometry: EXIF orientation 6 is applied (image rotated 90 degrees clockwise) and sizes are compared after it', async () => {
  const dir = makeTempDir('exif');
  // Stored 20 wide x 10 high: left half red, right half blue.
  const b = Buffer.alloc(20 * 10 * 3);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 20; x++) b[(y * 20 + x) * 3 + (x < 10 ? 0 : 2)] = 255;
  const file = path.join(dir, 'rot.jpg');
  await sharp(b, { raw: { width: 20, height: 10, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(file);
  const p = await probeImageFile(file);
  assert.deepEqual([p.orientation, p.width, p.height], [6, 10, 20]);
  const im = await loadImageRgb8(file);
  assert.deepEqual([im.width, im.height], [10, 20]);
  // Rotating clockwise puts the stored left (red) half on top, the right (blue) half at the bottom.
  const px = (x: number, y: number): number[] => Array.from(im.data.subarray((y * 10 + x) * 3, (y * 10 + x) * 3 + 3));
  for (const [x, y] of [[2, 2], [7, 7]] as const) {
    const [r, g, bl] = px(x, y);
    assert.ok(r! > 200 && g! < 40 && bl! < 40, `top (${x},${y}) red: ${px(x, y)}`);
  }
  for (const [x, y] of [[2, 13], [7, 17]] as const) {
    const [r, g, bl] = px(x, y);
    assert.ok(r! < 40 && g! < 40 && bl! > 200, `bottom (${x},${y}) blue: ${px(x, y)}`);
  }
  // An unrotated 10x20 mask lines up with the oriented image.
  const m = path.join(dir, 'rot_mask.png');
  await rawPng(m, 10, 20, 1, new Array(200).fill(0));
  assert.equal(maskAlignment(await probeImageFile(m), p), 'same');
});

// ---------------------------------------------------------------- layout

test('layout: missing ground_truth, defective image without mask and mask without image are reported by name', async () => {
  const base = makeTempDir('layout');
  const noGt = path.join(base, 'nogt');
  await mvtec(noGt, { masks: false });
  const cat = await readMvtecCategory(noGt);
  assert.ok(cat.test.every((t) => t.maskPath === undefined));
  const r = await checkDataset(noGt);
  assert.deepEqual(r.problems, [{ severity: 'warning', message: `No ground_truth/ folder in ${noGt}: the 2 defective test images have no masks, so pixel-level metrics will not be available.` }]);
  assert.equal(r.errors, 0);

  const cat2 = path.join(base, 'pairs');
  await mvtec(cat2);
  await grey(path.join(cat2, 'test', 'crack', '002.png'), 40, 40); // no mask
  await quarterMask(path.join(cat2, 'ground_truth', 'crack', '007_mask.png'), 40, 40); // no image
  const gtDir = path.join(cat2, 'ground_truth', 'crack');
  const expected = [
    `No mask for ${path.join(cat2, 'test', 'crack', '002.png')} (expected ${path.join(gtDir, '002_mask.png')}): pixel-level metrics will not be available.`,
    `Mask without image: ${path.join(gtDir, '007_mask.png')} (no ${path.join(cat2, 'test', 'crack', '007.*')}); it is ignored.`,
  ];
  assert.deepEqual((await readMvtecCategory(cat2)).warnings, expected);
  assert.deepEqual((await checkDataset(cat2)).problems.map((p) => p.message), expected);
});

test('layout: hidden and non-image files are ignored and listed; hidden parent folders, spaces and non-ASCII paths work', async () => {
  const base = makeTempDir('junk');
  const root = path.join(base, '.datasets', 'my widget ü');
  await mvtec(root);
  writeFileSync(path.join(root, 'train', 'good', '.DS_Store'), 'x');
  writeFileSync(path.join(root, 'train', 'good', 'notes.txt'), 'x');
  writeFileSync(path.join(root, 'test', 'crack', 'Thumbs.db'), 'x');
  writeFileSync(path.join(root, 'ground_truth', 'crack', '._000_mask.png'), 'x'); // macOS resource fork
  mkdirSync(path.join(root, 'test', '.ipynb_checkpoints'));
  const r = await checkDataset(root);
  assert.deepEqual(r.counts, { normalPool: 4, train: 3, val: 1, testNormal: 2, testDefective: 2 });
  assert.deepEqual(r.ignored, [
    { path: path.join(root, 'train', 'good', '.DS_Store'), reason: 'hidden file' },
    { path: path.join(root, 'train', 'good', 'notes.txt'), reason: 'not an image file (by extension)' },
    { path: path.join(root, 'test', '.ipynb_checkpoints'), reason: 'hidden folder' },
    { path: path.join(root, 'test', 'crack', 'Thumbs.db'), reason: 'not an image file (by extension)' },
    { path: path.join(root, 'ground_truth', 'crack', '._000_mask.png'), reason: 'hidden file' },
  ]);
  assert.deepEqual([r.errors, r.warnings], [0, 0]);

  // Folder dataset under a hidden parent, with spaces and non-ASCII names everywhere.
  const fd = path.join(base, '.cache', 'Données 缺陷');
  for (const n of ['img 1', 'größe 2', 'ß 3', 'éé 4', 'ok 5']) await grey(path.join(fd, 'bon état', `${n}.png`), 40, 40);
  await grey(path.join(fd, 'rayure profonde', 'Imgs', 'défaut 1.jpg'), 40, 40);
  await quarterMask(path.join(fd, 'rayure profonde', 'Imgs', 'défaut 1.png'), 40, 40);
  const spec: FolderSpec = { normal: [path.join(fd, 'bon état')], abnormal: [path.join(fd, 'rayure profonde', 'Imgs')], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 3 };
  const ds = await readFolderDataset(spec);
  assert.equal(ds.name, 'Données 缺陷');
  assert.deepEqual(ds.test.filter((t) => t.label === 1), [
    { path: path.join(fd, 'rayure profonde', 'Imgs', 'défaut 1.jpg'), label: 1, defectType: 'rayure profonde', maskPath: path.join(fd, 'rayure profonde', 'Imgs', 'défaut 1.png') },
  ]);
  const again = await applySavedSplit(spec, JSON.parse(JSON.stringify(splitToJson(ds))));
  assert.deepEqual([again.train, again.val, again.test], [ds.train, ds.val, ds.test]);
  for (const p of [...ds.train, ...ds.test.map((t) => t.path)]) assert.equal((await loadImage(p, 8)).length, 192);
  const c = await checkDataset(spec);
  assert.deepEqual([c.errors, c.warnings, c.images.count], [0, 0, 6]);
});

test('layout: symlinked folders and files are followed; broken links and empty folders are reported', async () => {
  const base = makeTempDir('links');
  const real = path.join(base, 'real');
  for (const n of ['a', 'b', 'c', 'd']) await grey(path.join(real, 'normal', `${n}.png`), 40, 40);
  await grey(path.join(real, 'defects', 'x.jpg'), 40, 40);
  await quarterMask(path.join(real, 'defects', 'x.png'), 40, 40);
  const view = path.join(base, 'view');
  mkdirSync(view);
  symlinkSync(path.join(real, 'normal'), path.join(view, 'normal'), 'dir');
  symlinkSync(path.join(real, 'defects'), path.join(view, 'dent'), 'dir');
  symlinkSync(path.join(real, 'normal', 'a.png'), path.join(real, 'normal', 'e.png')); // file link: the same file, read once
  symlinkSync(path.join(base, 'nowhere.png'), path.join(real, 'normal', 'broken.png')); // dangling
  mkdirSync(path.join(view, 'empty'));
  const spec: FolderSpec = { normal: [path.join(view, 'normal'), path.join(view, 'empty')], abnormal: [path.join(view, 'dent')], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 };
  const ds = await readFolderDataset(spec);
  assert.equal(ds.train.length + ds.val.length + ds.test.filter((t) => t.label === 0).length, 4);
  assert.deepEqual(ds.test.filter((t) => t.label === 1), [{ path: path.join(view, 'dent', 'x.jpg'), label: 1, defectType: 'dent', maskPath: path.join(view, 'dent', 'x.png') }]);
  const sameFile = `${path.join(view, 'normal', 'e.png')} is the same file as ${path.join(view, 'normal', 'a.png')} (a link): read once.`;
  assert.deepEqual(ds.warnings, [`Normal image folder ${path.join(view, 'empty')} contains no images.`, sameFile]);
  const r = await checkDataset(spec);
  assert.deepEqual(r.ignored, [{ path: path.join(view, 'normal', 'broken.png'), reason: 'broken symbolic link' }]);
  assert.deepEqual([r.errors, r.warnings], [0, 2]);
  // The same folder reached twice through a link is read once.
  const twice = await readFolderDataset({ ...spec, normal: [path.join(view, 'normal'), path.join(real, 'normal')] });
  assert.deepEqual(twice.warnings, [`Normal image folder ${path.join(real, 'normal')} is given more than once; read once.`, sameFile]);

  // MVTec: a symlinked defect folder, and an empty one.
  const cat = path.join(base, 'cat');
  await mvtec(cat);
  symlinkSync(path.join(cat, 'test', 'crack'), path.join(cat, 'test', 'crack_link'), 'dir');
  mkdirSync(path.join(cat, 'test', 'hole'));
  const c = await readMvtecCategory(cat);
  // crack_link holds the same files as crack: each is read once (metrics must not count an image twice).
  assert.deepEqual([...new Set(c.test.map((t) => t.defectType))], ['good', 'crack']);
  const dups = c.warnings.filter((w) => /^Test image .*crack_link.* is the same file as .*crack.* \(a link\): read once\.$/.test(w));
  assert.equal(dups.length, c.test.filter((t) => t.defectType === 'crack').length);
  assert.deepEqual(c.warnings.filter((w) => !dups.includes(w)), [
    `No mask folder ${path.join(cat, 'ground_truth', 'crack_link')}: pixel-level metrics will not be available.`,
    `Test folder ${path.join(cat, 'test', 'hole')} contains no images; skipped.`,
  ]);
});

// ---------------------------------------------------------------- degenerate files

test('degenerate: zero-byte, truncated and non-image files give a DataError naming the file', async () => {
  const dir = makeTempDir('degen');
  const zero = path.join(dir, 'zero.png');
  writeFileSync(zero, '');
  await assert.rejects(loadImage(zero, 8), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.path, zero);
    assert.equal(e.message, `Image file ${zero} is empty (0 bytes), probably an interrupted copy or download. Copy it again or delete it.`);
    return true;
  });
  await assert.rejects(probeImageFile(zero, { kind: 'mask' }), new DataError(`Mask file ${zero} is empty (0 bytes), probably an interrupted copy or download. Copy it again or delete it.`, zero));
  for (const name of ['cut.png', 'cut.jpg']) {
    const f = path.join(dir, name);
    await noisy(f);
    truncate(f);
    for (const load of [() => loadImage(f, 8), () => loadImageRgb8(f), () => probeImageFile(f), () => loadMaskFull(f)]) {
      await assert.rejects(load(), (e: unknown) => {
        assert.ok(e instanceof DataError, `${name}: DataError`);
        assert.equal(e.path, f);
        assert.match(e.message, new RegExp(`^(Image|Mask) file ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is truncated or corrupt \\(.+\\), probably an interrupted copy or download\\. Copy it again, re-export it, or remove it\\.$`));
        return true;
      });
    }
  }
  // Extra bytes after a complete JPEG/PNG are not truncation (the end-of-file test is confirmed by decoding).
  for (const name of ['tail.jpg', 'tail.png']) {
    const f = path.join(dir, name);
    await noisy(f);
    writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.alloc(3000, 7)]));
    assert.deepEqual([(await probeImageFile(f)).width, (await loadImageRgb8(f)).height], [64, 48]);
  }
  const text = path.join(dir, 'notes.png');
  writeFileSync(text, 'this is not an image');
  await assert.rejects(probeImageFile(text), /^DataError: Could not decode image .*notes\.png: .*It is not an image in a supported format/);
});

test('degenerate: skipBad makes the readers and the check skip bad files with a warning naming each', async () => {
  const base = makeTempDir('skip');
  const root = path.join(base, 'ds');
  for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) await grey(path.join(root, 'ok', `${n}.png`), 40, 40);
  writeFileSync(path.join(root, 'ok', 'zero.png'), '');
  for (const n of ['x', 'y']) {
    await noisy(path.join(root, 'bad', `${n}.jpg`));
    await rawPng(path.join(root, 'bad', `${n}.png`), 64, 48, 1, new Array(64 * 48).fill(255));
  }
  truncate(path.join(root, 'bad', 'x.jpg'));
  const yMask = path.join(root, 'bad', 'y.png');
  await noisy(yMask);
  truncate(yMask);
  const spec: FolderSpec = { normal: [path.join(root, 'ok')], abnormal: [path.join(root, 'bad')], split: { train: 0.5, val: 0.25, test: 0.25 }, seed: 2 };

  // Without skipBad the reader does not open files (the loaders fail later, naming the file)...
  const lazy = await readFolderDataset(spec);
  assert.equal(lazy.train.length + lazy.val.length + lazy.test.length, 9);
  // ...and the check reports each bad file as an error.
  const strict = await checkDataset(spec);
  assert.deepEqual(strict.problems.map((p) => [p.severity, p.message.split(' is ')[0]]), [
    ['error', `Image file ${path.join(root, 'bad', 'x.jpg')}`],
    ['error', `Image file ${path.join(root, 'ok', 'zero.png')}`],
    ['error', `Mask file ${yMask}`],
  ]);
  assert.equal(strict.problems[1]!.message, `Image file ${path.join(root, 'ok', 'zero.png')} is empty (0 bytes), probably an interrupted copy or download. Copy it again or delete it.`);
  assert.equal(strict.errors, 3);

  const ds = await readFolderDataset(spec, { skipBad: true });
  assert.deepEqual(ds.warnings.map((w) => w.split(' is ')[0]), [
    `Skipped bad image: Image file ${path.join(root, 'ok', 'zero.png')}`,
    `Skipped bad image: Image file ${path.join(root, 'bad', 'x.jpg')}`,
    `Skipped bad mask: Mask file ${yMask}`,
  ]);
  assert.equal(ds.train.length + ds.val.length + ds.test.filter((t) => t.label === 0).length, 6);
  assert.deepEqual(ds.test.filter((t) => t.label === 1), [{ path: path.join(root, 'bad', 'y.jpg'), label: 1, defectType: 'bad' }]);

  const lenient = await checkDataset(spec, { skipBad: true });
  assert.equal(lenient.errors, 0);
  assert.deepEqual(lenient.problems.map((p) => p.severity), ['warning', 'warning', 'warning']);
  assert.deepEqual(lenient.counts, { normalPool: 6, train: 2, val: 2, testNormal: 2, testDefective: 1 }); // round(1.5) = 2 for val and test

  // MVTec reader with skipBad.
  const cat = path.join(base, 'cat');
  await mvtec(cat);
  writeFileSync(path.join(cat, 'train', 'good', '004.png'), '');
  await noisy(path.join(cat, 'test', 'crack', '002.png'));
  truncate(path.join(cat, 'test', 'crack', '002.png'));
  await quarterMask(path.join(cat, 'ground_truth', 'crack', '002_mask.png'), 40, 40);
  const c = await readMvtecCategory(cat, { skipBad: true });
  assert.equal(c.train.length, 4);
  assert.deepEqual(c.test.map((t) => path.basename(t.path)), ['000.png', '001.png', '000.png', '001.png']);
  assert.deepEqual(c.warnings.map((w) => w.split(' is ')[0]), [
    `Skipped bad image: Image file ${path.join(cat, 'train', 'good', '004.png')}`,
    `Skipped bad image: Image file ${path.join(cat, 'test', 'crack', '002.png')}`,
  ]); // (no "Mask without image" for 002_mask.png: its image exists, it was skipped)
  await assert.rejects(loadImage(path.join(cat, 'train', 'good', '004.png'), 8), /004\.png is empty \(0 bytes\)/);
});
