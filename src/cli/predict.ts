import * as path from 'node:path';
import { Option, type Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { incompleteTrainingWarning, loadCheckpoint } from '../engine/checkpoint.js';
import { chooseEngine } from '../engine/engineChoice.js';
import { inspectImages, journalEngine, type InspectOptions, type MapFormat } from '../engine/inspect.js';
import { OnnxDetector } from '../engine/onnxPredict.js';
import { defaultOnnxFile, openOnnxScorer } from '../engine/onnxModel.js';
import { assertWritableFolder } from '../util/writable.js';
import { positive, positiveInt } from './options.js';


interface PredictFlags {
  checkpoint: string;
  out?: string;
  batchSize?: number;
  threshold?: number;
  pixelThreshold?: number;
  mapFormat: MapFormat;
  resume: boolean;
  engine: 'auto' | 'tfjs' | 'onnxruntime';
  onnx?: string;
  threads?: number;
  skipBad?: boolean;
  force?: boolean;
}

export function registerPredict(program: Command, tfLoader: () => Tf): void {
  program
    .command('predict')
    .description(
      'inspect images: score, label normal/anomalous with the checkpoint\'s calibrated thresholds, and (with --out) write per image ' +
        'the anomaly map, a defect mask and an overlay, plus predictions.csv / predictions.json. Resumable (see docs/inspection.md). ' +
        'Prints path, score, normalised score and label per image.',
    )
    .argument('<input>', 'image file, folder (recursive) or .txt list (one image path per line, relative to the list file)')
    .requiredOption('--checkpoint <dir>', "folder written by 'ntsnet fit'")
    .option('--out <dir>', 'output folder (not inside the input folder); without it only scores are printed')
    .option('--threshold <x>', "image threshold on the raw score (overrides the checkpoint's calibrated one)", positive)
    .option('--pixel-threshold <x>', "pixel threshold on map values (overrides the checkpoint's; never above the image threshold)", positive)
    .addOption(new Option('--map-format <fmt>', 'anomaly-map file: 16-bit PNG (scaled, see predictions.json), float32 .npy, or both').choices(['png16', 'npy', 'both']).default('png16'))
    .option('--batch-size <n>', 'images per forward pass (default: the checkpoint\'s evaluation batch size)', positiveInt)
    .addOption(new Option('--engine <name>', "scoring engine: auto = the faster of the two for this checkpoint and batch size on this machine (measured once, cached in the checkpoint folder), TF.js (tfjs-node), or onnxruntime-node on the checkpoint's ONNX export").choices(['auto', 'tfjs', 'onnxruntime']).default('auto'))
    .option('--onnx <file>', "ONNX model for --engine onnxruntime (default: model.onnx in the checkpoint folder, exported there when missing or older than the weights); the checkpoint still gives the thresholds")
    .option('--threads <n>', 'onnxruntime intra-op threads (default: its choice)', positiveInt)
    .option('--skip-bad', 'skip unreadable images (zero-byte, truncated, not an image, above the pixel limit) instead of stopping; each is listed with the reason in predictions.csv / predictions.json and in the summary')
    .option('--force', "write into an --out that holds another predict run's output (its listed maps, masks and overlays are removed first) or other files (same-named ones are overwritten)")
    .option('--no-resume', 'redo every image even when an interrupted run left a journal in --out')
    .action(async (input: string, o: PredictFlags) => {
      if (o.out !== undefined) await assertWritableFolder(o.out);
      const tf = tfLoader();
      const log = (l: string): void => void process.stderr.write(`${l}\n`);
      const { model, meta } = await loadCheckpoint(tf, o.checkpoint);
      const incomplete = incompleteTrainingWarning(meta, o.checkpoint);
      if (incomplete) log(`warning: ${incomplete}`);
      let det: OnnxDetector | undefined;
      try {
        let engineOpts: Pick<InspectOptions, 'scorer' | 'engine'> = {};
        if (o.onnx && o.engine === 'tfjs') throw new Error('--onnx needs --engine onnxruntime (or auto)');
        let engine = o.engine === 'auto' && o.onnx ? 'onnxruntime' : o.engine;
        // A run continued or redone in its own --out keeps that run's engine (its journal names it; a journal of one
        // engine is not resumed by the other). With --force the folder is claimed for a new run: a fresh choice.
        const resumed = engine === 'auto' && o.out !== undefined && !o.force ? await journalEngine(o.out) : undefined;
        if (resumed === 'tfjs-node' || resumed === 'onnxruntime-node') {
          engine = resumed === 'tfjs-node' ? 'tfjs' : 'onnxruntime';
          log(`engine: ${resumed} (the engine of the earlier run in ${o.out})`);
        }
        if (engine === 'auto') {
          const choice = await chooseEngine(tf, model, o.checkpoint, { batchSize: o.batchSize ?? meta.config.train.evalBatchSize, threads: o.threads, meta, log });
          log(`engine: ${choice.reason}`);
          if (choice.onnx) { det = choice.onnx.det; engineOpts = { engine: 'onnxruntime-node', scorer: choice.onnx.scorer }; }
        } else if (engine === 'onnxruntime') {
          const onnx = await openOnnxScorer(model, o.checkpoint, { onnx: o.onnx, log, meta, threads: o.threads });
          det = onnx.det;
          // Another ONNX file than the checkpoint's own export (e.g. an int8 one) is part of the engine's name, so that its
          // results are never resumed into, or mixed with, those of another file (journal and predictions.json).
          const name = o.onnx && path.resolve(onnx.file) !== path.resolve(defaultOnnxFile(o.checkpoint)) ? `onnxruntime-node on ${path.resolve(onnx.file)}` : 'onnxruntime-node';
          engineOpts = { engine: name, scorer: onnx.scorer };
          if (!resumed) log(`engine: ${name} (${o.engine === 'onnxruntime' ? '--engine onnxruntime' : '--onnx FILE'})`);
        } else if (!resumed) log('engine: tfjs-node (--engine tfjs)');
        process.stdout.write('path\tscore\tnormalized_score\tlabel\n');
        const r = await inspectImages(tf, model, meta, {
          ...engineOpts,
          input, out: o.out, checkpoint: o.checkpoint, mapFormat: o.mapFormat, threshold: o.threshold, pixelThreshold: o.pixelThreshold,
          batchSize: o.batchSize, resume: o.resume, force: o.force, log, skipBad: o.skipBad,
          onFailed: (f) => log(`warning: skipped bad image (--skip-bad): ${f.error}`),
          onImage: (img) => void process.stdout.write(`${path.relative(process.cwd(), img.path)}\t${img.score.toFixed(6)}\t${img.normalizedScore.toFixed(4)}\t${img.label}\n`),
        });
        const n = r.images.filter((i) => i.label === 'anomalous').length;
        log(`${r.images.length} image(s)${r.failed.length ? ` scored, ${r.failed.length} failed` : ''}: ${n} anomalous, ${r.images.length - n} normal (image threshold ${r.thresholds.image.toPrecision(6)} [${r.thresholds.imageSource}], pixel threshold ${r.thresholds.pixel.toPrecision(6)} [${r.thresholds.pixelSource}])`);
        if (r.failed.length) {
          log(`warning: ${r.failed.length} image(s) could not be read and were skipped (--skip-bad)${r.csv ? `; they are listed with label "error" in ${r.csv}` : ''}:`);
          for (const f of r.failed) log(`  - ${f.file}: ${f.error}`);
        }
        if (r.csv) log(`wrote ${r.csv}, ${r.json} and per-image maps, masks and overlays under ${o.out}${r.resumed ? ` (${r.resumed} resumed)` : ''}`);
      } finally {
        await det?.dispose();
        model.dispose();
      }
    });
}
