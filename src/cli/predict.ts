import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { assertOutsideDataset } from '../engine/paths.js';
import { collectImages, predictImages } from '../engine/predict.js';

export function registerPredict(program: Command, tfLoader: () => Tf): void {
  program
    .command('predict')
    .description('score an image or a folder of images (recursive); prints scores and writes heat-map overlay PNGs')
    .argument('<image-or-folder>', 'image file or folder')
    .requiredOption('--checkpoint <dir>', "folder written by 'ntsnet fit'")
    .option('--out <dir>', 'folder for <name>_overlay.png files (default: no overlays)')
    .option('--batch-size <n>', 'batch size (does not change results)', (v) => parseInt(v, 10))
    .action(async (input: string, o: { checkpoint: string; out?: string; batchSize?: number }) => {
      const files = await collectImages(input);
      const root = (await stat(input)).isDirectory() ? path.resolve(input) : path.dirname(path.resolve(input));
      if (o.out) await assertOutsideDataset(o.out, root);
      const tf = tfLoader();
      const { model, meta } = await loadCheckpoint(tf, o.checkpoint);
      try {
        process.stdout.write('path\tscore\n');
        await predictImages(tf, model, meta, files, root, o.out, o.batchSize ?? meta.config.train.evalBatchSize, (r) => {
          process.stdout.write(`${path.relative(process.cwd(), r.path)}\t${r.score.toFixed(6)}\n`);
        });
        if (o.out) process.stderr.write(`overlays written to ${o.out}\n`);
      } finally {
        model.dispose();
      }
    });
}
