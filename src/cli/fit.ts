import * as path from 'node:path';
import type { Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { evaluate, metricsTable, writeResults } from '../engine/evaluate.js';
import { fit, FitInterruptedError } from '../engine/fit.js';
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
      .option('--force', 'replace a checkpoint already in --out')
      .option('--resume', 'continue the interrupted run in --out from its last finished epoch (weights, optimiser state; its own settings); give the same data flags'),
  )).action(async (o: ConfigFlags & DatasetFlags & { data?: string; out: string; test?: boolean; force?: boolean; resume?: boolean }) => {
    if (o.resume && o.force) throw new Error('Give either --resume (continue the interrupted run) or --force (start over), not both.');
    if (o.data && o.normal) throw new Error('Give either --data (MVTec AD folder) or --normal/--abnormal (folder dataset), not both.');
    const config = buildRunConfig(o);
    const data = folderSpec(o, config.train.seed) ?? o.data;
    if (!data) throw new Error('Give --data DIR (MVTec AD category folder) or --normal DIR... --abnormal DIR... (folder dataset).');
    const tf = tfLoader();
    const log = (l: string): void => void process.stderr.write(`${l}\n`);
    // Ctrl-C / SIGTERM: stop after the current batch, mark the checkpoint interrupted (a second Ctrl-C kills at once).
    const ac = new AbortController();
    const stop = (sig: NodeJS.Signals): void => { log(`\n${sig}: stopping after the current batch (press Ctrl-C again to kill at once)...`); ac.abort(); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let r;
    try {
      r = await fit(tf, { data, skipBad: o.skipBad, force: o.force, resume: o.resume, signal: ac.signal, checkTestImages: o.test && !o.skipBad, out: o.out, config, teacherWeights: o.teacherWeights, download: o.download, log });
    } catch (e) {
      if (!(e instanceof FitInterruptedError)) throw e;
      log(`ntsnet: ${e.message}`);
      process.exit(130);
    } finally {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
    log(`fit: ${r.wallSeconds.toFixed(1)} s; best epoch ${r.meta.bestEpoch}; checkpoint ${path.join(r.checkpointDir, 'model.safetensors')}`);
    if (o.test) {
      const { model, meta } = await loadCheckpoint(tf, o.out);
      try {
        const cfg = meta.config; // with --resume, the interrupted run's own settings
        const [ds] = await testDatasets(o.data ? [o.data] : undefined, o, meta.split, cfg.train.seed, cfg.train.valFraction);
        const res = await evaluate(tf, model, ds!, cfg.train.evalBatchSize, log, meta.teacher);
        const files = await writeResults(o.out, [res], meta, { fitSeconds: r.wallSeconds, testSeconds: res.seconds, history: r.history });
        process.stdout.write(`${metricsTable([res], `${res.category}: NTSNet (${cfg.preset} preset, teacher ${teacherLabel(meta.teacher)} / ${cfg.model.teacherNorm}, student ${cfg.model.studentBlock})`)}\n`);
        log(`test: ${res.seconds.toFixed(1)} s (${res.imagesPerSecond.toFixed(1)} img/s scoring); wrote ${files.json} and ${files.md}`);
      } finally {
        model.dispose();
      }
    }
  });
}
