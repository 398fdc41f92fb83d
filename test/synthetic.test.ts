/**
 * Synthetic defects (data/synthetic.ts), the label-free validation signal of `fit`: on a real image, the mask marks
 * exactly the pixels that changed, defects are small (4-16 % of the side), both kinds occur, and the result is
 * deterministic for a seed. (`expectedDetection` on a trained model is checked in test/health.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadImage } from '../src/data/image.js';
import { makeSyntheticDefect, syntheticDefectSet } from '../src/data/synthetic.js';
import { fixturePath, sharedDataPath } from './helpers.js';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

async function realImage(size: number): Promise<Float32Array> {
  const bottle = sharedDataPath('mvtec_ad', 'bottle', 'train', 'good', '000.png');
  if (bottle) return loadImage(bottle, size);
  const dir = fixturePath('formats');
  const png = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.png')) : undefined;
  assert.ok(png, 'a real PNG (shared bottle or test/fixtures/formats) is needed');
  return loadImage(path.join(dir, png), size);
}

test('synthetic defects: the mask is exactly where the image changed, small, deterministic, both kinds', async () => {
  const size = 64;
  const img = await realImage(size);
  for (const kind of ['cutpaste', 'noise'] as const) {
    for (let seed = 1; seed <= 8; seed++) {
      const d = makeSyntheticDefect(img, size, kind, seed);
      assert.equal(d.kind, kind);
      let inMask = 0;
      for (let i = 0; i < size * size; i++) {
        let changed = false;
        for (let c = 0; c < 3; c++) if (Math.abs(d.image[i * 3 + c]! - img[i * 3 + c]!) > 1e-6) changed = true;
        assert.equal(d.mask[i], changed ? 1 : 0, `${kind} seed ${seed}: pixel ${i} mask ${d.mask[i]} but changed=${changed}`);
        if (d.mask[i]) {
          inMask++;
          const x = i % size, y = Math.floor(i / size);
          assert.ok(x >= d.box.x0 && x < d.box.x1 && y >= d.box.y0 && y < d.box.y1, 'mask inside its box');
        }
      }
      assert.ok(inMask > 0, `${kind} seed ${seed}: the defect changed some pixels`);
      assert.ok(d.box.x1 - d.box.x0 <= Math.round(0.16 * size) && d.box.y1 - d.box.y0 <= Math.round(0.16 * size), 'small defect');
      assert.deepEqual(makeSyntheticDefect(img, size, kind, seed).image, d.image, 'deterministic');
    }
  }
  const set = syntheticDefectSet([img, img, img, img], size, 42);
  assert.deepEqual(set.map((d) => d.kind), ['cutpaste', 'noise', 'cutpaste', 'noise']);
  assert.notDeepEqual(set[0]!.mask, set[2]!.mask, 'each image gets its own defect');
  assert.throws(() => makeSyntheticDefect(img.subarray(1), size, 'noise', 1), /values for a 64 x 64 x 3 image/);
});
