/**
 * The job processor of `ntsnet worker`, run by BullMQ in a child process of the worker (a "sandboxed processor"):
 * TF.js blocks its thread during training and inference, so jobs run here while the worker process keeps renewing
 * the job locks. The child is reused for the next job (the predict-chunk model stays loaded); it exits when its
 * worker dies (checked at every epoch and every image), so a SIGKILLed worker leaves no job running.
 *
 * Every job is safe to run again after its worker died (worker.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { loadTf, type Tf } from '../backend/index.js';
import { testDatasets } from '../data/flags.js';
import { loadCheckpoint, readCheckpointMeta, WEIGHTS_FILE, type CheckpointMeta } from '../engine/checkpoint.js';
import { evaluate, writeResults } from '../engine/evaluate.js';
import { fit } from '../engine/fit.js';
import { onnxForCheckpoint } from '../engine/onnxModel.js';
import { OnnxDetector } from '../engine/onnxPredict.js';
import { effectiveThresholds, inspectImages, type InspectOptions, outputBases, predictionsCsv, predictionsJson, type FailedImage, type InspectedImage, type InspectionFiles } from '../engine/inspect.js';
import { assertOutsideDataset } from '../engine/paths.js';
import type { NTSNet } from '../model/ntsnet.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { chunkName, type FitJobData, type NtsJobData, type NtsJobProgress, type NtsJobResult, type PredictChunkJobData, type PredictJobData, type TestJobData } from './jobs.js';

/** What the processor uses of a (sandboxed) BullMQ job. */
export interface JobLike {
  id?: string;
  data: NtsJobData;
  attemptsStarted?: number;
  stalledCounter?: number;
  log(row: string): Promise<unknown> | unknown;
  updateProgress(p: object): Promise<unknown>;
}

const TRANSIENT = new Set(['EAGAIN', 'EBUSY', 'EIO', 'ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED', 'ESTALE', 'ENOMEM']);

/** True when an error (or one of its causes) is a system error that may go away by itself. */
export function isTransient(e: unknown): boolean {
  for (let x: unknown = e, i = 0; x && i < 8; x = (x as { cause?: unknown }).cause, i++) {
    const code = (x as NodeJS.ErrnoException).code;
    if (code && TRANSIENT.has(code)) return true;
  }
  return false;
}

const hasCheckpoint = (dir: string): boolean => existsSync(path.join(dir, WEIGHTS_FILE));

/**
 * Marker written into a fit's staging folder just before it replaces `out`, and kept in the checkpoint folder: it
 * names the job that wrote the checkpoint, and a second attempt of that job (after a kill or a lost lock) that finds
 * it reports the job done instead of refusing the existing checkpoint.
 */
const swapMarker = (jobId: string): string => `.ntsnet-job-${jobId}`;

/** Output file suffixes written by inspectImages for one image. */
const OUTPUT_SUFFIXES = ['_map.png', '_map.npy', '_mask.png', '_overlay.png'] as const;

const log = (l: string): void => void process.stderr.write(`${new Date().toISOString()} [${process.pid}] ${l}\n`);
const tf = (): Tf => loadTf();

const parentPid = process.ppid;
/** Exits when the worker that forked this process is gone (SIGKILL): its jobs are taken over by other workers. */
function checkParent(): undefined {
  if (process.ppid !== parentPid || process.connected === false) {
    log(`worker process ${parentPid} is gone: exiting`);
    process.exit(75);
  }
  return undefined;
}
setInterval(checkParent, 500).unref();

let cached: { key: string; model: NTSNet; meta: CheckpointMeta } | undefined;

/** The checkpoint's model, kept loaded across the chunks of a predict. */
const modelFor = async (checkpoint: string, sha: string): Promise<{ model: NTSNet; meta: CheckpointMeta }> => {
  const key = `${checkpoint}\0${sha}`;
  if (cached?.key !== key) {
    cached?.model.dispose();
    cached = undefined;
    const { model, meta } = await loadCheckpoint(tf(), checkpoint);
    cached = { key, model, meta };
  }
  return cached;
};

