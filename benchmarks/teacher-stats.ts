/**
 * Diagnoses the teacher's BatchNorm after training (why EMAN can break a teacher): for each checkpoint, the teacher
 * BatchNorm layers' stored running statistics are compared with the statistics of the teacher's own activations on
 * the dataset's normal training images. A ratio far from 1 means the teacher normalises with statistics that do not
 * describe its own features (EMAN copies them from the student, paper eq. 6-7). Also reports how often the image
 * score (map maximum) lies at the image border, and how much the scores vary between test images.
 *
 *   node dist/benchmarks/teacher-stats.js --data ../shared/data/mvtec_ad/bottle CHECKPOINT_DIR...   (MVTec AD categories)
 */
import { parseArgs } from 'node:util';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import { loadTf } from '../src/backend/index.js';
import { readDataset } from '../src/data/dataset.js';
import { chunks, loadImageSet, toBatch } from '../src/engine/batches.js';
import { loadCheckpoint } from '../src/engine/checkpoint.js';
import { assessDetector } from '../src/engine/health.js';
import { scoreImageSet } from '../src/engine/score.js';
import { batchNormEval } from '../src/model/batchnorm.js';
import { param } from '../src/model/params.js';
import { convTorch, trunkForward, type TrunkOps } from '../src/model/resnet.js';

const { values: a, positionals } = parseArgs({ options: { data: { type: 'string' }, images: { type: 'string', default: '32' } }, allowPositionals: true });
if (!a.data || positionals.length === 0) {
  console.error('usage: teacher-stats.js --data DATASET CHECKPOINT_DIR...');
  process.exit(2);
}
const tf = loadTf();
const median = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]!; };

for (const dir of positionals) {
  const { model, meta } = await loadCheckpoint(tf, dir);
  const ds = await readDataset(a.data, { valFraction: meta.config.train.valFraction, seed: meta.config.train.seed });
  const size = model.config.imageSize;
  const train = await loadImageSet(ds.train.slice(0, Number(a.images)), size);
  // Per BatchNorm: sum and sum of squares of its input over all pixels of the sample images.
  const acc = new Map<string, { n: number; s: Float64Array; q: Float64Array }>();
  const p = model.teacher;
  const ops: TrunkOps = {
    conv: (h, name, stride, pad) => convTorch(tf, h, param(p, `${name}.weight`), stride, pad),
    blockConv: (h, name, _i, _o, stride) => convTorch(tf, h, param(p, `${name}.weight`), stride, 1),
    norm: (h, name) => {
      const c = h.shape[3];
      const s = tf.sum(h, [0, 1, 2]).dataSync(), q = tf.sum(tf.square(h), [0, 1, 2]).dataSync();
      const e = acc.get(name) ?? { n: 0, s: new Float64Array(c), q: new Float64Array(c) };
      e.n += h.shape[0] * h.shape[1] * h.shape[2];
      for (let i = 0; i < c; i++) { e.s[i] += s[i]!; e.q[i] += q[i]!; }
      acc.set(name, e);
      return batchNormEval(tf, h, param(p, `${name}.weight`), param(p, `${name}.bias`), param(p, `${name}.running_mean`), param(p, `${name}.running_var`));
    },
  };
  for (const idx of chunks([...train.images.keys()], 8)) {
    const x = toBatch(tf, train, idx);
    tf.tidy(() => { trunkForward(tf, x as Tensor4D, ops, model.config.teacherDepth, model.config.layers); });
    x.dispose();
  }
  const varRatios: number[] = [], meanShifts: number[] = [];
  const perLayer: string[] = [];
  for (const [name, e] of acc) {
    const rv = param(p, `${name}.running_var`).dataSync(), rm = param(p, `${name}.running_mean`).dataSync();
    const r: number[] = [], z: number[] = [];
    for (let i = 0; i < e.s.length; i++) {
      const m = e.s[i]! / e.n, v = Math.max(e.q[i]! / e.n - m * m, 1e-12);
      r.push(rv[i]! / v);
      z.push(Math.abs(m - rm[i]!) / Math.sqrt(v));
    }
    varRatios.push(median(r));
    meanShifts.push(median(z));
    if (name === 'bn1' || name.endsWith('.0.bn1')) perLayer.push(`${name} ${median(r).toExponential(1)}`);
  }
  const test = await loadImageSet(ds.test.map((t) => t.path), size);
  const { scores, maps } = scoreImageSet(tf, model, test, 16, true);
  const health = assessDetector(scores, maps!, size, 'test', model.config);
  const sm = scores.reduce((s, v) => s + v, 0) / scores.length;
  const ssd = Math.sqrt(scores.reduce((s, v) => s + (v - sm) ** 2, 0) / scores.length);
  console.log(`${dir}: student ${model.config.studentBlock}, teacher ${model.config.teacherNorm}`);
  console.log(`  teacher BN running var / actual var of its own input: median over ${acc.size} BN layers ${median(varRatios).toExponential(2)}, range ${Math.min(...varRatios).toExponential(1)} .. ${Math.max(...varRatios).toExponential(1)} (per layer: ${perLayer.join(', ')})`);
  console.log(`  |running mean - actual mean| / actual std: median ${median(meanShifts).toFixed(2)}, max ${Math.max(...meanShifts).toFixed(2)}`);
  console.log(`  test scores: mean ${sm.toExponential(3)}, coefficient of variation ${(ssd / sm).toExponential(2)}; map maximum within ${health.borderPx} px of the border for ${Math.round(health.borderFraction * scores.length)}/${scores.length} images; ${health.degenerate ? 'DEGENERATE' : 'healthy'}`);
  model.dispose();
}
