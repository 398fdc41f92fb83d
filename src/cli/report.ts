import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { incompleteTrainingWarning, readCheckpointMeta } from '../engine/checkpoint.js';
import { assertNotForeignFile, assertWritableFile } from '../util/writable.js';
import { assertOutsideDataset } from '../engine/paths.js';
import { createReport, DEFAULT_THUMB_SIZE, REPORT_FILE } from '../report/html.js';
import { addDatasetOptions, testDatasets, type DatasetFlags } from './datasetOptions.js';

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new InvalidArgumentError(`expected a positive integer, got "${v}"`);
  return n;
};

interface ReportFlags extends DatasetFlags {
  data?: string[];
  checkpoint?: string;
  out?: string;
  force?: boolean;
  thumbSize: number;
  batchSize?: number;
}

export function registerReport(program: Command, tfLoader: () => Tf): void {
  addDatasetOptions(program
    .command('report')
    .description(
      'write one self-contained HTML report (opens from disk, no network) for a test run: metrics, ROC curves, score histograms, ' +
        'a threshold slider with live pass/fail counts, and a gallery of the test images with heat maps (needs the dataset). See docs/report.md.',
    )
    .argument('<run-dir>', "output folder of 'ntsnet test' or 'ntsnet fit --test' (results.json; model.safetensors unless --checkpoint)")
    .option('--data <dirs...>', 'the MVTec AD category folder(s) that were tested (or --normal/--abnormal as used for fit); without them, no gallery')
    .option('--checkpoint <dir>', 'checkpoint folder when it is not the run folder')
    .option('--out <file>', `HTML file to write (default: <run-dir>/${REPORT_FILE}; a folder gets ${REPORT_FILE} inside)`)
    .option('--force', 'replace an existing --out file that is not an ntsnet report')
    .option('--thumb-size <px>', 'gallery thumbnail size (longest side)', positiveInt, DEFAULT_THUMB_SIZE)
    .option('--batch-size <n>', 'images per forward pass for the heat maps (does not change results)', positiveInt))
    .action(async (runDir: string, o: ReportFlags) => {
      const log = (l: string): void => void process.stderr.write(`${l}\n`);
      const baseDir = runDir.endsWith('.json') ? path.dirname(runDir) : runDir;
      let out = o.out ?? path.join(baseDir, REPORT_FILE);
      if ((await stat(out).catch(() => undefined))?.isDirectory()) out = path.join(out, REPORT_FILE);
      const dirs = [...(o.data ?? []), ...(o.normal ?? []), ...(o.abnormal ?? []), ...(o.masks ? [o.masks] : [])];
      for (const d of dirs) await assertOutsideDataset(path.dirname(path.resolve(out)), d);
      await assertWritableFile(out);
      await assertNotForeignFile(out, (h) => h.includes('<meta name="generator" content="ntsnet'), o.force ?? false);
      const ckMeta = await readCheckpointMeta(o.checkpoint ?? baseDir).catch(() => undefined);
      const incomplete = ckMeta && incompleteTrainingWarning(ckMeta, o.checkpoint ?? baseDir);
      if (incomplete) log(`warning: ${incomplete}`);
      let datasets;
      let tf: Tf | undefined;
      if (o.data?.length || o.normal?.length) {
        const meta = await readCheckpointMeta(o.checkpoint ?? baseDir);
        const t = meta.config.train;
        datasets = await testDatasets(o.data, o, meta.split, t.seed, t.valFraction);
        tf = tfLoader();
      }
      const r = await createReport(tf, { runDir, checkpoint: o.checkpoint, datasets, out, thumbSize: o.thumbSize, batchSize: o.batchSize, log });
      log(`wrote ${r.file} (${(r.bytes / 1024).toFixed(0)} KiB; ${r.images} test image(s), ${r.gallery} in the gallery)`);
    });
}
