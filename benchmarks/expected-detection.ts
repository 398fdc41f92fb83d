/**
 * Label-free model selection figures for the trained jobs of a benchmark run: for every `<dataset>/<config>` job,
 * synthetic defects are pasted into the checkpoint's held-out normal validation images (engine/synthetic.ts) and the
 * expected detection (image / pixel AUROC, clean vs synthetic) and the detector-health check are computed; the
 * job's test AUROCs from run.json are printed beside them only for comparison (they play no part in the figure).
 *
 *   node dist/benchmarks/expected-detection.js RUN_DIR [--json OUT.json] [--configs a,b]
 *
 * With --json, rows already in OUT.json for jobs not scored now (their checkpoint is gone, or not in --configs) are
 * kept, so the file can grow as a run is resumed; `ntsnet benchmark` reads RUN_DIR/expected-detection.json for its
 * label-free selection table. Finally the label-free rule (src/bench/select.ts) is applied against `baseline`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { forEachTrainedJob } from '../src/bench/trainedJobs.js';
import { loadImageSet } from '../src/engine/batches.js';
import { assessDetector } from '../src/engine/health.js';
import { scoreImageSet } from '../src/engine/score.js';
import { expectedDetection, makeSyntheticSet, type ExpectedDetection } from '../src/engine/synthetic.js';
import { labelFreeSelection } from '../src/bench/select.js';

const { values: a, positionals } = parseArgs({ options: { json: { type: 'string' }, configs: { type: 'string' } }, allowPositionals: true });
if (positionals.length !== 1) {
  console.error('usage: expected-detection.js RUN_DIR [--json OUT.json] [--configs a,b]');
  process.exit(2);
}
const run = positionals[0]!;
const tf = loadTf();
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(1));
const rows: Record<string, unknown>[] = [];
console.log('| dataset | config | synthetic image AUROC | synthetic pixel AUROC | degenerate | test image AUROC | test pixel AUROC |');
console.log('|---|---|---|---|---|---|---|');
await forEachTrainedJob(tf, run, async ({ dataset: ds, config: cfg, dir, model, meta, split }) => {
  const size = model.config.imageSize, bs = meta.config.train.evalBatchSize;
  const val = await loadImageSet(split.val, size);
  const clean = scoreImageSet(tf, model, val, bs, true);
  const ed = expectedDetection(tf, model, makeSyntheticSet(val, meta.config.train.seed), clean.scores, clean.maps!, bs);
  const health = assessDetector(clean.scores, clean.maps!, size, 'validation', model.config, meta.teacher, ed);
  const rec = existsSync(path.join(dir, 'run.json')) ? (JSON.parse(readFileSync(path.join(dir, 'run.json'), 'utf8')) as { variants: { imageAuroc: number | null; pixelAuroc: number | null }[] }) : undefined;
  const own = rec?.variants[0];
  console.log(`| ${ds} | ${cfg} | ${pct(ed.imageAuroc)} | ${pct(ed.pixelAuroc)} | ${health.degenerate ? 'YES' : 'no'} | ${pct(own?.imageAuroc)} | ${pct(own?.pixelAuroc)} |`);
  rows.push({ dataset: ds, config: cfg, expectedDetection: ed, health, test: own ?? null });
}, a.configs ? { configs: a.configs.split(',') } : {});
type Row = { dataset: string; config: string; expectedDetection: ExpectedDetection };
const all = rows as Row[];
if (a.json && existsSync(a.json)) {
  for (const old of JSON.parse(readFileSync(a.json, 'utf8')) as Row[]) {
    if (!all.some((r) => r.dataset === old.dataset && r.config === old.config)) { all.push(old); console.log(`| ${old.dataset} | ${old.config} | ${pct(old.expectedDetection.imageAuroc)} | ${pct(old.expectedDetection.pixelAuroc)} | (kept from ${path.basename(a.json)}) | | |`); }
  }
}
if (a.json) writeFileSync(a.json, `${JSON.stringify(all, null, 1)}\n`);
console.log('\nlabel-free rule (kept only where both synthetic AUROCs rise on every dataset), against baseline:');
for (const v of labelFreeSelection(all.map((r) => ({ dataset: r.dataset, config: r.config, expected: r.expectedDetection })), 'baseline')) console.log(`  ${v.config}: ${v.verdict} (${v.reasons.join('; ')})`);