const progress = async (job: JobLike, p: NtsJobProgress): Promise<void> => {
  await job.updateProgress(p as unknown as object).catch(() => undefined);
};

const runFit = async (job: JobLike, d: FitJobData): Promise<NtsJobResult> => {
  const out = path.resolve(d.out);
  // Staging folders are per attempt: a leftover of a killed attempt (or a straggler still writing) never mixes in.
  const prefix = `.${path.basename(out)}.ntsnet-job-${job.id}`;
  const staging = path.join(path.dirname(out), `${prefix}-${randomBytes(4).toString('hex')}`);
  const old = path.join(path.dirname(out), `${prefix}.old`);
  const marker = swapMarker(job.id!);
  if (existsSync(path.join(out, marker))) {
    // An earlier attempt of this job replaced `out` (and was killed, or lost its lock, before reporting it).
    await fsp.rm(old, { recursive: true, force: true });
    return { summary: `checkpoint ${out} (completed by an earlier attempt)`, out };
  }
  await fsp.mkdir(path.dirname(out), { recursive: true });
  for (const e of await fsp.readdir(path.dirname(out))) if (e.startsWith(prefix)) await fsp.rm(path.join(path.dirname(out), e), { recursive: true, force: true }); // killed attempts' partial runs
  if (hasCheckpoint(out) && !d.force) throw new UnrecoverableError(`${out} already holds a checkpoint (model.safetensors). Submit with another --out, or with --force to replace it.`);
  const jlog = (l: string): void => {
    checkParent();
    log(`job ${job.id}: ${l}`);
    void Promise.resolve(job.log(l)).catch(() => undefined);
    const m = /^epoch (\d+)\/(\d+)/.exec(l);
    if (m) void progress(job, { done: Number(m[1]), total: Number(m[2]), unit: 'epochs' });
  };
  const r = await fit(tf(), { data: d.data, out: staging, config: d.config, skipBad: d.skipBad, checkTestImages: d.test && !d.skipBad, teacherWeights: d.teacherWeights, download: d.download, log: jlog, progress: false });
  let summary = `checkpoint ${out}, best epoch ${r.meta.bestEpoch}, ${r.wallSeconds.toFixed(1)} s`;
  if (d.test) {
    const { model, meta } = await loadCheckpoint(tf(), staging);
    try {
      const c = d.config.train;
      const [ds] = await testDatasets(typeof d.data === 'string' ? [d.data] : undefined, d.datasetFlags ?? {}, meta.split, c.seed, c.valFraction);
      const res = await evaluate(tf(), model, ds!, c.evalBatchSize, jlog, meta.teacher);
      await writeResults(staging, [res], meta, { fitSeconds: r.wallSeconds, testSeconds: res.seconds, history: r.history });
      summary += `; image AUROC ${res.imageAuroc === null ? 'n/a' : (100 * res.imageAuroc).toFixed(1)}, pixel AUROC ${res.pixelAuroc === null ? 'n/a' : (100 * res.pixelAuroc).toFixed(1)}`;
    } finally {
      model.dispose();
    }
  }
  // Replace `out` in one rename (the old folder, if any, is moved aside first and deleted after).
  checkParent(); // an orphan (its worker was killed) never swaps: the job has been given to another worker
  await fsp.writeFile(path.join(staging, marker), `${job.id}\n`);
  if (existsSync(out)) {
    if ((await fsp.readdir(out)).length === 0) await fsp.rmdir(out);
    else await fsp.rename(out, old);
  }
  await fsp.rename(staging, out);
  await fsp.rm(old, { recursive: true, force: true });
  return { summary, out };
};

