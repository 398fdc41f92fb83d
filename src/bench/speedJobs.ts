/**
 * Jobs of the speed benchmark (`ntsnet benchmark --speed`, docs/benchmark.md): each runs in its own worker process
 * (bench/worker.ts), so that its peak memory is its own, and writes `dir/run.json` last (resume).
 * - `engine-speed`: the default detector at the speed size on every engine (tfjs-node fp32, onnxruntime-node fp32 and
 *   int8), batch sizes x runs, plus the machine's compute ceilings and per-op profiles.
 * - `fit-speed`: `fit` on the dataset for a few epochs (seconds per epoch) or a few batches (peak memory).
 */
import { quantile } from '../engine/threshold.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import type { FolderSpec } from '../data/folder.js';
import { loadImageSet } from '../engine/batches.js';
import type { RunConfig } from '../engine/config.js';
import { fit, type EpochRecord } from '../engine/fit.js';
import { measureOnnxInference, OnnxDetector } from '../engine/onnxPredict.js';
import { measureInference, type SpeedResult } from '../engine/speed.js';
import { modelToOnnx } from '../export/index.js';
import { int8Parity, modelToInt8Onnx } from '../export/int8.js';
import type { ModelConfig } from '../model/config.js';
import { NTSNet } from '../model/ntsnet.js';
import { resolveResnet18Weights } from '../model/weights/resolve.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { peakRssMiB } from './jobs.js';
import { ortCeilings, tfjsCeilings, type CeilingRow } from './ceiling.js';
import { convGflopPerImage } from './flops.js';
import { ortProfile, tfjsInferenceProfile, tfjsTrainProfile, type OpProfile } from './profile.js';

/** Inference engines of ntsnet timed by the speed benchmark. */
export type EngineName = 'tfjs-node fp32' | 'onnxruntime-node fp32' | 'onnxruntime-node int8';

/** The engine-speed job: every engine on the default detector, ceilings and profiles. */
export interface EngineSpeedJob {
  kind: 'engine-speed';
  dir: string;
  name: string;
  model: ModelConfig;
  teacherWeights: string;
  seed: number;
  /** Normal training images the int8 graph is calibrated on (evenly spread sample). */
  calibration: string[];
  batches: number[];
  /** Timed runs per batch size (warm-up excluded). */
  runs: number[];
  warmup: number;
  /** Settings of the per-op training-step profile (the training protocol's size and batch). */
  trainProfile: { imageSize: number; batchSize: number };
}

/** One engine x batch measurement. */
export interface EngineRow extends SpeedResult {
  engine: EngineName;
  imageSize: number;
  /** Achieved convolution GFLOP/s (convGflopPerImage x images/s); null for a CoT student. */
  gflopPerSecond: number | null;
}

/** What the engine-speed job writes to run.json. */
export interface EngineSpeedRecord {
  kind: 'engine-speed';
  model: ModelConfig;
  gflopPerImage: number | null;
  rows: EngineRow[];
  ceilings: CeilingRow[];
  /** int8 against fp32 TF.js on calibration images: max relative score and map differences. */
  int8Parity: { scoreRel: number; mapRel: number; mapMeanRel: number; images: number };
  /** Training images the int8 graph was calibrated on. */
  calibrationImages: number;
  profiles: OpProfile[];
  cpu: string;
  finishedAt: string;
}

/** `fit` timed on the dataset: whole epochs (seconds per epoch) or `maxBatchesPerEpoch` batches (peak memory). */
export interface FitSpeedJob {
  kind: 'fit-speed';
  dir: string;
  name: string;
  dataset: { id: string; spec: string | FolderSpec };
  config: RunConfig;
  teacherWeights: string;
  maxBatchesPerEpoch?: number;
}

/** What the fit-speed job writes to run.json. */
export interface FitSpeedRecord {
  kind: 'fit-speed';
  name: string;
  imageSize: number;
  batchSize: number;
  trainImages: number;
  /** Images trained on per epoch (all training images, or maxBatchesPerEpoch batches). */
  imagesPerEpoch: number;
  /** The batches per epoch asked for (null: whole epochs). */
  maxBatchesPerEpoch: number | null;
  history: EpochRecord[];
  /** Median over epochs of the training loop's seconds (batches read, steps; validation excluded). */
  trainSecondsPerEpoch: number;
  fitSeconds: number;
  peakRssMiB: number;
  finishedAt: string;
}

const median = (v: readonly number[]): number => quantile(v, 0.5);

/**
 * Runs the engine-speed job: builds the detector (ImageNet teacher from the job's file, seeded student: speed does not
 * depend on trained weights), exports it to ONNX fp32 and int8 (calibrated on the job's normal images), measures
 * each engine at each batch size, then the ceilings and the per-op profiles. Writes `dir/run.json`.
 */
