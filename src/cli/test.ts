import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { openOnnxScorer, type OnnxScorer } from '../engine/onnxModel.js';
import { readOnnxSummary } from '../export/index.js';
import { teacherLabel } from '../model/weights/resolve.js';
import type { Tf } from '../backend/index.js';
import { incompleteTrainingWarning, loadCheckpoint } from '../engine/checkpoint.js';
import { evaluate, metricsTable, writeResults } from '../engine/evaluate.js';
import { assertOutsideDataset } from '../engine/paths.js';
import * as path from 'node:path';
import { assertNotForeignFile, assertWritableFolder } from '../util/writable.js';
import { int } from './options.js';
import { addDatasetOptions, testDatasets, type DatasetFlags } from './datasetOptions.js';

export function registerTest(program: Command, tfLoader: () => Tf): void {
  addDatasetOptions(program
    .command('test')
    .description('evaluate a checkpoint on the test split of MVTec AD categories or of its folder dataset: image AUROC and pixel AUROC (JSON + Markdown table)')
    .requiredOption('--checkpoint <dir>', "folder written by 'ntsnet fit'")
    .option('--data <dirs...>', 'one or more MVTec AD category folders (or --normal/--abnormal as used for fit)'))
    .option('--out <dir>', 'where to write results.json and metrics.md (default: the checkpoint folder)')
    .option('--batch-size <n>', 'evaluation batch size (does not change results)', int)
    .option('--force', 'replace a results.json / metrics.md in --out that ntsnet did not write')
    .addOption(new Option('--engine <name>', "scoring engine: TF.js (tfjs-node, the reference) or onnxruntime-node on the checkpoint's ONNX export (e.g. an int8 one with --onnx)").choices(['tfjs', 'onnxruntime']))
    .option('--onnx <file>', 'ONNX model for --engine onnxruntime (default: model.onnx in the checkpoint folder, exported when missing or stale); it must come from this checkpoint; implies --engine onnxruntime')
    .action(async (o: DatasetFlags & { checkpoint: string; data?: string[]; out?: string; batchSize?: number; force?: boolean; engine?: 'tfjs' | 'onnxruntime'; onnx?: string }) => {
      if (o.onnx && o.engine === 'tfjs') throw new Error('--onnx needs --engine onnxruntime (or no --engine)');
      o.engine ??= o.onnx ? 'onnxruntime' : 'tfjs';
      const tf = tfLoader();
      const log = (l: string): void => void process.stderr.write(`${l}\n`);
      const out = o.out ?? o.checkpoint;
      await assertWritableFolder(out, o.out ? '--out' : '--checkpoint (results.json is written there; give --out to write elsewhere)');
      // A results.json / metrics.md that ntsnet did not write is the user's: never replaced unasked.
      await assertNotForeignFile(path.join(out, 'results.json'), (h) => h.includes('"results"') && h.includes('"imageAuroc"'), o.force ?? false, 'results.json in --out');
      await assertNotForeignFile(path.join(out, 'metrics.md'), (h) => h.includes('### NTSNet (') || h.includes('DEGENERATE'), o.force ?? false, 'metrics.md in --out');
      const { model, meta } = await loadCheckpoint(tf, o.checkpoint);
      const incomplete = incompleteTrainingWarning(meta, o.checkpoint);
      if (incomplete) log(`warning: ${incomplete}`);
      let onnx: OnnxScorer | undefined;
      try {
        if (o.engine === 'onnxruntime') onnx = await openOnnxScorer(model, o.checkpoint, { onnx: o.onnx, log, meta });
        const t = meta.config.train;
        const datasets = await testDatasets(o.data, o, meta.split, t.seed, t.valFraction);
        for (const d of [...(o.data ?? []), ...(o.normal ?? []), ...(o.abnormal ?? []), ...(o.masks ? [o.masks] : [])]) await assertOutsideDataset(out, d);
        const results = [];
        for (const ds of datasets) results.push(await evaluate(tf, model, ds, o.batchSize ?? t.evalBatchSize, log, meta.teacher, onnx?.scorer));
        const engine = onnx ? { name: 'onnxruntime-node', onnx: path.resolve(onnx.file), quantization: onnxQuantization(onnx.file) } : { name: 'tfjs-node' };
        const files = await writeResults(out, results, meta, { engine });
        if (onnx) log(`engine: onnxruntime-node on ${onnx.file}${engine.quantization ? ' (int8)' : ''}`);
        process.stdout.write(`${metricsTable(results, `NTSNet (${meta.config.preset} preset, teacher ${teacherLabel(meta.teacher)} / ${meta.config.model.teacherNorm}, student ${meta.config.model.studentBlock})`)}\n`);
        for (const r of results) log(`${r.category}: ${r.seconds.toFixed(1)} s, ${r.imagesPerSecond.toFixed(1)} img/s scoring`);
        log(`wrote ${files.json} and ${files.md}`);
      } finally {
        await onnx?.det.dispose();
        model.dispose();
      }
    });
}

/** The `ntsnet.quantization` metadata of an ONNX file (int8 exports), or null. */
function onnxQuantization(file: string): unknown {
  const q = readOnnxSummary(readFileSync(file)).metadata['ntsnet.quantization'];
  return q ? (JSON.parse(q) as unknown) : null;
}
