import { incompleteTrainingWarning } from '../engine/checkpoint.js';
import * as path from 'node:path';
import { existsSync, rmSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { benchmarkEngines, compareWithTfjs, OnnxDetector } from '../engine/onnxPredict.js';
import { defaultSidecarPath, exportCheckpointOnnx, parityInputs } from '../export/index.js';
import { exportCheckpointInt8, INT8_HEADROOM, INT8_MAX_HEADROOM, INT8_PERCENTILE, int8Parity } from '../export/int8.js';
import { cpuTakes8BitWeights, defaultInt8WeightBits, type Int8WeightBits } from '../export/quantize.js';
import { exportCheckpointWeb } from '../export/web.js';
import { assertWritableFile, assertWritableFolder } from '../util/writable.js';
import { positive, positiveInt, positiveIntList } from './options.js';


interface ExportFlags {
  format: 'onnx' | 'web';
  out: string;
  sidecar?: string;
  verify: boolean;
  tolerance: number;
  int8Tolerance: number;
  benchmark?: boolean;
  benchmarkBatches: number[];
  runs: number;
  threads?: number;
  spinning?: boolean;
  quantize?: 'int8';
  calibration?: string;
  calibrationImages: number;
  calibrationPercentile: number;
  calibrationHeadroom: number;
  int8Weights: 'auto' | '7' | '8';
}

export function registerExport(program: Command, tfLoader: () => Tf): void {
  program
    .command('export')
    .description(
      'export a checkpoint as a portable model: an ONNX graph (opset 17) computing what predict computes (input images ' +
        '[batch,3,S,S] ImageNet-normalised RGB; outputs scores [batch] and anomaly_maps [batch,S,S]) and a sidecar JSON ' +
        'with the config, the preprocessing and the thresholds; checks the graph against TF.js with onnxruntime. --format web writes a ' +
        'browser folder instead (model.json, weights.bin, the TF.js bundle ntsnet-web.js, index.html; see docs/export.md)',
    )
    .argument('<checkpoint>', "folder written by 'ntsnet fit' (or its model.safetensors)")
    .addOption(new Option('--format <fmt>', 'export format').choices(['onnx', 'web']).default('onnx'))
    .requiredOption('--out <file>', 'ONNX file to write, e.g. model.onnx; with --format web the folder to write (model.json, weights.bin, ntsnet-web.js, index.html)')
    .option('--sidecar <file>', 'sidecar JSON to write (default: <out>.json)')
    .option('--no-verify', 'skip the check of the exported graph (onnxruntime) against TF.js on two test images')
    .option('--tolerance <x>', 'float32 export: largest accepted max abs difference of maps and scores in the check', positive, 1e-3)
    .option('--int8-tolerance <x>', 'int8 export: largest accepted relative score difference to float32 in the check (0.1 = 10 %)', positive, 0.1)
    .option('--benchmark', 'measure inference images/s of TF.js and onnxruntime (warm-up excluded, median)')
    .addOption(new Option('--benchmark-batches <list>', 'batch sizes to time').argParser(positiveIntList).default([1, 32], '1,32'))
    .option('--runs <n>', 'timed runs per batch size and engine', positiveInt, 5)
    .option('--threads <n>', 'onnxruntime intra-op threads (default: its choice)', positiveInt)
    .option('--spinning', "let idle onnxruntime threads busy-wait (onnxruntime's default; off here, slower on a busy CPU)")
    .addOption(new Option('--quantize <kind>', 'int8: static QDQ quantisation (activations uint8 calibrated on --calibration images, weights int8 per channel; plain student only; docs/export.md "int8")').choices(['int8']))
    .option('--calibration <input>', 'normal images for --quantize int8 (the training images, e.g. DATA/bottle/train/good): image file, folder or .txt list')
    .option('--calibration-images <n>', 'at most this many calibration images, evenly spread over --calibration', positiveInt, 64)
    .option('--calibration-percentile <q>', 'activation ranges from the (1 - q, q) quantiles of the calibration values (1 = min / max)', positive, INT8_PERCENTILE)
    .option('--calibration-headroom <h>', 'widen every calibrated activation range by this factor (>= 1) so that defects stronger than the calibration images are not clipped', positive, INT8_HEADROOM)
    .addOption(new Option('--int8-weights <bits>', 'int8 weight precision: 8 (+-127, more accurate; x86 CPUs need VNNI to run it), 7 (+-63, runs on every CPU), auto: 8 where this CPU runs it').choices(['auto', '7', '8']).default('auto'))
    .option('--force', 'overwrite existing output files')
    .action(async (checkpoint: string, o: ExportFlags & { force?: boolean }) => {
      if (o.quantize && o.format !== 'onnx') throw new Error('--quantize int8 applies to --format onnx only (the browser bundle runs float32 TF.js)');
      if (o.calibration && !o.quantize) throw new Error('--calibration is only used with --quantize int8');
      if (!(o.calibrationHeadroom >= 1 && o.calibrationHeadroom <= INT8_MAX_HEADROOM)) throw new Error(`--calibration-headroom must be between 1 and ${INT8_MAX_HEADROOM}, e.g. ${INT8_HEADROOM} (got ${o.calibrationHeadroom}): wider ranges leave too few uint8 steps for normal values`);
      if (!o.force) {
        const targets = o.format === 'web' ? [path.join(o.out, 'model.json')] : [o.out, o.sidecar ?? defaultSidecarPath(o.out)];
        for (const t of targets)
          if (existsSync(t)) throw new Error(`${t} already exists; ntsnet does not overwrite files unasked. Choose another --out or pass --force.`);
      }
      if (o.format === 'web') await assertWritableFolder(o.out);
      else for (const f of [o.out, o.sidecar ?? defaultSidecarPath(o.out)]) await assertWritableFile(f, f === o.out ? '--out' : '--sidecar');
      const tf = tfLoader();
      const log = (l: string): void => void process.stderr.write(`${l}\n`);
      if (o.format === 'web') {
        const w = await exportCheckpointWeb(tf, checkpoint, o.out);
        w.model.dispose();
        process.stdout.write(`wrote ${w.files.weights} (${(w.weightBytes / 2 ** 20).toFixed(1)} MiB, ${w.tensors} float32 tensors)\n`);
        process.stdout.write(`wrote ${w.files.modelJson}\n`);
        process.stdout.write(`wrote ${w.files.bundle} (${(w.bundleBytes / 2 ** 20).toFixed(1)} MiB, ${w.bundleSource})\n`);
        process.stdout.write(`wrote ${w.files.page} (serve the folder over HTTP, e.g. 'python3 -m http.server -d ${o.out}', and open index.html)\n`);
        return;
      }
      const sidecar = o.sidecar ?? defaultSidecarPath(o.out);
      if (o.quantize && !o.calibration) throw new Error('--quantize int8 needs --calibration with normal images of the product (its training images, e.g. DATA/bottle/train/good)');
      if (!(o.calibrationPercentile > 0.5 && o.calibrationPercentile <= 1)) throw new Error(`--calibration-percentile must be in (0.5, 1], e.g. 0.9999 (got ${o.calibrationPercentile})`);
      if (o.quantize) {
        const weightBits: Int8WeightBits = o.int8Weights === 'auto' ? defaultInt8WeightBits() : (Number(o.int8Weights) as Int8WeightBits);
        const runsHere = weightBits === 7 || cpuTakes8BitWeights() !== false;
        if (!runsHere) log('warning: --int8-weights 8 on an x86 CPU without VNNI: the file is for a machine with VNNI; onnxruntime here would compute it wrongly, so the parity check and --benchmark are skipped.');
        const r = await exportCheckpointInt8(tf, checkpoint, o.out, sidecar, { calibration: o.calibration!, maxImages: o.calibrationImages, percentile: o.calibrationPercentile, headroom: o.calibrationHeadroom, weightBits, log });
        let det: OnnxDetector | undefined;
        try {
          process.stdout.write(`wrote ${r.onnx} (int8 QDQ, ${weightBits}-bit weights, ${(r.bytes / 2 ** 20).toFixed(1)} MiB; calibrated on ${r.calibration.calibrationImages} images of ${o.calibration}, ${r.calibration.activationPoints} activation ranges)\n`);
          process.stdout.write(`wrote ${r.sidecar}\n`);
          if (o.verify && runsHere) {
            det = await OnnxDetector.load(r.onnx, { intraOpThreads: o.threads, allowSpinning: o.spinning });
            const d = await int8Parity(tf, r.model, det, r.checkImages);
            const ok = d.scoreRel <= o.int8Tolerance;
            process.stdout.write(`check (int8 onnxruntime vs float32 TF.js, ${d.images} calibration images): max score difference ${(100 * d.scoreRel).toFixed(2)} % of the score, max map difference ${(100 * d.mapRel).toFixed(2)} % of the image's score, mean map difference ${(100 * d.mapMeanRel).toFixed(2)} % of the mean map value: ${ok ? 'OK' : 'FAILED'}\n`);
            if (!ok) {
              // A graph that moves scores this much would make wrong pass / fail decisions with the checkpoint's thresholds.
              rmSync(r.onnx, { force: true });
              rmSync(r.sidecar, { force: true });
              throw new Error(`the int8 graph's scores differ from float32 by up to ${(100 * d.scoreRel).toFixed(1)} % (more than --int8-tolerance ${100 * o.int8Tolerance} %), so ${r.onnx} was removed. Use the default calibration settings (--calibration-headroom ${INT8_HEADROOM}, --calibration-percentile ${INT8_PERCENTILE}) and the product's training images for --calibration, or keep the float32 export.`);
            }
          }
          if (o.benchmark && runsHere) {
            det ??= await OnnxDetector.load(r.onnx, { intraOpThreads: o.threads, allowSpinning: o.spinning });
            log(`benchmark: ${r.model.config.imageSize} px, batches ${o.benchmarkBatches.join(',')}, ${o.runs} timed runs each (warm-up excluded); onnxruntime = the int8 model`);
            await benchmarkEngines(tf, r.model, det, o.benchmarkBatches, { runs: o.runs, log: (l) => void process.stdout.write(`${l}\n`) });
          }
        } finally {
          await det?.dispose();
          r.model.dispose();
        }
        return;
      }
      const r = await exportCheckpointOnnx(tf, checkpoint, o.out, sidecar);
      const incomplete = incompleteTrainingWarning(r.meta, checkpoint);
      if (incomplete) log(`warning: ${incomplete} (recorded in ${r.sidecar} as "training")`);
      let det: OnnxDetector | undefined;
      try {
        const s = r.summary;
        const nodes = Object.values(s.ops).reduce((a, b) => a + b, 0);
        process.stdout.write(`wrote ${r.onnx} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ONNX opset ${s.opset}, ${nodes} nodes, ${s.initializers} initializers)\n`);
        process.stdout.write(`wrote ${r.sidecar}\n`);
        const dims = (d: (string | number)[]): string => `[${d.join(', ')}]`;
        process.stdout.write(`input ${s.inputs.map((i) => `${i.name} ${dims(i.dims)}`).join(', ')}; outputs ${s.outputs.map((i) => `${i.name} ${dims(i.dims)}`).join(', ')}\n`);
        if (!o.verify && !o.benchmark) return;
        det = await OnnxDetector.load(r.onnx, { intraOpThreads: o.threads, allowSpinning: o.spinning });
        if (o.verify) {
          const size = r.model.config.imageSize;
          const d = await compareWithTfjs(tf, r.model, det, parityInputs(size), 2);
          const ok = d.maps <= o.tolerance && d.scores <= o.tolerance;
          process.stdout.write(`check (onnxruntime vs TF.js, 2 images): max abs difference maps ${d.maps.toExponential(2)}, scores ${d.scores.toExponential(2)} (map values up to ${d.mapScale.toPrecision(3)}): ${ok ? 'OK' : 'FAILED'}\n`);
          if (!ok) throw new Error(`the exported graph differs from TF.js by more than --tolerance ${o.tolerance}; the files were written but do not reproduce ntsnet's predictions. Please report this with the checkpoint's config.json.`);
        }
        if (o.benchmark) {
          log(`benchmark: ${r.model.config.imageSize} px, batches ${o.benchmarkBatches.join(',')}, ${o.runs} timed runs each (warm-up excluded)`);
          await benchmarkEngines(tf, r.model, det, o.benchmarkBatches, { runs: o.runs, log: (l) => void process.stdout.write(`${l}\n`) });
        }
      } finally {
        await det?.dispose();
        r.model.dispose();
      }
    });
}