export async function runEngineSpeedJob(tf: Tf, job: EngineSpeedJob): Promise<EngineSpeedRecord> {
  const log = (l: string): void => void process.stderr.write(`[speed/engines] ${l}\n`);
  const w = await resolveResnet18Weights({ path: job.teacherWeights, download: false });
  const model = NTSNet.create(tf, job.model, w.state, job.seed, w.source);
  const dets: OnnxDetector[] = [];
  try {
    await mkdir(job.dir, { recursive: true });
    const fp32 = path.join(job.dir, 'model.onnx'), int8 = path.join(job.dir, 'model-int8.onnx');
    await writeFile(fp32, modelToOnnx(model));
    const set = await loadImageSet(job.calibration, job.model.imageSize);
    log(`int8: calibrating on ${set.images.length} training image(s)`);
    await writeFile(int8, (await modelToInt8Onnx(model, set.images)).bytes);
    const det32 = await OnnxDetector.load(fp32), det8 = await OnnxDetector.load(int8);
    dets.push(det32, det8);
    const parity = await int8Parity(tf, model, det8, set.images.slice(0, 8));
    const gflop = convGflopPerImage(job.model);
    const rows: EngineRow[] = [];
    const S = job.model.imageSize;
    for (const [i, b] of job.batches.entries()) {
      const runs = job.runs[i]!;
      const measured: [EngineName, SpeedResult][] = [
        ['tfjs-node fp32', measureInference(tf, model, b, runs, job.warmup)],
        ['onnxruntime-node fp32', await measureOnnxInference(det32, S, b, runs, job.warmup)],
        ['onnxruntime-node int8', await measureOnnxInference(det8, S, b, runs, job.warmup)],
      ];
      for (const [engine, r] of measured) {
        rows.push({ engine, imageSize: S, ...r, gflopPerSecond: gflop === undefined ? null : gflop * r.imagesPerSecond });
        log(`${engine} batch ${b}: ${r.imagesPerSecond.toFixed(2)} images/s, p50 ${r.medianMsPerBatch.toFixed(0)} ms, p99 ${r.p99MsPerBatch.toFixed(0)} ms per batch (${runs} runs)`);
      }
    }
    log('ceilings ...');
    const ceilings = [...(await tfjsCeilings(tf, 7)), ...(await ortCeilings(7))];
    for (const c of ceilings) log(`ceiling ${c.engine} ${c.dtype} ${c.kernel}: ${c.gflopPerSecond.toFixed(1)} GFLOP/s`);
    log('profiles ...');
    const profiles = [
      await tfjsTrainProfile(tf, { ...job.model, imageSize: job.trainProfile.imageSize }, w.state, job.seed, job.trainProfile.batchSize),
      await tfjsInferenceProfile(tf, model, 1),
      await ortProfile(fp32, 'onnxruntime-node fp32', S, 1, job.dir),
      await ortProfile(int8, 'onnxruntime-node int8', S, 1, job.dir),
    ];
    const rec: EngineSpeedRecord = {
      kind: 'engine-speed', model: job.model, gflopPerImage: gflop ?? null, rows, ceilings, int8Parity: parity, calibrationImages: set.images.length, profiles,
      cpu: cpus()[0]?.model ?? 'unknown', finishedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(path.join(job.dir, 'run.json'), rec);
    return rec;
  } finally {
    for (const d of dets) await d.dispose();
    model.dispose();
  }
}

/** Runs a fit-speed job (fit with the job's config, checkpoint in `dir/checkpoint`). Writes `dir/run.json`. */
export async function runFitSpeedJob(tf: Tf, job: FitSpeedJob, signal?: AbortSignal): Promise<FitSpeedRecord> {
  const log = (l: string): void => void process.stderr.write(`[speed/${job.name}] ${l}\n`);
  const r = await fit(tf, {
    data: job.dataset.spec, out: path.join(job.dir, 'checkpoint'), config: job.config, force: true, teacherWeights: job.teacherWeights,
    download: false, log, progress: false, maxBatchesPerEpoch: job.maxBatchesPerEpoch, signal,
  });
  const n = r.meta.split.files.train.length;
  const seen = Math.min(n, (job.maxBatchesPerEpoch ?? Infinity) * job.config.train.batchSize);
  const rec: FitSpeedRecord = {
    kind: 'fit-speed', name: job.name, imageSize: job.config.model.imageSize, batchSize: job.config.train.batchSize, trainImages: n, imagesPerEpoch: seen, maxBatchesPerEpoch: job.maxBatchesPerEpoch ?? null,
    history: r.history, trainSecondsPerEpoch: median(r.history.map((h) => seen / h.imagesPerSecond)), fitSeconds: r.wallSeconds,
    peakRssMiB: peakRssMiB(), finishedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(path.join(job.dir, 'run.json'), rec);
  return rec;
}
