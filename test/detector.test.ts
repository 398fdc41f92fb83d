import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { Detector } from '../src/api/detector.js';
import { normalTailThreshold } from '../src/engine/threshold.js';
import { makeTempDir, writeStripedImage } from './helpers.js';

/** Writes a striped 96x80 RGB PNG; `defect` paints a white square at (40, 40). */
const writeImage = (file: string, seed: number, defect = false): Promise<void> =>
  writeStripedImage(file, seed, defect ? { defect: { x: 40, y: 40 }, color: [255, 255, 255] } : {});

test('Detector: fit (tiny) -> predict -> save -> load gives the same scores; thresholds, overrides, dispose', { timeout: 90_000 }, async () => {
  const tmp = makeTempDir('detector');
  const data = path.join(tmp, 'widget');
  for (let i = 0; i < 8; i++) await writeImage(path.join(data, 'train/good', `${String(i).padStart(3, '0')}.png`), i);
  await writeImage(path.join(data, 'test/good/000.png'), 30);
  const imgs = [path.join(tmp, 'new', 'a.png'), path.join(tmp, 'new', 'b.png'), path.join(tmp, 'new', 'c.png')];
  await writeImage(imgs[0]!, 40);
  await writeImage(imgs[1]!, 41, true);
  await writeImage(imgs[2]!, 42);

  const det = await Detector.fit({ data, out: path.join(tmp, 'run'), config: { preset: 'tiny', train: { epochs: 1, valFraction: 0.4 } }, log: () => {} });
  let loaded: Detector | undefined;
  try {
    assert.equal(det.meta.config.train.epochs, 1);
    assert.equal(det.imageSize, 64);
    assert.equal(det.thresholds.imageSource, 'checkpoint');
    assert.equal(det.thresholds.image, normalTailThreshold(det.meta.valScores).threshold);
    assert.ok(det.fitResult && det.fitResult.history.length === 1);

    const res = await det.predict(imgs);
    assert.equal(res.length, 3);
    res.forEach((r, i) => {
      assert.equal(r.path, path.resolve(imgs[i]!));
      assert.deepEqual([r.width, r.height, r.map.length], [64, 64, 64 * 64]);
      assert.ok(r.map instanceof Float32Array);
      assert.equal(r.score, Math.max(...r.map), 'score = map maximum');
      assert.equal(r.normalizedScore, r.score / det.thresholds.image);
      assert.equal(r.isAnomalous, r.score > det.thresholds.image);
    });
    // One path or a folder works too.
    const [one] = await det.predict(imgs[1]!);
    assert.equal(one!.path, path.resolve(imgs[1]!));
    assert.equal((await det.predict(path.join(tmp, 'new'))).length, 3);

    const saved = path.join(tmp, 'copy');
    await det.save(saved);
    assert.ok(existsSync(path.join(saved, 'model.safetensors')) && existsSync(path.join(saved, 'config.json')));
    loaded = await Detector.load(saved);
    assert.deepEqual(loaded.meta.thresholds, det.meta.thresholds);
    const again = await loaded.predict(imgs);
    assert.deepEqual(again.map((r) => r.score), res.map((r) => r.score));
    loaded.dispose();

    // A threshold override below every score makes all images anomalous.
    const low = Math.min(...res.map((r) => r.score)) / 2;
    loaded = await Detector.load(saved, { threshold: low });
    assert.equal(loaded.thresholds.imageSource, 'override');
    assert.ok((await loaded.predict(imgs)).every((r) => r.isAnomalous && r.normalizedScore > 1));
    assert.ok(loaded.thresholds.pixel <= low);
  } finally {
    det.dispose();
    loaded?.dispose();
  }
  det.dispose(); // twice is fine
  await assert.rejects(det.predict(imgs), /disposed/);
  await assert.rejects(Detector.load(path.join(tmp, 'nowhere')), /Checkpoint not found/);
});
