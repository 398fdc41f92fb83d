/**
 * What the student imitates (issue 9, CoT investigation): for every trained `<dataset>/<config>` job of a benchmark
 * run, the per-layer distance maps (paper eq. 12 before fusion) on the job's test split, split by ground truth:
 * mean distance on pixels of normal test images, mean distance on defect pixels (inside the masks), their ratio
 * (the contrast the detector works with: a student that also reproduces the teacher on defects has a low ratio),
 * the layer's pixel AUROC, and the mean distance on the held-out normal validation images (how well it imitates
 * the teacher where it should). Test labels are used here only to explain measured results, never to choose.
 *
 *   node dist/benchmarks/cot-diagnose.js RUN_DIR [--dataset ID] [--configs a,b] [--json OUT.json]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { forEachTrainedJob } from '../src/bench/trainedJobs.js';
import { loadImageSet } from '../src/engine/batches.js';
import { loadTestMasks } from '../src/engine/evaluate.js';
import { auroc } from '../src/metrics/auroc.js';
import { perLayerMaps } from '../src/bench/variants.js';

const { values: a, positionals } = parseArgs({ options: { json: { type: 'string' }, dataset: { type: 'string' }, configs: { type: 'string' } }, allowPositionals: true });
if (positionals.length !== 1) {
  console.error('usage: cot-diagnose.js RUN_DIR [--dataset ID] [--configs a,b] [--json OUT.json]');
  process.exit(2);
}
const run = positionals[0]!;
const only = a.configs?.split(',');
const tf = loadTf();
const f = (v: number, d = 4): string => v.toFixed(d);
const rows: Record<string, unknown>[] = [];
console.log('| dataset | config | layer | val normal mean | test normal-image mean | defect-pixel mean | ratio defect / normal | layer pixel AUROC |');
console.log('|---|---|---|---|---|---|---|---|');
await forEachTrainedJob(tf, run, async ({ dataset: ds, config: cfg, model, meta, split }) => {
  const size = model.config.imageSize, hw = size * size, bs = meta.config.train.evalBatchSize;
  const gt = await loadTestMasks(split, size);
  if (!gt) throw new Error(`${ds}: some defective test image has no mask`);
  const val = perLayerMaps(tf, model, await loadImageSet(split.val, size), bs);
  const test = perLayerMaps(tf, model, await loadImageSet(split.test.map((t) => t.path), size), bs);
  const normalImage = split.test.map((t) => t.label === 0);
  for (const l of model.config.layers) {
    const v = val.layers.get(l)!, m = test.layers.get(l)!;
    let vs = 0;
    for (let i = 0; i < v.length; i++) vs += v[i]!;
    let ns = 0, nn = 0, dsum = 0, dn = 0;
    for (let i = 0; i < m.length; i++) {
      if (gt[i] === 1) { dsum += m[i]!; dn++; } else if (normalImage[Math.floor(i / hw)]) { ns += m[i]!; nn++; }
    }
    const r = { dataset: ds, config: cfg, layer: l, valMean: vs / v.length, normalMean: ns / nn, defectMean: dsum / dn, ratio: dsum / dn / (ns / nn), pixelAuroc: auroc(m, gt) };
    rows.push(r);
    console.log(`| ${ds} | ${cfg} | ${l} | ${f(r.valMean)} | ${f(r.normalMean)} | ${f(r.defectMean)} | ${f(r.ratio, 2)} | ${r.pixelAuroc === null ? 'n/a' : (100 * r.pixelAuroc).toFixed(1)} |`);
  }
}, { ...(a.dataset ? { dataset: a.dataset } : {}), ...(only ? { configs: only } : {}) });
if (a.json) writeFileSync(a.json, `${JSON.stringify(rows, null, 1)}\n`);
