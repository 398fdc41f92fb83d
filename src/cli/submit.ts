import * as path from 'node:path';
import { Option, type Command } from 'commander';
import type { MapFormat } from '../engine/inspect.js';
import { DEFAULT_QUEUE, connectRedis, defaultRedisUrl } from '../queue/jobs.js';
import { JobQueue, type Submitted } from '../queue/submit.js';
import { addDatasetOptions, folderSpec, type DatasetFlags } from './datasetOptions.js';
import { addConfigOptions, buildRunConfig, int, positive, positiveInt, type ConfigFlags } from './options.js';

interface QueueFlags { redis?: string; queue: string; wait?: boolean }

const addQueueOptions = (c: Command): Command =>
  c.option('--redis <url>', 'Redis URL (default $NTSNET_REDIS or redis://127.0.0.1:6379)')
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .option('--wait', 'wait until the job has finished (exit code 1 when it failed)');

const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(p));
const absAll = (p: string[] | undefined): string[] | undefined => p?.map((x) => path.resolve(x));

function absDataset(o: DatasetFlags): DatasetFlags {
  return { ...o, normal: absAll(o.normal), abnormal: absAll(o.abnormal), masks: abs(o.masks) };
}

async function withQueue(o: QueueFlags, fn: (q: JobQueue) => Promise<Submitted>, describe: string): Promise<void> {
  const conn = await connectRedis(o.redis ?? defaultRedisUrl());
  const q = new JobQueue(conn, o.queue);
  try {
    const s = await fn(q);
    process.stdout.write(`${s.id}\n`);
    process.stderr.write(s.added ? `submitted ${describe} as job ${s.id}\n` : `job ${s.id} (the same request) is already known (state: ${s.state}): not submitted again\n`);
    if (o.wait) {
      let last = '';
      for (;;) {
        const j = await q.info(s.id);
        if (!j) throw new Error(`job ${s.id} disappeared from the queue`);
        const line = `${j.state}${j.progress ? ` ${j.progress.done}/${j.progress.total} ${j.progress.unit}` : ''}`;
        if (line !== last) process.stderr.write(`job ${s.id}: ${line}\n`);
        last = line;
        if (j.state === 'completed') { process.stderr.write(`job ${s.id}: ${j.result ?? 'done'}\n`); break; }
        if (j.state === 'failed') { process.stderr.write(`job ${s.id} failed: ${j.error}\n`); process.exitCode = 1; break; }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await q.close();
    conn.disconnect();
  }
}

export function registerSubmit(program: Command): void {
  const submit = program.command('submit').description("enqueue a job for 'ntsnet worker' (same options as the verb; paths must be visible to every worker under the same path, docs/deploy.md). Prints the job id; the same request submitted again is not run again");

  addQueueOptions(addConfigOptions(addDatasetOptions(
    submit.command('fit')
      .description('enqueue a fit (one product); the checkpoint folder appears complete, in one rename, when the job finishes')
      .option('--data <dir>', 'MVTec AD category folder; or use --normal/--abnormal')
      .requiredOption('--out <dir>', 'checkpoint folder (in the shared folder)')
      .option('--test', 'evaluate the best checkpoint afterwards (results.json + metrics.md)')
      .option('--force', 'replace a checkpoint already in --out'),
  ))).action(async (o: ConfigFlags & DatasetFlags & QueueFlags & { data?: string; out: string; test?: boolean; force?: boolean }) => {
    if (o.data && o.normal) throw new Error('Give either --data (MVTec AD folder) or --normal/--abnormal (folder dataset), not both.');
    const config = buildRunConfig(o);
    const flags = absDataset(o);
    const data = folderSpec(flags, config.train.seed) ?? abs(o.data);
    if (!data) throw new Error('Give --data DIR (MVTec AD category folder) or --normal DIR... --abnormal DIR... (folder dataset).');
    await withQueue(o, (q) => q.submitFit({
      data, out: path.resolve(o.out), config, test: o.test ?? false, force: o.force ?? false, skipBad: o.skipBad ?? false,
      teacherWeights: abs(o.teacherWeights), download: o.download, ...(o.normal ? { datasetFlags: flags } : {}),
    }), `fit of ${typeof data === 'string' ? data : 'a folder dataset'} into ${path.resolve(o.out)}`);
  });

  addQueueOptions(addDatasetOptions(
    submit.command('test')
      .description('enqueue an evaluation of a checkpoint (results.json + metrics.md)')
      .requiredOption('--checkpoint <dir>', "folder written by 'ntsnet fit'")
      .option('--data <dirs...>', 'MVTec AD category folders (or --normal/--abnormal as used for fit)')
      .option('--out <dir>', 'where to write results.json and metrics.md (default: the checkpoint folder)')
      .option('--batch-size <n>', 'evaluation batch size', int),
  )).action(async (o: DatasetFlags & QueueFlags & { checkpoint: string; data?: string[]; out?: string; batchSize?: number }) => {
    const checkpoint = path.resolve(o.checkpoint);
    await withQueue(o, (q) => q.submitTest({
      checkpoint, data: absAll(o.data), ...absDataset(o), skipBad: o.skipBad ?? false, out: path.resolve(o.out ?? o.checkpoint), batchSize: o.batchSize,
    }), `test of ${checkpoint}`);
  });

  addQueueOptions(
    submit.command('predict')
      .description('enqueue a predict over an image, folder or .txt list, split into chunks that any worker can run; merged into --out (the files of ntsnet predict --out) when all are done')
      .argument('<input>', 'image file, folder (recursive) or .txt list')
      .requiredOption('--checkpoint <dir>', "folder written by 'ntsnet fit'")
      .requiredOption('--out <dir>', 'output folder (in the shared folder; not inside the input)')
      .option('--chunk-size <n>', 'images per chunk job (rounded up to a multiple of the batch size)', positiveInt, 64)
      .option('--threshold <x>', 'image threshold override', positive)
      .option('--pixel-threshold <x>', 'pixel threshold override', positive)
      .addOption(new Option('--map-format <fmt>', 'anomaly-map file format').choices(['png16', 'npy', 'both']).default('png16'))
      .option('--batch-size <n>', "images per forward pass (default: the checkpoint's evaluation batch size)", positiveInt)
      .addOption(new Option('--engine <name>', "scoring engine: TF.js (tfjs-node) or onnxruntime-node on the checkpoint's ONNX export").choices(['tfjs', 'onnxruntime']).default('tfjs'))
      .option('--onnx <file>', 'ONNX model for --engine onnxruntime (default: model.onnx in the checkpoint folder, exported there when missing or older than the weights)')
      .option('--threads <n>', 'onnxruntime intra-op threads', positiveInt)
      .option('--skip-bad', 'record unreadable images in predictions.csv instead of failing the job'),
  ).action(async (input: string, o: QueueFlags & { checkpoint: string; out: string; chunkSize: number; threshold?: number; pixelThreshold?: number; mapFormat: MapFormat; batchSize?: number; skipBad?: boolean; engine: 'tfjs' | 'onnxruntime'; onnx?: string; threads?: number }) => {
    await withQueue(o, async (q) => {
      const s = await q.submitPredict({ input, out: o.out, chunkSize: o.chunkSize, checkpoint: o.checkpoint, mapFormat: o.mapFormat, threshold: o.threshold, pixelThreshold: o.pixelThreshold, batchSize: o.batchSize, skipBad: o.skipBad ?? false, engine: o.engine, onnx: o.onnx, threads: o.threads });
      process.stderr.write(`${s.images} image(s) in ${s.chunks} chunk job(s)\n`);
      return s;
    }, `predict of ${path.resolve(input)} into ${path.resolve(o.out)}`);
  });
}
