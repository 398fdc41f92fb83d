import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { loadTf } from '../src/backend/index.js';
import { preset } from '../src/engine/config.js';
import { fit } from '../src/engine/fit.js';
import { resizeBilinear } from '../src/report/overlay.js';
import { makeTempDir, repoRoot, writeStripedImage } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

/** Writes a striped 96x80 RGB PNG; `defect` paints a white square at (30 + seed % 20, 40). */
const writeImage = (file: string, seed: number, defect = false): Promise<void> =>
  writeStripedImage(file, seed, defect ? { defect: { x: 30 + seed % 20, y: 40 }, color: [255, 255, 255] } : {});

/** Every file under `dir` (relative, '/'-separated), sorted. */
function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else out.push(r);
  }
  return out.sort();
}

interface Pred {
  images: { path: string; file: string; score: number; normalizedScore: number; label: string; threshold: number; timeMs: number; width: number; height: number; files: Record<string, string> }[];
  thresholds: { image: number; pixel: number; imageSource: string };
  map: { width: number; height: number; png16: { fullScale: number } };
}
const readPred = (dir: string): Pred => JSON.parse(readFileSync(path.join(dir, 'predictions.json'), 'utf8')) as Pred;
/** predictions.json images without the (timing-dependent) timeMs. */
const stable = (p: Pred): unknown => p.images.map(({ timeMs: _t, ...rest }) => rest);
/** predictions.csv without the time_ms column. */
const csvNoTime = (dir: string): string[] => readFileSync(path.join(dir, 'predictions.csv'), 'utf8').trim().split('\n').map((l) => { const c = l.split(','); c.splice(6, 1); return c.join(','); });

let shared: Promise<{ tmp: string; data: string; ckpt: string; inputs: string }> | undefined;
/** One tiny checkpoint (1 epoch, 64 px, random teacher) and 8 images to inspect in two sub-folders. */
function setup(): Promise<{ tmp: string; data: string; ckpt: string; inputs: string }> {
  shared ??= (async () => {
    const tmp = makeTempDir('inspect');
    const data = path.join(tmp, 'widget');
    for (let i = 0; i < 8; i++) await writeImage(path.join(data, 'train/good', `${String(i).padStart(3, '0')}.png`), i);
    for (let i = 0; i < 2; i++) await writeImage(path.join(data, 'test/good', `${String(i).padStart(3, '0')}.png`), 40 + i);
    const inputs = path.join(tmp, 'incoming');
    for (let i = 0; i < 4; i++) await writeImage(path.join(inputs, 'line1', `${String(i).padStart(3, '0')}.png`), 50 + i);
    for (let i = 0; i < 4; i++) await writeImage(path.join(inputs, 'line2', 'cam', `${String(i).padStart(3, '0')}.png`), 60 + i, true);
    const config = preset('tiny');
    config.train.epochs = 1;
    config.train.valFraction = 0.4;
    const ckpt = path.join(tmp, 'ckpt');
    await fit(loadTf(), { data, out: ckpt, config, log: () => {}, progress: false });
    return { tmp, data, ckpt, inputs };
  })();
  return shared;
}