const runTest = async (job: JobLike, d: TestJobData): Promise<NtsJobResult> => {
  const { model, meta } = await loadCheckpoint(tf(), d.checkpoint);
  try {
    const t = meta.config.train;
    const datasets = await testDatasets(d.data, d, meta.split, t.seed, t.valFraction);
    for (const x of [...(d.data ?? []), ...(d.normal ?? []), ...(d.abnormal ?? []), ...(d.masks ? [d.masks] : [])]) await assertOutsideDataset(d.out, x);
    const results = [];
    for (const [i, ds] of datasets.entries()) {
      results.push(await evaluate(tf(), model, ds, d.batchSize ?? t.evalBatchSize, (l) => log(`job ${job.id}: ${l}`), meta.teacher));
      await progress(job, { done: i + 1, total: datasets.length, unit: 'datasets' });
    }
    const files = await writeResults(d.out, results, meta);
    return { summary: results.map((r) => `${r.category}: image AUROC ${r.imageAuroc === null ? 'n/a' : (100 * r.imageAuroc).toFixed(1)}`).join('; ') + ` (${files.json})`, out: d.out };
  } finally {
    model.dispose();
  }
};

let onnx: { key: string; det: OnnxDetector } | undefined;

/** `ntsnet predict --engine onnxruntime` for a chunk: the ONNX export next to the checkpoint, kept loaded across chunks. */
const onnxScorer = async (model: NTSNet, d: PredictChunkJobData): Promise<Pick<InspectOptions, 'scorer' | 'engine'>> => {
  const key = `${d.checkpoint}\0${d.checkpointSha256}\0${d.onnx ?? ''}\0${d.threads ?? ''}`;
  if (onnx?.key !== key) {
    await onnx?.det.dispose();
    onnx = undefined;
    const file = await onnxForCheckpoint(model, d.checkpoint, d.onnx, log);
    onnx = { key, det: await OnnxDetector.load(file, { intraOpThreads: d.threads }) };
  }
  const det = onnx.det, S = model.config.imageSize;
  if ((det.height && det.height !== S) || (det.width && det.width !== S)) throw new Error(`The ONNX model takes ${det.height}x${det.width} images but the checkpoint's model size is ${S} px: export it from this checkpoint.`);
  return {
    engine: 'onnxruntime-node',
    scorer: async (set, n, keepMaps) => {
      const x = new Float32Array(n * S * S * 3);
      for (let i = 0; i < n; i++) x.set(set.images[i]!, i * S * S * 3);
      const r = await det.run(x, n, S, S);
      return keepMaps ? r : { scores: r.scores };
    },
  };
};

const runChunk = async (job: JobLike, d: PredictChunkJobData): Promise<NtsJobResult> => {
  const { model, meta } = await modelFor(d.checkpoint, d.checkpointSha256);
  const list = `${d.chunkDir}.txt`;
  await writeFileAtomic(list, `${d.files.join('\n')}\n`);
  let n = 0;
  const engine = d.engine === 'onnxruntime' ? await onnxScorer(model, d) : {};
  const r = await inspectImages(tf(), model, meta, {
    ...engine,
    input: list, out: d.chunkDir, checkpoint: d.checkpoint, mapFormat: d.mapFormat, threshold: d.threshold, pixelThreshold: d.pixelThreshold,
    batchSize: d.batchSize, resume: true, lock: false, force: true, skipBad: d.skipBad, progress: false, log: (l) => log(`job ${job.id}: ${l}`),
    onImage: () => checkParent() ?? void progress(job, { done: ++n, total: d.files.length, unit: 'images' }),
  });
  return { summary: `${r.images.length} image(s)${r.resumed ? ` (${r.resumed} resumed)` : ''}${r.failed.length ? `, ${r.failed.length} failed` : ''}` };
};

