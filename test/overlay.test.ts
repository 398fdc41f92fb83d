import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { heatmapRgb, overlayRgb, resizeBilinear, writeOverlayPng } from '../src/report/overlay.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/atomic.js';
import { makeTempDir } from './helpers.js';

test('writeOverlayPng: image size kept, hot region red-ish, cold region blue-ish', async () => {
  const dir = makeTempDir('overlay');
  const W = 64;
  const H = 48;
  const data = new Uint8Array(W * H * 3).fill(128); // mid-grey image
  // 8x6 map: hot (1.0) in the right half, cold (0.0) in the left half.
  const mw = 8;
  const mh = 6;
  const map = new Float32Array(mw * mh);
  for (let y = 0; y < mh; y++) for (let x = 0; x < mw; x++) map[y * mw + x] = x >= mw / 2 ? 1 : 0;
  const out = path.join(dir, 'sub', 'overlay.png');
  await writeOverlayPng(out, { data, width: W, height: H }, map, { mapWidth: mw, mapHeight: mh, vmin: 0, vmax: 1 });
  const meta = await sharp(out).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [W, H]);
  const { data: px, info } = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  const at = (x: number, y: number): number[] => Array.from(px.subarray((y * W + x) * 3, (y * W + x) * 3 + 3));
  // 50/50 blend of grey 128 with jet(1) = (128, 0, 0) and jet(0) = (0, 0, 128).
  const hot = at(60, 24);
  const cold = at(3, 24);
  assert.ok(hot[0]! > hot[1]! + 40 && hot[0]! > hot[2]! + 40, `hot pixel should be red-ish: ${hot}`);
  assert.ok(cold[2]! > cold[0]! + 40 && cold[2]! > cold[1]! + 40, `cold pixel should be blue-ish: ${cold}`);
  assert.deepEqual(hot, [128, 64, 64]);
  assert.deepEqual(cold, [64, 64, 128]);
  // No temporary files left behind.
  assert.deepEqual(readdirSync(path.dirname(out)), ['overlay.png']);
});

test('heatmapRgb follows matplotlib jet: dark blue, cyan-green, dark red; clamps and NaN', () => {
  const m = new Float32Array([0, 0.5, 1, -5, 7, NaN]);
  const rgb = heatmapRgb(m, 6, 1, 0, 1);
  const px = (i: number): number[] => Array.from(rgb.subarray(i * 3, i * 3 + 3));
  assert.deepEqual(px(0), [0, 0, 128]); // jet(0) = (0, 0, 0.5)
  assert.deepEqual(px(2), [128, 0, 0]); // jet(1) = (0.5, 0, 0)
  const mid = px(1);
  assert.ok(mid[1]! > 200 && mid[0]! > 100 && mid[2]! > 100, `jet(0.5) is light green: ${mid}`);
  assert.deepEqual(px(3), px(0)); // below vmin clamps to cold
  assert.deepEqual(px(4), px(2)); // above vmax clamps to hot
  assert.deepEqual(px(5), px(0)); // NaN is cold
  // Degenerate range: values above vmin are hot.
  assert.deepEqual(Array.from(heatmapRgb(new Float32Array([2, 3]), 2, 1, 2, 2)), [0, 0, 128, 128, 0, 0]);
  assert.throws(() => heatmapRgb(m, 5, 1, 0, 1), /does not match 5x1/);
  assert.throws(() => heatmapRgb(m, 6, 1, 1, 0), /vmin <= vmax/);
});

test('resizeBilinear: identity, constant preserved, half-pixel-centre interpolation', () => {
  const m = new Float32Array([0, 1, 2, 3]);
  assert.deepEqual(Array.from(resizeBilinear(m, 2, 2, 2, 2)), [0, 1, 2, 3]);
  assert.ok(resizeBilinear(new Float32Array(9).fill(4.5), 3, 3, 7, 5).every((v) => v === 4.5));
  // 1D 2 -> 4: centres at -0.25, 0.25, 0.75, 1.25 -> clamp -> [0, 0.25, 0.75, 1].
  assert.deepEqual(Array.from(resizeBilinear(new Float32Array([0, 1]), 2, 1, 4, 1)), [0, 0.25, 0.75, 1]);
});

test('overlayRgb: alpha 0 returns the image, alpha 1 the heat map; validates sizes', () => {
  const img = { data: new Uint8Array([10, 20, 30, 40, 50, 60]), width: 2, height: 1 };
  const map = new Float32Array([0, 1]);
  const opts = { mapWidth: 2, mapHeight: 1, vmin: 0, vmax: 1 };
  assert.deepEqual(Array.from(overlayRgb(img, map, { ...opts, alpha: 0 })), [10, 20, 30, 40, 50, 60]);
  assert.deepEqual(Array.from(overlayRgb(img, map, { ...opts, alpha: 1 })), Array.from(heatmapRgb(map, 2, 1, 0, 1)));
  assert.throws(() => overlayRgb(img, map, { ...opts, mapWidth: 3 }), /does not match mapWidth x mapHeight/);
  assert.throws(() => overlayRgb({ ...img, width: 3 }, map, opts), /image data length/);
  assert.throws(() => overlayRgb(img, map, { ...opts, alpha: 2 }), /alpha/);
});

test('writeFileAtomic / writeJsonAtomic replace files completely and leave no temp files', async () => {
  const dir = makeTempDir('atomic');
  const f = path.join(dir, 'a', 'b', 'x.json');
  await writeJsonAtomic(f, { a: 1, b: [1, 2] });
  assert.equal(readFileSync(f, 'utf8'), '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}\n');
  await writeFileAtomic(f, new Uint8Array([104, 105]));
  assert.equal(readFileSync(f, 'utf8'), 'hi');
  await Promise.all(Array.from({ length: 10 }, (_, i) => writeFileAtomic(f, `v${i}`)));
  assert.match(readFileSync(f, 'utf8'), /^v\d$/);
  assert.deepEqual(readdirSync(path.dirname(f)), ['x.json']);
  await assert.rejects(writeJsonAtomic(f, 10n), TypeError);
  await assert.rejects(writeFileAtomic(path.join(f, 'under-a-file.txt'), 'x'), /Could not write .*under-a-file\.txt/);
});
