/**
 * Issue 13, item 3: one bad file no longer aborts `predict` silently-or-totally. Without --skip-bad the run stops
 * with the file named and the flag suggested; with it the run goes on and every failed file is recorded with its
 * reason in predictions.csv / predictions.json and in the summary. The pixel limit is stated with how to change it.
 */
import assert from 'node:assert/strict';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { deflateSync, crc32 } from 'node:zlib';
import { loadImage, DataError } from '../src/data/image.js';
import { makeTempDir, writeStripedImage } from './helpers.js';
import { runCli, tinyCheckpoint } from './cli_helpers.js';

/** A real, complete 1-bit grey PNG of width x height (all black), written row by row. */
async function writeHugePng(file: string, width: number, height: number): Promise<void> {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr[8] = 1; ihdr[9] = 0; // 1-bit grey
  const rowBytes = 1 + Math.ceil(width / 8);
  const raw = Buffer.alloc(rowBytes * height); // filter 0 + zero bits on every row
  const out = createWriteStream(file);
  out.write(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  out.write(chunk('IHDR', ihdr));
  out.write(chunk('IDAT', deflateSync(raw, { level: 1 })));
  out.write(chunk('IEND', Buffer.alloc(0)));
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

test('a 20,000 x 20,000 PNG is refused with the limit stated and how to raise it (not "re-export it as PNG")', async () => {
  const dir = makeTempDir('huge');
  const f = path.join(dir, 'huge.png');
  await writeHugePng(f, 20000, 20000);
  await assert.rejects(loadImage(f, 64), (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.match(e.message, /huge\.png is 20000 x 20000 = 400,000,000 pixels, above ntsnet's limit of 268,402,689 pixels/);
    assert.match(e.message, /NTSNET_MAX_PIXELS/);
    assert.doesNotMatch(e.message, /Re-export it as PNG/);
    return true;
  });
  // The limit can be changed: a lower one refuses a small image with the same kind of message.
  const small = path.join(dir, 'small.png');
  await writeStripedImage(small, 1, { width: 50, height: 50 });
  process.env.NTSNET_MAX_PIXELS = '1000';
  try {
    await assert.rejects(loadImage(small, 64), /small\.png is 50 x 50 = 2,500 pixels, above ntsnet's limit of 1,000 pixels/);
  } finally {
    delete process.env.NTSNET_MAX_PIXELS;
  }
  assert.equal((await loadImage(small, 8)).length, 8 * 8 * 3);
});

test('predict: a bad file stops the run naming it and --skip-bad; with --skip-bad every bad file is recorded with its reason', async () => {
  const { checkpoint } = await tinyCheckpoint();
  const dir = path.join(makeTempDir('bad-in'), 'parts');
  for (let i = 0; i < 3; i++) await writeStripedImage(path.join(dir, `ok${i}.png`), i, { width: 30, height: 30 });
  writeFileSync(path.join(dir, 'empty.png'), '');
  const good = readFileSync(path.join(dir, 'ok0.png'));
  writeFileSync(path.join(dir, 'cut.png'), good.subarray(0, Math.floor(good.length / 2)));
  writeFileSync(path.join(dir, 'notes.jpg'), 'this is text, not a JPEG\n');
  await writeStripedImage(path.join(dir, 'big.png'), 5, { width: 40, height: 40 });
  const env = { NTSNET_MAX_PIXELS: '1200' }; // 30 x 30 = 900 passes, 40 x 40 = 1600 does not

  const stop = runCli(['predict', dir, '--checkpoint', checkpoint, '--out', path.join(makeTempDir('bad-out'), 'a')], { env });
  assert.equal(stop.status, 1, stop.stderr);
  assert.match(stop.stderr, /ntsnet: error: .*(big|cut|empty|notes)\.(png|jpg).*--skip-bad/s);
  assert.doesNotMatch(stop.stderr, /\n\s+at /, 'no stack trace');

  const out = path.join(makeTempDir('bad-out'), 'b');
  const r = runCli(['predict', dir, '--checkpoint', checkpoint, '--out', out, '--skip-bad'], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1 + 3, r.stdout);
  assert.match(r.stderr, /3 image\(s\) scored, 4 failed/);
  const csv = readFileSync(path.join(out, 'predictions.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 1 + 7);
  assert.ok(csv[0]!.endsWith(',error'));
  const errRows = csv.filter((l) => l.includes(',error,'));
  assert.equal(errRows.length, 4);
  const reason = (name: string): string => errRows.find((l) => l.includes(`/${name},`))!;
  assert.match(reason('empty.png'), /empty \(0 bytes\)/);
  assert.match(reason('cut.png'), /truncated or corrupt/);
  assert.match(reason('notes.jpg'), /Could not decode image/);
  assert.match(reason('big.png'), /1,600 pixels, above ntsnet's limit of 1,200 pixels/);
  const json = JSON.parse(readFileSync(path.join(out, 'predictions.json'), 'utf8')) as { counts: { images: number; failed: number }; failed: { file: string; error: string }[] };
  assert.equal(json.counts.images, 3);
  assert.equal(json.counts.failed, 4);
  assert.deepEqual(json.failed.map((f) => f.file).sort(), ['big.png', 'cut.png', 'empty.png', 'notes.jpg']);
  for (const n of ['big.png', 'cut.png', 'empty.png', 'notes.jpg']) assert.ok(r.stderr.includes(`  - ${n}: `), `summary lists ${n}:\n${r.stderr}`);
});

test('test --skip-bad: the skipped files are in results.json ("skipped", a note) and metrics.md, not only on stderr', async () => {
  const { data, checkpoint } = await tinyCheckpoint();
  writeFileSync(path.join(data, 'test', 'good', 'zero.png'), '');
  const out = path.join(makeTempDir('skip-test'), 't');
  const r = runCli(['test', '--checkpoint', checkpoint, '--data', data, '--out', out, '--skip-bad']);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { results: { skipped?: string[]; notes: string[]; counts: { test: number } }[] };
  const r0 = res.results[0]!;
  assert.equal(r0.skipped?.length, 1);
  assert.match(r0.skipped![0]!, /zero\.png is empty \(0 bytes\)/);
  assert.ok(r0.notes.some((n) => /1 unreadable file\(s\) of the dataset were skipped \(--skip-bad\), so the metrics cover 4 test image\(s\) only/.test(n)), r0.notes.join('\n'));
  assert.match(readFileSync(path.join(out, 'metrics.md'), 'utf8'), /were skipped \(--skip-bad\)/);
});

test('--skip-bad also skips an image whose header is fine but whose pixel data is corrupt (full decode), in both layouts', async () => {
  const { readDataset } = await import('../src/data/dataset.js');
  const dir = path.join(makeTempDir('corrupt-mid'), 'normal');
  for (let i = 0; i < 6; i++) await writeStripedImage(path.join(dir, `n${i}.png`), i, { width: 48, height: 48 });
  const buf = readFileSync(path.join(dir, 'n2.png'));
  buf.fill(0x5a, Math.floor(buf.length / 2) - 50, Math.floor(buf.length / 2) + 50); // IDAT damaged, IHDR and IEND intact
  writeFileSync(path.join(dir, 'n2.png'), buf);
  const ds = await readDataset({ normal: [dir], abnormal: [], split: { train: 0.6, val: 0.2, test: 0.2 }, seed: 1 }, { valFraction: 0.2, seed: 1, skipBad: true });
  const all = [...ds.train, ...ds.val, ...ds.test.map((t) => t.path)];
  assert.equal(all.length, 5);
  assert.ok(!all.some((p) => p.endsWith('n2.png')));
  assert.ok(ds.warnings.some((w) => w.startsWith('Skipped bad image:') && w.includes('n2.png')), ds.warnings.join('\n'));
  const { checkpoint, data } = await tinyCheckpoint();
  writeFileSync(path.join(data, 'train', 'good', 'bad.png'), buf);
  const r = runCli(['fit', '--data', data, '--out', path.join(makeTempDir('corrupt-fit'), 'r'), '--preset', 'tiny', '--teacher', 'random', '--epochs', '1', '--skip-bad']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Skipped bad image: .*bad\.png/);
  void checkpoint;
});
