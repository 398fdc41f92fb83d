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

/** A real uncompressed little-endian TIFF, 1 sample per pixel, of 32-bit IEEE floats (SampleFormat 3) or 8-bit ints. */
function writeTiff(file: string, w: number, h: number, float: boolean): void {
  const bps = float ? 4 : 1;
  const pixels = Buffer.alloc(w * h * bps);
  for (let i = 0; i < w * h; i++) { const v = (i % w) / w; if (float) pixels.writeFloatLE(v, i * 4); else pixels[i] = Math.round(v * 255); }
  const tags: [number, number, number][] = [ // tag, type (3 SHORT, 4 LONG), value
    [256, 4, w], [257, 4, h], [258, 3, bps * 8], [259, 3, 1], [262, 3, 1], [273, 4, 0], [277, 3, 1], [278, 4, h], [279, 4, pixels.length], [339, 3, float ? 3 : 1],
  ];
  const ifdAt = 8, ifdLen = 2 + tags.length * 12 + 4, dataAt = ifdAt + ifdLen;
  const b = Buffer.alloc(dataAt + pixels.length);
  b.write('II', 0, 'latin1'); b.writeUInt16LE(42, 2); b.writeUInt32LE(ifdAt, 4);
  b.writeUInt16LE(tags.length, ifdAt);
  tags.forEach(([tag, type, value], k) => {
    const at = ifdAt + 2 + k * 12;
    b.writeUInt16LE(tag, at); b.writeUInt16LE(type, at + 2); b.writeUInt32LE(1, at + 4);
    const v = tag === 273 ? dataAt : value;
    if (type === 3) b.writeUInt16LE(v, at + 8); else b.writeUInt32LE(v, at + 8);
  });
  pixels.copy(b, dataAt);
  writeFileSync(file, b);
}

test('a 32-bit float TIFF is refused naming the file and the conversion, not decoded to a black image; its 8-bit twin decodes', async () => {
  const dir = makeTempDir('float-tiff');
  const f = path.join(dir, 'depth.tiff'), g = path.join(dir, 'depth8.tiff');
  writeTiff(f, 32, 32, true);
  writeTiff(g, 32, 32, false);
  assert.equal((await sharp(f).metadata()).depth, 'float', 'the fixture really is a float TIFF');
  await assert.rejects(loadImageRgb8(f, 32), (e: Error) => e instanceof DataError && e.message.includes(f) && /32-bit floating-point samples; ntsnet reads 8- and 16-bit integer images only/.test(e.message) && /0\.\.65535/.test(e.message));
  await assert.rejects(probeImageFile(f), /32-bit floating-point/);
  const ok = await loadImageRgb8(g, 32);
  assert.equal(ok.data[3 * 31], 247, 'the 8-bit TIFF keeps its values');
});
