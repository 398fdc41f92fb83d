import { createWriteStream, existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { applySavedSplit, type FolderSpec } from '../data/folder.js';
import { loadImageSet } from '../engine/batches.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import type { RunConfig } from '../engine/config.js';
import { evaluate, loadTestMasks } from '../engine/evaluate.js';
import { fit, type EpochRecord } from '../engine/fit.js';
import { measureInference, type SpeedResult } from '../engine/speed.js';
import type { ExpectedDetection } from '../engine/synthetic.js';
import type { ModelConfig } from '../model/config.js';
import { NTSNet } from '../model/ntsnet.js';
import type { TeacherIdentity } from '../model/weights/resolve.js';
import { writeJsonAtomic } from '../util/atomic.js';
import type { Variant } from './plan.js';
import type { EngineSpeedJob, FitSpeedJob } from './speedJobs.js';
import { mapMetrics, perLayerMaps, variantMaps, type MapMetrics } from './variants.js';

/** A training job: fit one configuration on one dataset, evaluate it and its evaluation-time variants. */
export interface TrainJob {
  kind: 'train';
  /** Folder of the job: checkpoint/, log.txt, run.json. */
  dir: string;
  dataset: { id: string; spec: string | FolderSpec };
  name: string;
  config: RunConfig;
  /** `imagenet`: the run's teacher file (required); `random`: the seeded random teacher, chosen knowingly. */
  teacherMode: 'imagenet' | 'random';
  teacherWeights?: string;
  variants: Variant[];
  /** Skip unreadable images with a warning instead of failing (`--skip-bad`). */
  skipBad?: boolean;
  /**
   * The config selects by synthetic defects: also keep and evaluate the checkpoint that selection by validation loss
   * (the shipped default) keeps, in `val-loss/`, so that one training run evaluates both epoch choices.
   */
  keepValLossChoice?: boolean;
}

/** An inference-speed job (Table 2) for one architecture. */
export interface SpeedJob {
  kind: 'speed';
  dir: string;
  name: string;
  model: ModelConfig;
  batches: number[];
  runs: number;
  seed: number;
}

export type Job = TrainJob | SpeedJob | EngineSpeedJob | FitSpeedJob;

/** What a training job writes to run.json. */
export interface TrainRunRecord {
  kind: 'train';
  dataset: string;
  name: string;
  config: RunConfig;
  teacher: TeacherIdentity;
  epochs: number;
  bestEpoch: number;
  fitSeconds: number;
  secondsPerEpoch: number;
  history: EpochRecord[];
  /** Peak resident memory of the job's process (training + evaluation), MiB. */
  peakRssMiB: number;
  parameters: { teacher: number; student: number };
  test: { seconds: number; imagesPerSecond: number; counts: { test: number; good: number; defective: number }; notes: string[] };
  /** The model's own setting first (its metrics match `ntsnet test`), then the evaluation-time variants. */
  variants: (Variant & MapMetrics)[];
  /** Per-image scores of the model's own setting. */
  images: { file: string; label: 0 | 1; defectType: string; score: number }[];
  /** Label-free figure of the checkpoint (synthetic defects in its held-out normal images; null when it had none). */
  expectedDetection?: ExpectedDetection | null;
  /** The val_loss choice (the default's checkpoint; when the job kept it): its metrics in the model's own setting. */
  valLossChoice?: { epoch: number; expectedDetection: ExpectedDetection | null } & MapMetrics;
  finishedAt: string;
}

/** What a speed job writes to run.json. */
export interface SpeedRunRecord {
  kind: 'speed';
  name: string;
  model: ModelConfig;
  parameters: { teacher: number; student: number };
  speed: SpeedResult[];
  peakRssMiB: number;
  backend: string;
  finishedAt: string;
}

/** Folder of a training job that holds the val_loss choice (see {@link TrainJob.keepValLossChoice}). */
export const VAL_LOSS_DIR = 'val-loss';

/** Peak resident memory of this process so far, MiB (a job's own: each runs in its own worker process). */
export const peakRssMiB = (): number => process.resourceUsage().maxRSS / 1024;

/** Runs a training job (inside a worker process, so that peak memory is the job's own). Writes `dir/run.json` last. */
export async function runTrainJob(tf: Tf, job: TrainJob, signal?: AbortSignal): Promise<TrainRunRecord> {
  const logFile = createWriteStream(path.join(job.dir, 'log.txt'), { flags: 'a' });
  const log = (l: string): void => { logFile.write(`${l}\n`); process.stderr.write(`[${job.dataset.id}/${job.name}] ${l}\n`); };
  const ckpt = path.join(job.dir, 'checkpoint');
  const config = structuredClone(job.config);
  if (job.teacherMode === 'random') config.teacher = 'random';
  const r = await fit(tf, {
    data: job.dataset.spec, out: ckpt, config, force: true, checkTestImages: !job.skipBad, skipBad: job.skipBad, teacherWeights: job.teacherWeights,
    download: false, log, progress: false, signal, ...(job.keepValLossChoice ? { keepValLossChoice: path.join(job.dir, VAL_LOSS_DIR) } : {}),
  });
  const { model, meta } = await loadCheckpoint(tf, ckpt);
  try {
    const ds = await applySavedSplit(job.dataset.spec, meta.split, { skipBad: job.skipBad });
    const res = await evaluate(tf, model, ds, config.train.evalBatchSize, log, meta.teacher);
    const size = model.config.imageSize;
    const set = await loadImageSet(ds.test.map((t) => t.path), size);
    const lm = perLayerMaps(tf, model, set, config.train.evalBatchSize);
    const labels = ds.test.map((t) => t.label);
    const gt = await loadTestMasks(ds, size);
    const variants: (Variant & MapMetrics)[] = [];
    for (const v of job.variants) {
      const { maps, scores } = variantMaps(tf, lm, v);
      variants.push({ ...v, ...mapMetrics(scores, labels, maps, gt, size) });
      log(`variant ${v.name}: image AUROC ${fmt(variants.at(-1)!.imageAuroc)} pixel AUROC ${fmt(variants.at(-1)!.pixelAuroc)} AUPRO ${fmt(variants.at(-1)!.aupro)} F1-max ${fmt(variants.at(-1)!.f1Max)}`);
    }
    // Self-check: the model's own setting recomputed from per-layer maps must give the metrics of `ntsnet test`.
    const own = variants[0]!;
    // (evaluate's pixel AUROC is binned, exact within res.pixelAurocBound; the variants' is exact.)
    if (Math.abs((own.imageAuroc ?? 0) - (res.imageAuroc ?? 0)) > 1e-6 || Math.abs((own.pixelAuroc ?? 0) - (res.pixelAuroc ?? 0)) > 1e-6 + (res.pixelAurocBound ?? 0))
      throw new Error(`internal check failed: variant ${own.name} gives ${own.imageAuroc}/${own.pixelAuroc} but evaluate() gives ${res.imageAuroc}/${res.pixelAuroc}`);
    let valLossChoice: TrainRunRecord['valLossChoice'];
    if (job.keepValLossChoice && existsSync(path.join(job.dir, VAL_LOSS_DIR, 'model.safetensors'))) {
      const l = await loadCheckpoint(tf, path.join(job.dir, VAL_LOSS_DIR));
      try {
        const own = variantMaps(tf, perLayerMaps(tf, l.model, set, config.train.evalBatchSize), job.variants[0]!);
        valLossChoice = { epoch: l.meta.bestEpoch, expectedDetection: l.meta.expectedDetection ?? null, ...mapMetrics(own.scores, labels, own.maps, gt, size) };
        log(`val_loss choice, epoch ${valLossChoice.epoch}: image AUROC ${fmt(valLossChoice.imageAuroc)} pixel AUROC ${fmt(valLossChoice.pixelAuroc)} AUPRO ${fmt(valLossChoice.aupro)}`);
      } finally {
        l.model.dispose();
      }
    }
    const rec: TrainRunRecord = {
      kind: 'train', dataset: job.dataset.id, name: job.name, config: meta.config, teacher: meta.teacher,
      epochs: meta.config.train.epochs, bestEpoch: meta.bestEpoch, fitSeconds: r.wallSeconds,
      secondsPerEpoch: r.history.reduce((a, h) => a + h.seconds, 0) / r.history.length, history: r.history,
      peakRssMiB: peakRssMiB(), parameters: r.parameterCounts,
      test: { seconds: res.seconds, imagesPerSecond: res.imagesPerSecond, counts: { test: res.counts.test, good: res.counts.good, defective: res.counts.defective }, notes: res.notes },
      variants, images: res.images.map((i) => ({ file: i.file, label: i.label, defectType: i.defectType, score: i.score })),
      expectedDetection: meta.expectedDetection ?? null, ...(valLossChoice ? { valLossChoice } : {}),
      finishedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(path.join(job.dir, 'run.json'), rec);
    return rec;
  } finally {
    model.dispose();
    logFile.end();
  }
}

/** Runs a speed job: parameter counts and inference images/s (median of runs, warm-up excluded) per batch size. */
export async function runSpeedJob(tf: Tf, job: SpeedJob): Promise<SpeedRunRecord> {
  const model = NTSNet.create(tf, job.model, 'random', job.seed); // weights do not change counts or speed
  try {
    const speed = job.batches.map((b) => measureInference(tf, model, b, job.runs));
    const rec: SpeedRunRecord = {
      kind: 'speed', name: job.name, model: job.model, parameters: model.parameterCounts(), speed,
      peakRssMiB: peakRssMiB(), backend: tf.getBackend(), finishedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(path.join(job.dir, 'run.json'), rec);
    return rec;
  } finally {
    model.dispose();
  }
}

const fmt = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(4));