const runMerge = async (job: JobLike, d: PredictJobData): Promise<NtsJobResult> => {
  const meta = await readCheckpointMeta(d.checkpoint);
  const th = effectiveThresholds(meta, { image: d.threshold, pixel: d.pixelThreshold });
  const bases = outputBases(d.files, d.root);
  const baseOf = new Map(d.files.map((f, i) => [f, bases[i]!]));
  const rel = (f: string): string => path.relative(d.root, f).split(path.sep).join('/');
  const images: InspectedImage[] = [];
  const failed: FailedImage[] = [];
  for (let k = 0; k < d.chunks; k++) {
    const chunkDir = path.join(d.workDir, chunkName(k));
    const doc = JSON.parse(await fsp.readFile(path.join(chunkDir, 'predictions.json'), 'utf8')) as { images: InspectedImage[]; failed?: FailedImage[] };
    for (const f of doc.failed ?? []) failed.push({ ...f, file: rel(f.path) });
    for (const img of doc.images) {
      const base = baseOf.get(img.path);
      if (base === undefined) throw new Error(`${chunkDir}: ${img.path} is not one of this job's images (the chunk folder was changed by hand). Resubmit the predict job.`);
      const files: Partial<InspectionFiles> = {};
      for (const [key, f] of Object.entries(img.files ?? {}) as [keyof InspectionFiles, string][]) {
        const suffix = OUTPUT_SUFFIXES.find((s) => f.endsWith(s));
        if (!suffix) throw new Error(`${chunkDir}: unexpected output file ${f}`);
        const dest = `${base}${suffix}`;
        const from = path.join(chunkDir, f), to = path.join(d.out, dest);
        if (existsSync(from)) {
          await fsp.mkdir(path.dirname(to), { recursive: true });
          await fsp.rename(from, to);
        } else if (!existsSync(to)) throw new Error(`${from} is missing and was not moved to ${to} before. Resubmit the predict job.`);
        files[key] = dest;
      }
      images.push({ ...img, file: rel(img.path), files: files as InspectionFiles });
    }
    await progress(job, { done: k + 1, total: d.chunks, unit: 'chunks' });
  }
  const order = new Map(d.files.map((f, i) => [f, i]));
  images.sort((a, b) => order.get(a.path)! - order.get(b.path)!);
  failed.sort((a, b) => order.get(a.path)! - order.get(b.path)!);
  checkParent();
  await writeFileAtomic(path.join(d.out, 'predictions.csv'), predictionsCsv(images, failed));
  await writeJsonAtomic(path.join(d.out, 'predictions.json'), predictionsJson(images, failed, th, meta, {
    input: d.input, root: d.root, checkpoint: d.checkpoint, checkpointSha256: d.checkpointSha256, mapFormat: d.mapFormat, size: meta.config.model.imageSize,
    batchSize: d.batchSize, resumed: 0, engine: d.engine === 'onnxruntime' ? 'onnxruntime-node' : 'tfjs-node',
  }));
  await fsp.rm(d.workDir, { recursive: true, force: true });
  const anomalous = images.filter((i) => i.label === 'anomalous').length;
  return { summary: `${images.length} image(s) in ${d.chunks} chunk(s): ${anomalous} anomalous, ${images.length - anomalous} normal${failed.length ? `, ${failed.length} failed` : ''}; ${path.join(d.out, 'predictions.csv')}`, out: d.out };
};


/** The sandboxed processor: runs one job in this child process of `ntsnet worker`. */
export default async function processor(job: JobLike): Promise<NtsJobResult> {
  const t0 = Date.now();
  log(`job ${job.id} (${job.data.kind}) started, attempt ${job.attemptsStarted}${job.stalledCounter ? `, after ${job.stalledCounter} stall(s)` : ''}`);
  try {
    const d = job.data;
    const r = d.kind === 'fit' ? await runFit(job, d) : d.kind === 'test' ? await runTest(job, d) : d.kind === 'predict-chunk' ? await runChunk(job, d) : await runMerge(job, d);
    log(`job ${job.id} (${d.kind}) completed in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.summary}`);
    return r;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    log(`job ${job.id} (${job.data.kind}) failed: ${msg}`);
    if (e instanceof UnrecoverableError || isTransient(e)) throw e;
    throw new UnrecoverableError(msg); // bad input: fail once with the error, no retries
  }
}
