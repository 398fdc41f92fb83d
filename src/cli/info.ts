import type { Command } from 'commander';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { measureInference } from '../engine/speed.js';
import { NTSNet } from '../model/ntsnet.js';
import { addConfigOptions, buildRunConfig, int, type ConfigFlags } from './options.js';

export function registerInfo(program: Command, tfLoader: () => Tf): void {
  addConfigOptions(
    program
      .command('info')
      .description('parameter counts of teacher and student, and (with --speed) inference images per second on this machine')
      .option('--checkpoint <dir>', 'describe this checkpoint instead of a fresh model from the options')
      .option('--speed', 'measure inference images/s (warm-up excluded, median of --runs runs)')
      .option('--speed-batches <list>', 'batch sizes to time', '1,16')
      .option('--runs <n>', 'timed runs per batch size', int, 5),
  ).action(async (o: ConfigFlags & { checkpoint?: string; speed?: boolean; speedBatches: string; runs: number }) => {
    const tf = tfLoader();
    let model: NTSNet;
    if (o.checkpoint) model = (await loadCheckpoint(tf, o.checkpoint)).model;
    else {
      const c = buildRunConfig({ ...o, preset: o.preset ?? 'cpu' });
      model = NTSNet.create(tf, c.model, 'random', c.train.seed); // weights do not change counts or speed
    }
    try {
      const m = model.config;
      const n = model.parameterCounts();
      const mb = (v: number): string => ((v * 4) / 2 ** 20).toFixed(1);
      process.stdout.write(`backend: ${tf.getBackend()} (tfjs ${tf.version.tfjs})\n`);
      process.stdout.write(`model: student ${m.studentBlock}, teacher norm ${m.teacherNorm}, layers ${m.layers.join(',')}, ${m.imageSize} px\n`);
      process.stdout.write(`teacher parameters: ${n.teacher} (${(n.teacher / 1e6).toFixed(2)} M, ${mb(n.teacher)} MB float32)\n`);
      process.stdout.write(`student parameters: ${n.student} (${(n.student / 1e6).toFixed(2)} M, ${mb(n.student)} MB float32)\n`);
      if (o.speed) {
        for (const b of o.speedBatches.split(',').map((s) => parseInt(s, 10))) {
          const r = measureInference(tf, model, b, o.runs);
          process.stdout.write(`inference batch ${b}: ${r.imagesPerSecond.toFixed(2)} images/s (median ${r.medianMsPerBatch.toFixed(0)} ms per batch over ${r.runs} runs, warm-up excluded)\n`);
        }
      }
    } finally {
      model.dispose();
    }
  });
}