test('predict --out: CSV / JSON, 16-bit map PNG + .npy at model size, mask and overlay at image size, folder structure kept', { timeout: 90_000 }, async () => {
  const { tmp, ckpt, inputs } = await setup();
  const out = path.join(tmp, 'out-full');
  const r = await run(process.execPath, [cli(), 'predict', inputs, '--checkpoint', ckpt, '--out', out, '--map-format', 'both', '--batch-size', '2'], { maxBuffer: 1 << 24 });
  const rows = r.stdout.trim().split('\n');
  assert.equal(rows[0], 'path\tscore\tnormalized_score\tlabel');
  assert.equal(rows.length, 9);
  const csv = readFileSync(path.join(out, 'predictions.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'path,file,score,normalized_score,label,threshold,time_ms,width,height,map_png,map_npy,mask,overlay,error');
  assert.equal(csv.length, 1 + 8, 'header + one row per image');
  const p = readPred(out);
  assert.equal(p.images.length, 8);
  assert.equal(p.thresholds.imageSource, 'checkpoint');
  assert.equal(p.map.png16.fullScale, 2 * p.thresholds.pixel);
  assert.deepEqual(p.images.map((i) => i.file), ['line1/000.png', 'line1/001.png', 'line1/002.png', 'line1/003.png', 'line2/cam/000.png', 'line2/cam/001.png', 'line2/cam/002.png', 'line2/cam/003.png']);
  for (const img of p.images) {
    assert.equal(img.normalizedScore, img.score / p.thresholds.image);
    assert.equal(img.label, img.score > p.thresholds.image ? 'anomalous' : 'normal');
    assert.ok(img.timeMs > 0);
    assert.deepEqual([img.width, img.height], [96, 80]);
    const stem = img.file.replace(/\.png$/, '');
    assert.deepEqual(img.files, { map: `${stem}_map.png`, npy: `${stem}_map.npy`, mask: `${stem}_mask.png`, overlay: `${stem}_overlay.png` });
    const mm = await sharp(path.join(out, img.files.map!)).metadata();
    assert.deepEqual([mm.format, mm.depth, mm.channels, mm.width, mm.height], ['png', 'ushort', 1, 64, 64], 'map: 16-bit grey at model size');
    const km = await sharp(path.join(out, img.files.mask!)).metadata();
    assert.deepEqual([km.format, km.depth, km.channels, km.width, km.height], ['png', 'uchar', 1, 96, 80], 'mask: 8-bit grey at image size');
    const om = await sharp(path.join(out, img.files.overlay!)).metadata();
    assert.deepEqual([om.width, om.height, om.channels], [96, 80, 3]);
    // .npy holds the raw map; the 16-bit PNG is its documented scaling; the mask is resized map > pixel threshold.
    const npy = readFileSync(path.join(out, img.files.npy!));
    const hl = npy.readUInt16LE(8);
    const map = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + hl, npy.byteOffset + npy.length));
    assert.equal(map.length, 64 * 64);
    assert.equal(Math.max(...map), img.score, 'score = map maximum');
    const { data } = await sharp(path.join(out, img.files.map!)).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    const u16 = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
    for (let k = 0; k < map.length; k += 97) assert.equal(u16[k], Math.round(Math.min(1, Math.max(0, map[k]! / p.map.png16.fullScale)) * 65535));
    // sharp decodes a grey PNG to 3 channels unless told: read the one mask channel.
    const mask = await sharp(path.join(out, img.files.mask!)).extractChannel(0).raw().toBuffer();
    assert.equal(mask.length, 96 * 80);
    const full = resizeBilinear(map, 64, 64, 96, 80);
    let agree = 0;
    for (let k = 0; k < mask.length; k++) if ((mask[k] === 255) === (full[k]! > p.thresholds.pixel) && (mask[k] === 0 || mask[k] === 255)) agree++;
    assert.equal(agree, mask.length, 'mask = (map resized to the image) > pixel threshold');
  }
  assert.ok(!listFiles(out).some((f) => path.basename(f).startsWith('.tmp-')), 'no temporary files left');
});

test('--threshold overrides the image threshold and changes labels; list-file input; output inside the input refused', { timeout: 90_000 }, async () => {
  const { tmp, ckpt, inputs } = await setup();
  const base = await run(process.execPath, [cli(), 'predict', inputs, '--checkpoint', ckpt], { maxBuffer: 1 << 24 });
  const rows = base.stdout.trim().split('\n').slice(1).map((l) => l.split('\t'));
  const scores = rows.map((c) => Number(c[1]));
  const anyNormal = rows.some((c) => c[3] === 'normal');
  const x = anyNormal ? Math.min(...scores) * 0.99 : Math.max(...scores) * 1.01;
  // The list file: relative paths resolve against its folder; comments and blank lines are skipped.
  const list = path.join(tmp, 'lists', 'batch.txt');
  mkdirSync(path.dirname(list), { recursive: true });
  const rel = readdirSync(path.join(inputs, 'line1')).map((f) => path.join('..', 'incoming', 'line1', f));
  writeFileSync(list, `# first line\n${rel.join('\n')}\n\n${path.join(inputs, 'line2', 'cam', '000.png')}\n`);
  const out = path.join(tmp, 'out-override');
  const o = await run(process.execPath, [cli(), 'predict', list, '--checkpoint', ckpt, '--out', out, '--threshold', String(x), '--map-format', 'npy'], { maxBuffer: 1 << 24 });
  const p = readPred(out);
  assert.equal(p.images.length, 5);
  assert.equal(p.thresholds.image, x);
  assert.equal(p.thresholds.imageSource, 'override');
  for (const img of p.images) {
    assert.equal(img.threshold, x);
    assert.equal(img.label, anyNormal ? 'anomalous' : 'normal', `${img.file} relabelled by --threshold`);
    assert.ok(!('map' in img.files) && 'npy' in img.files);
  }
  assert.deepEqual(p.images.map((i) => i.file), ['line1/000.png', 'line1/001.png', 'line1/002.png', 'line1/003.png', 'line2/cam/000.png']);
  assert.ok(existsSync(path.join(out, 'line2', 'cam', '000_overlay.png')));
  assert.match(o.stdout, anyNormal ? /\tanomalous\n/ : /\tnormal\n/);
  // Output inside the input folder (or inside a listed image's folder) is refused before anything is written.
  for (const [input, bad] of [[inputs, path.join(inputs, 'preds')], [list, path.join(inputs, 'line1', 'preds')]] as const) {
    await assert.rejects(run(process.execPath, [cli(), 'predict', input, '--checkpoint', ckpt, '--out', bad]), (e: { stderr: string }) => {
      assert.match(e.stderr, /inside the dataset folder/);
      return true;
    });
    assert.ok(!existsSync(bad));
  }
});

