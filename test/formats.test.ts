/**
 * Issue 13, item 2: every advertised format decodes. BMP files are real Windows bitmaps written by Pillow
 * (scripts/tools/make_format_fixtures.py: 24-bit, 4-bit colour palette, 8-bit grey, 1-bit, 32-bit with alpha), GIF
 * files are written by Pillow and by sharp's own GIF encoder (cgif); each is compared with the same pixels as PNG.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { loadImageRgb8, loadMaskFull, probeImageFile, DataError } from '../src/data/image.js';
import { isImageFile } from '../src/data/mvtec.js';
import { fixturePath, makeTempDir } from './helpers.js';
import { runCli, tinyCheckpoint } from './cli_helpers.js';

const fx = (n: string): string => fixturePath(path.join('formats', n));

test('real BMP files (24-bit, 4-bit palette, 8-bit grey, 1-bit, 32-bit RGBA) decode to the same pixels as PNG', async () => {
  for (const n of ['rgb24', 'pal8', 'grey8', 'bw1', 'rgba32']) {
    const head = readFileSync(fx(`${n}.bmp`)).subarray(0, 2).toString('latin1');
    assert.equal(head, 'BM', `${n}.bmp is a real bitmap`);
    const got = await loadImageRgb8(fx(`${n}.bmp`));
    const ref = await loadImageRgb8(fx(`${n}.ref.png`));
    assert.equal(got.width, 37); assert.equal(got.height, 23);
    assert.deepEqual(Buffer.from(got.data), Buffer.from(ref.data), `${n}.bmp pixels`);
    const p = await probeImageFile(fx(`${n}.bmp`), { decode: true });
    assert.equal(p.format, 'bmp');
    assert.equal(p.width, 37);
  }
  const resized = await loadImageRgb8(fx('rgb24.bmp'), 16);
  const resizedRef = await loadImageRgb8(fx('rgb24.ref.png'), 16);
  assert.deepEqual(Buffer.from(resized.data), Buffer.from(resizedRef.data), 'resized BMP = resized PNG');
});

test('a BMP mask is binarised like a PNG mask; a truncated BMP is reported as truncated, naming the file', async () => {
  const m = await loadMaskFull(fx('mask.bmp'));
  assert.equal(m.data.reduce((a, b) => a + b, 0), 100);
  const dir = makeTempDir('bmp-cut');
  const cut = path.join(dir, 'cut.bmp');
  const full = readFileSync(fx('rgb24.bmp'));
  writeFileSync(cut, full.subarray(0, full.length - 500));
  await assert.rejects(loadImageRgb8(cut), (e: unknown) => e instanceof DataError && e.message.includes(cut) && /truncated/.test(e.message));
});

test('GIF files (Pillow and sharp/cgif encoders) are listed and decode to the same pixels as PNG', async () => {
  assert.ok(isImageFile('a.gif') && isImageFile('B.GIF'));
  const pil = await loadImageRgb8(fx('pal.gif'));
  const ref = await loadImageRgb8(fx('pal8.ref.png'));
  assert.deepEqual(Buffer.from(pil.data), Buffer.from(ref.data));
  const dir = makeTempDir('gif');
  const g = path.join(dir, 'cgif.gif');
  // 4 flat colours: GIF is lossless for <= 256 colours, so the decode must equal the raw pixels.
  const raw = Buffer.alloc(20 * 10 * 3);
  for (let i = 0; i < 200; i++) raw.set([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]][i % 4]!, i * 3);
  await sharp(raw, { raw: { width: 20, height: 10, channels: 3 } }).gif().toFile(g);
  assert.equal(readFileSync(g).subarray(0, 6).toString('latin1'), 'GIF89a');
  const got = await loadImageRgb8(g);
  assert.deepEqual(Buffer.from(got.data), raw);
});

test('ntsnet predict scores a folder of real BMP and GIF files (none ignored, none refused)', async () => {
  const { checkpoint } = await tinyCheckpoint();
  const dir = makeTempDir('fmt-in');
  for (const n of ['rgb24.bmp', 'pal8.bmp', 'bw1.bmp', 'rgba32.bmp', 'pal.gif']) copyFileSync(fx(n), path.join(dir, n));
  const r = runCli(['predict', dir, '--checkpoint', checkpoint]);
  assert.equal(r.status, 0, r.stderr);
  const names = r.stdout.trim().split('\n').slice(1).map((l) => path.basename(l.split('\t')[0]!));
  assert.deepEqual(names.sort(), ['bw1.bmp', 'pal.gif', 'pal8.bmp', 'rgb24.bmp', 'rgba32.bmp']);
});
