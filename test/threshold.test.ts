import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { loadTf } from '../src/backend/index.js';
import { loadImageSet } from '../src/engine/batches.js';
import { loadCheckpoint, type CheckpointMeta } from '../src/engine/checkpoint.js';
import { preset } from '../src/engine/config.js';
import { fit } from '../src/engine/fit.js';
import { drawContour, effectiveThresholds, encodeMapPng16, encodeNpyFloat32, predictionsCsv, outputBases } from '../src/engine/inspect.js';
import { scoreImageSet } from '../src/engine/score.js';
import { computeThresholds, f1OptimalThreshold, meanStd, normalTailThreshold, quantile } from '../src/engine/threshold.js';
import { makeTempDir, writeStripedImage } from './helpers.js';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} != ${b}`);

test('quantile: linear interpolation between order statistics (numpy default), hand-computed', () => {
  close(quantile([5, 1, 4, 2, 3], 0.5), 3);
  close(quantile([5, 1, 4, 2, 3], 0.999), 4.996); // h = 4 * 0.999 = 3.996 -> 4 + 0.996 * (5 - 4)
  close(quantile([5, 1, 4, 2, 3], 0), 1);
  close(quantile([5, 1, 4, 2, 3], 1), 5);
  close(quantile([7], 0.999), 7);
  assert.throws(() => quantile([], 0.5), /empty/);
});

test('image threshold rule: (1 + 0.05) * max(mean + 3 sample-std, max), hand-computed', () => {
  // [1..5]: mean 3, sample std sqrt(10 / 4) = 1.58114; mean + 3 std = 7.74342 > max 5 -> 1.05 * 7.74342 = 8.13059
  const a = normalTailThreshold([1, 2, 3, 4, 5]);
  close(a.mean, 3);
  close(a.std, Math.sqrt(2.5));
  close(a.threshold, 1.05 * (3 + 3 * Math.sqrt(2.5)));
  close(a.threshold, 8.130592, 1e-6);
  // 19 x 0 and one 1: mean 0.05, std sqrt(0.95 / 19) = 0.223607, mean + 3 std = 0.720820 < max 1 -> 1.05
  const b = normalTailThreshold([...Array(19).fill(0), 1]);
  close(b.tailLimit, 0.05 + 3 * Math.sqrt(0.05));
  close(b.threshold, 1.05);
  // one image: std 0, threshold = 1.05 x the score
  close(normalTailThreshold([2]).threshold, 2.1);
  close(meanStd([2]).std, 0);
});

test('pixel threshold: 1.05 x q0.999 of all normal map pixels; thresholds never above each other the wrong way', () => {
  const maps = Float32Array.from({ length: 2000 }, (_, i) => 1999 - i); // 0..1999 in any order
  const t = computeThresholds({ normalScores: [1999, 1500, 1800], normalMaps: maps, source: 'validation' });
  close(t.normal.pixelQuantileValue, 1997.001, 1e-9); // h = 1999 * 0.999 = 1997.001
  close(t.pixel, 1.05 * 1997.001, 1e-9);
  assert.equal(t.imageMethod, 'normal-tail');
  assert.equal(t.source, 'validation');
  close(t.image, normalTailThreshold([1999, 1500, 1800]).threshold);
  assert.ok(t.pixel <= t.image);
  assert.equal(t.normal.count, 3);
  assert.equal(t.normal.pixels, 2000);
  assert.ok(t.warnings.some((w) => /only 3 normal calibration image/.test(w)));
  assert.throws(() => computeThresholds({ normalScores: [], normalMaps: maps, source: 'validation' }), /no normal images/);
  assert.throws(() => computeThresholds({ normalScores: [NaN], normalMaps: maps, source: 'validation' }), /non-finite/);
  const tr = computeThresholds({ normalScores: [1, 2], normalMaps: [0.5, 1], source: 'training' });
  assert.ok(tr.warnings.some((w) => /TRAINING images/.test(w)));
});

test('F1-optimal threshold with labelled defective validation images, hand-computed', () => {
  // sorted: 1n 2n 2.5d 3n 4d 5d. Thresholds (score > t is anomalous): below 1: F1 6/9; 1.5: 6/8; 2.25: 6/7 (best);
  // 2.75: 4/6; 3.5: 4/5; 4.5: 2/4.
  const c = f1OptimalThreshold([1, 2, 3], [2.5, 4, 5])!;
  close(c.threshold, 2.25);
  close(c.f1, 6 / 7);
  close(c.precision, 0.75);
  close(c.recall, 1);
  // perfectly separable: the midpoint of the gap
  close(f1OptimalThreshold([1, 2], [10, 12])!.threshold, 6);
  assert.equal(f1OptimalThreshold([1, 2], []), undefined);
  const t = computeThresholds({ normalScores: [1, 2, 3], normalMaps: [0, 1, 2, 3, 3.5], defectiveScores: [2.5, 4, 5], source: 'validation' });
  assert.equal(t.imageMethod, 'f1');
  close(t.image, 2.25);
  assert.deepEqual(t.f1, { defectiveCount: 3, f1: 6 / 7, precision: 0.75, recall: 1 });
  // 1.05 * q0.999([0, 1, 2, 3, 3.5]) = 1.05 * 3.498 > 2.25: lowered to the image threshold, with a warning
  close(t.pixel, 2.25);
  assert.ok(t.warnings.some((w) => /lowered to the image threshold/.test(w)));
});

test('effective thresholds: checkpoint values, --threshold override, pixel never above image, older checkpoints', () => {
  const stored = computeThresholds({ normalScores: [1, 2, 3], normalMaps: [0.1, 0.5, 1, 2.5], source: 'validation' });
  const meta = { valScores: [1, 2, 3], thresholds: stored } as unknown as CheckpointMeta;
  const e = effectiveThresholds(meta);
  assert.deepEqual([e.image, e.pixel, e.imageSource, e.pixelSource, e.fullScale], [stored.image, stored.pixel, 'checkpoint', 'checkpoint', 2 * stored.pixel]);
  const o = effectiveThresholds(meta, { image: 1 });
  assert.deepEqual([o.image, o.pixel, o.imageSource], [1, 1, 'override']);
  assert.ok(o.notes.some((n) => /lowered/.test(n)));
  assert.throws(() => effectiveThresholds(meta, { image: -1 }), /--threshold must be a positive number/);
  const old = effectiveThresholds({ valScores: [1, 2, 3] } as unknown as CheckpointMeta);
  assert.deepEqual([old.image, old.pixel, old.imageSource, old.pixelSource], [normalTailThreshold([1, 2, 3]).threshold, normalTailThreshold([1, 2, 3]).threshold, 'checkpoint-val-scores', 'image-threshold']);
  assert.throws(() => effectiveThresholds({ valScores: [] } as unknown as CheckpointMeta), /Pass --threshold/);
});

test('map encodings: 16-bit PNG scale and .npy layout; contour; CSV quoting; output names', async () => {
  const map = Float32Array.from([0, 0.5, 1, 2, 3, -1]); // 3 x 2, full scale 2
  const png = await encodeMapPng16(map, 3, 2, 2);
  const m = await sharp(png).metadata();
  assert.deepEqual([m.format, m.depth, m.channels, m.width, m.height], ['png', 'ushort', 1, 3, 2]);
  const { data } = await sharp(png).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  assert.deepEqual(Array.from(new Uint16Array(data.buffer, data.byteOffset, data.length / 2)), [0, 16384, 32768, 65535, 65535, 0]); // round(v / 2 * 65535)
  const npy = encodeNpyFloat32(map, 3, 2);
  const hlen = npy.readUInt16LE(8);
  assert.equal(npy.subarray(0, 6).toString('latin1'), '\x93NUMPY');
  assert.equal((10 + hlen) % 64, 0);
  assert.match(npy.subarray(10, 10 + hlen).toString('latin1'), /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  assert.deepEqual(Array.from(new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + hlen, npy.byteOffset + npy.length))), Array.from(map));
  // 5x4 mask with a 3x2 block: all 6 block pixels are boundary pixels (each has an outside 4-neighbour)
  const mask = new Uint8Array(20);
  for (const i of [6, 7, 8, 11, 12, 13]) mask[i] = 255;
  const rgb = new Uint8Array(60);
  drawContour(rgb, mask, 5, 4, [255, 0, 255], 1);
  for (let i = 0; i < 20; i++) assert.deepEqual(Array.from(rgb.subarray(i * 3, i * 3 + 3)), mask[i] ? [255, 0, 255] : [0, 0, 0], `pixel ${i}`);
  const csv = predictionsCsv([{ path: '/a,b/"x".png', file: 'x.png', score: 1.5, normalizedScore: 0.5, label: 'normal', threshold: 3, timeMs: 2, width: 4, height: 5 }]);
  assert.equal(csv.split('\n')[1], '"/a,b/""x"".png",x.png,1.5,0.5,normal,3,2,4,5,,,,,');
  assert.deepEqual(outputBases(['/r/a.png', '/r/a.jpg', '/r/s/b.png'], '/r'), ['a_png', 'a_jpg', 's/b']);
});

/** Writes a striped 96x80 RGB PNG; `defect` paints a white square at (30 + seed, 40). */
const writeImage = (file: string, seed: number, defect = false): Promise<void> =>
  writeStripedImage(file, seed, defect ? { defect: { x: 30 + seed, y: 40 }, color: [255, 255, 255] } : {});

async function makeCategory(root: string): Promise<void> {
  for (let i = 0; i < 8; i++) await writeImage(path.join(root, 'train/good', `${String(i).padStart(3, '0')}.png`), i);
  for (let i = 0; i < 2; i++) await writeImage(path.join(root, 'test/good', `${String(i).padStart(3, '0')}.png`), 50 + i);
  for (let i = 0; i < 2; i++) await writeImage(path.join(root, 'test/spot', `${String(i).padStart(3, '0')}.png`), 70 + i, true);
}

test('fit stores thresholds = the rule applied to the validation images (never test images); training fallback; F1 with defective validation images', { timeout: 150_000 }, async () => {
  const tf = loadTf();
  const tmp = makeTempDir('thr');
  const data = path.join(tmp, 'widget');
  await makeCategory(data);
  const config = preset('tiny');
  config.train.epochs = 1;
  config.train.valFraction = 0.4; // 8 train/good -> 3 validation images
  const lines: string[] = [];
  const out = path.join(tmp, 'run');
  await fit(tf, { data, out, config, log: (l) => lines.push(l), progress: false });
  const { model, meta } = await loadCheckpoint(tf, out);
  try {
    const t = meta.thresholds!;
    assert.ok(t, 'thresholds stored in the checkpoint');
    assert.equal(t.source, 'validation');
    assert.equal(t.imageMethod, 'normal-tail');
    assert.equal(meta.split.files.val.length, 3);
    assert.equal(t.normal.count, 3);
    // The image threshold is exactly the rule applied to the validation scores stored beside it.
    assert.equal(t.image, normalTailThreshold(meta.valScores).threshold);
    // Re-scoring the validation images (from the saved split) with the loaded model reproduces both thresholds.
    const valFiles = meta.split.files.val.map((f) => path.join(data, f));
    assert.equal(meta.split.files.test.length, 4);
    assert.ok(meta.split.files.val.every((f) => f.startsWith('train/good/') && !meta.split.files.test.includes(f)), 'calibration images are held-out train/good images, never test images');
    const again = scoreImageSet(tf, model, await loadImageSet(valFiles, 64), 16, true);
    const re = computeThresholds({ normalScores: again.scores, normalMaps: again.maps!, source: 'validation' });
    close(re.image, t.image, 1e-5);
    close(re.pixel, t.pixel, 1e-5);
    assert.deepEqual(Array.from(again.scores).map((v) => v.toFixed(4)), meta.valScores.map((v) => v.toFixed(4)));
    // The config.json copy holds the same thresholds.
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as CheckpointMeta;
    assert.deepEqual(cfg.thresholds, t);
    assert.ok(lines.some((l) => /^thresholds: image /.test(l)), 'thresholds logged');
  } finally {
    model.dispose();
  }

  // Test images are refused as defective validation images.
  await assert.rejects(fit(tf, { data, out: path.join(tmp, 'refused'), config, defectiveValidation: [path.join(data, 'test/spot/000.png')], log: () => {}, progress: false }), /is a test image of the dataset/);

  // Separate labelled defective validation images: F1-optimal image threshold.
  const defVal = [path.join(tmp, 'defval', 'a.png'), path.join(tmp, 'defval', 'b.png')];
  await writeImage(defVal[0]!, 90, true);
  await writeImage(defVal[1]!, 91, true);
  const outF1 = path.join(tmp, 'run-f1');
  await fit(tf, { data, out: outF1, config, defectiveValidation: defVal, log: () => {}, progress: false });
  const f1 = (await loadCheckpoint(tf, outF1));
  try {
    const t = f1.meta.thresholds!;
    assert.equal(t.imageMethod, 'f1');
    assert.equal(t.f1!.defectiveCount, 2);
    const ds = scoreImageSet(tf, f1.model, await loadImageSet(defVal, 64), 16).scores;
    close(t.image, f1OptimalThreshold(f1.meta.valScores, Array.from(ds))!.threshold, 1e-5);
  } finally {
    f1.model.dispose();
  }

  // No validation images: calibrated on the training images, with a warning.
  const cfg0 = preset('tiny');
  cfg0.train.epochs = 1;
  cfg0.train.valFraction = 0;
  const warn: string[] = [];
  const out0 = path.join(tmp, 'run-noval');
  await fit(tf, { data, out: out0, config: cfg0, log: (l) => warn.push(l), progress: false });
  const m0 = await loadCheckpoint(tf, out0);
  try {
    assert.deepEqual(m0.meta.valScores, []);
    assert.equal(m0.meta.thresholds!.source, 'training');
    assert.equal(m0.meta.thresholds!.normal.count, 8);
    assert.ok(warn.some((l) => /warning: thresholds: no validation images/.test(l)), warn.join('\n'));
    const trainFiles = m0.meta.split.files.train.map((f) => path.join(data, f));
    const s = scoreImageSet(tf, m0.model, await loadImageSet(trainFiles, 64), 16).scores;
    close(m0.meta.thresholds!.image, normalTailThreshold(s).threshold, 1e-5);
  } finally {
    m0.model.dispose();
  }
});