test('resumable: killed after a few images, the re-run finishes without redoing them and matches an uninterrupted run byte for byte', { timeout: 90_000 }, async () => {
  const { tmp, ckpt, inputs } = await setup();
  const args = (out: string): string[] => [cli(), 'predict', inputs, '--checkpoint', ckpt, '--out', out, '--map-format', 'both', '--batch-size', '2'];
  const ref = path.join(tmp, 'out-ref');
  await run(process.execPath, args(ref), { maxBuffer: 1 << 24 });

  const out = path.join(tmp, 'out-killed');
  const journal = path.join(out, 'predictions.partial.jsonl');
  const child = spawn(process.execPath, args(out), { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
  // Kill as soon as 3 images are journalled (header + 3 lines).
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      let n = 0;
      try { n = readFileSync(journal, 'utf8').split('\n').filter(Boolean).length; } catch { /* not yet */ }
      if (n >= 4) { clearInterval(timer); child.kill('SIGKILL'); resolve(); }
    }, 5);
    child.on('exit', () => { clearInterval(timer); reject(new Error('predict finished before it could be killed')); });
  }).catch((e: Error) => { throw e; });
  assert.equal(await exited, 'SIGKILL');
  assert.ok(!existsSync(path.join(out, 'predictions.csv')) && !existsSync(path.join(out, 'predictions.json')), 'final outputs are only written at the end');
  const entries = readFileSync(journal, 'utf8').split('\n').filter(Boolean).slice(1).map((l) => JSON.parse(l) as { file: string; files: Record<string, string> });
  assert.ok(entries.length >= 3 && entries.length < 8, `${entries.length} images done before the kill`);
  // Everything under the final names is complete (PNG decodes); only temporaries can be partial.
  for (const f of listFiles(out).filter((f) => f.endsWith('.png') && !path.basename(f).startsWith('.tmp-'))) await sharp(path.join(out, f)).raw().toBuffer();
  const before = new Map<string, { mtimeMs: number; ino: number }>();
  for (const e of entries) for (const f of Object.values(e.files)) { const s = statSync(path.join(out, f)); before.set(f, { mtimeMs: s.mtimeMs, ino: s.ino }); }

  const again = await run(process.execPath, args(out), { maxBuffer: 1 << 24 });
  assert.match(again.stderr, new RegExp(`resuming: ${entries.length} of 8 image\\(s\\) already done`));
  for (const [f, s] of before) {
    const now = statSync(path.join(out, f));
    assert.deepEqual({ mtimeMs: now.mtimeMs, ino: now.ino }, s, `${f} not rewritten`);
  }
  // Same results as the uninterrupted run: scores, labels, CSV (timing aside) and every per-image file, byte for byte.
  assert.deepEqual(stable(readPred(out)), stable(readPred(ref)));
  assert.deepEqual(csvNoTime(out), csvNoTime(ref));
  const files = listFiles(ref).filter((f) => !f.startsWith('predictions.'));
  assert.equal(files.length, 8 * 4);
  assert.deepEqual(listFiles(out).filter((f) => !f.startsWith('predictions.')), files, 'same file set, no temporaries left');
  for (const f of files) assert.ok(readFileSync(path.join(out, f)).equals(readFileSync(path.join(ref, f))), `${f} identical`);
  const jl = readFileSync(journal, 'utf8').split('\n').filter(Boolean);
  assert.equal(jl.length, 1 + 8, 'journal: header + each image once');

  // A third run has nothing left to do; --no-resume redoes everything with the same results.
  const third = await run(process.execPath, args(out), { maxBuffer: 1 << 24 });
  assert.match(third.stderr, /resuming: 8 of 8/);
  const fresh = await run(process.execPath, [...args(out), '--no-resume'], { maxBuffer: 1 << 24 });
  assert.doesNotMatch(fresh.stderr, /resuming/);
  assert.deepEqual(stable(readPred(out)), stable(readPred(ref)));
});
