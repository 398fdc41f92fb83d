import * as path from 'node:path';
import type { Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { evaluate, metricsTable, writeResults } from '../engine/evaluate.js';
import { fit } from '../engine/fit.js';
import { teacherLabel } from '../model/weights/resolve.js';
import { addDatasetOptions, folderSpec, testDatasets, type DatasetFlags } from './datasetOptions.js';
import { addConfigOptions, buildRunConfig, type ConfigFlags } from './options.js';

export function registerFit(program: Command, tfLoader: () => Tf): void {
  addConfigOptions(addDatasetOptions(
    program
      .command('fit')
      .description('train NTSNet on normal images (MVTec AD train/good, or a folder dataset); keeps the best-validation-loss checkpoint')
      .option('--data <dir>', 'MVTec AD category folder (e.g. ../shared/data/mvtec_ad/bottle); or use --normal/--abnormal')
      .requiredOption('--out <dir>', 'output folder for the checkpoint (model.safetensors + config.json)')
      .option('--test', 'evaluate the best checkpoint on the test split afterwards and write results.json + metrics.md')
      .option('--force', 'replace a checkpoint already in --out'),
  )).action(async (o: ConfigFlags & DatasetFlags & { data?: string; out: string; test?: boolean; force?: boolean }) => {
    if (o.data && o.normal) throw new Error('Give either --data (MVTec AD folder) or --normal/--abnormal (folder dataset), not both.');
    const config = buildRunConfig(o);
    const data = folderSpec(o, config.train.seed) ?? o.data;
    if (!data) throw new Error('Give --data DIR (MVTec AD category folder) or --normal DIR... --abnormal DIR... (folder dataset).');
    const tf = tfLoader();
    const log = (l: string): void => void process.stderr.write(`${l}\n`);
    const r = await fit(tf, { data, skipBad: o.skipBad, force: o.force, checkTestImages: o.test && !o.skipBad, out: o.out, config, teacherWeights: o.teacherWeights, download: o.download, log });
    log(`fit: ${r.wallSeconds.toFixed(1)} s; best epoch ${r.meta.bestEpoch}; checkpoint ${path.join(r.checkpointDir, 'model.safetensors')}`);
    if (o.test) {
      const { model, meta } = await loadCheckpoint(tf, o.out);
      try {
        const [ds] = await testDatasets(o.data ? [o.data] : undefined, o, meta.split, config.train.seed, config.train.valFraction);
        const res = await evaluate(tf, model, ds!, config.train.evalBatchSize, log, meta.teacher);
        const files = await writeResults(o.out, [res], meta, { fitSeconds: r.wallSeconds, testSeconds: res.seconds, history: r.history });
        process.stdout.write(`${metricsTable([res], `${res.category}: NTSNet (${config.preset} preset, teacher ${teacherLabel(meta.teacher)} / ${config.model.teacherNorm}, student ${config.model.studentBlock})`)}\n`);
        log(`test: ${res.seconds.toFixed(1)} s (${res.imagesPerSecond.toFixed(1)} img/s scoring); wrote ${files.json} and ${files.md}`);
      } finally {
        model.dispose();
      }
    }
  });
}
