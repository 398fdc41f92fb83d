import * as path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { Optimizer } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { readDataset } from '../data/dataset.js';
import { findBadFiles } from '../data/image.js';
import { readdir, rm, stat } from 'node:fs/promises';
import { splitToJson, type FolderSpec, type SplitDataset } from '../data/folder.js';
import { NTSNet } from '../model/ntsnet.js';
import { checkTeacherForNorm, RANDOM_TEACHER, resolveResnet18Weights, type TeacherIdentity } from '../model/weights/resolve.js';
import { shuffle } from '../util/rng.js';
import { chunks, loadImageSet, type ImageSet } from './batches.js';
import { markTrainingState, readCheckpointMeta, saveCheckpoint, writeTrainingState, type CheckpointMeta, type TrainingState, CHECKPOINT_FORMAT } from './checkpoint.js';
import { TeacherFeatureCache, teacherCacheLimit, teacherCacheSetting } from './teacherCache.js';
import { DiskImageCache, meanLossCache, scoreCache } from './imageCache.js';
import { readResumeState, removeResumeState, restoreResumeState, RESUME_FILE, saveResumeState } from './resume.js';
import { LOCK_FILE, lockFolder } from '../util/lock.js';
import { preset, PRESETS, validateRunConfig, type RunConfig } from './config.js';
import { tooFewTrainingImages } from '../data/check.js';
import { DataError } from '../data/image.js';
import { assertOutsideDataset, NTSNET_VERSION } from './paths.js';
import { assertWritableFolder } from '../util/writable.js';
import { assessDetector, healthBanner } from './health.js';
import { expectedDetection, makeSyntheticSet } from './synthetic.js';
import { scoreImageSet } from './score.js';
import { computeThresholds, describeThresholds } from './threshold.js';

/** Options of {@link fit}. */
export interface FitOptions {
  /** MVTec AD category folder (train/good is used) or a folder dataset description. */
  data: string | FolderSpec;
  /** Skip unreadable / truncated images with a warning instead of failing. */
  skipBad?: boolean;
  /**
   * Continue the interrupted run in `out` from its last finished epoch (resume.safetensors: weights, optimiser state,
   * loop state); the run's own config is used. With the same data the result equals an uninterrupted run's.
   */
  resume?: boolean;
  /**
   * Benchmarks only (benchmarks/fit-memory.ts): end each epoch after this many batches, so that a memory measurement
   * on a large dataset does not have to train a full epoch. Never set by the CLI.
   */
  maxBatchesPerEpoch?: number;
  /**
   * Benchmarks only: when the run selects by synthetic defects, also save in this folder the checkpoint that selection
   * by validation loss (the shipped default) would keep, with its own thresholds, so that both epoch choices of one
   * training run can be evaluated. Never set by the CLI.
   */
  keepValLossChoice?: string;
  /** Aborting stops training after the current batch: the checkpoint is marked interrupted and {@link FitInterruptedError} is thrown. */
  signal?: AbortSignal;
  /** Replace a checkpoint already in `out` (otherwise refused, so a trained model is never lost silently). */
  force?: boolean;
  /** Check before training that every test image (and mask) decodes, so `fit --test` cannot fail after training. */
  checkTestImages?: boolean;
  /** Output folder for the checkpoint (created; must not be inside the dataset). */
  out: string;
  config: RunConfig;
  /** Explicit teacher weights file (.pth / .safetensors) when config.teacher is `imagenet`. */
  teacherWeights?: string;
  /** Allow downloading the torchvision weights when not found locally. */
  download?: boolean;
  /** Show a progress bar (TTY) / per-epoch lines. */
  log?: (line: string) => void;
  progress?: boolean;
  /**
   * Labelled DEFECTIVE validation images (paths) for threshold calibration: when given, the image threshold is the
   * F1-optimal one over the normal validation images and these (see engine/threshold.ts). They must not be test,
   * training or validation images of the dataset (refused). Never pass test images.
   */
  defectiveValidation?: string[];
}

/** One epoch of training history. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number | null;
  /** Expected detection of this epoch's weights (synthetic image / pixel AUROC), when the run selects by it. */
  synthetic?: { imageAuroc: number | null; pixelAuroc: number | null };
  seconds: number;
  imagesPerSecond: number;
}

export interface FitResult {
  checkpointDir: string;
  meta: CheckpointMeta;
  history: EpochRecord[];
  wallSeconds: number;
  parameterCounts: { teacher: number; student: number };
}

function makeOptimizer(tf: Tf, c: RunConfig): Optimizer {
  return c.train.optimizer === 'sgd' ? tf.train.momentum(c.train.lr, c.train.momentum) : tf.train.adam(c.train.lr);
}

/** Learning rate at training progress t in [0, 1): constant, or cosine annealing to 0 (SGDR without restarts). */
export function lrAt(c: RunConfig, t: number): number {
  return c.train.lrSchedule === 'cosine' ? c.train.lr * 0.5 * (1 + Math.cos(Math.PI * t)) : c.train.lr;
}

/** The seeded flips of one training batch (`augment: 'flip'`): bit 0 = left-right, bit 1 = top-bottom. */
export function flipsFor(seed: number, epoch: number, batch: number): { lr: boolean; ud: boolean } {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35) ^ Math.imul(batch + 1, 0x27d4eb2f)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  h ^= h >>> 13;
  return { lr: (h & 1) === 1, ud: (h & 2) === 2 };
}

/** Mean of the synthetic image and pixel AUROC (the `synthetic` selection criterion); null without figures. */
export function syntheticScore(e: { imageAuroc: number | null; pixelAuroc: number | null } | undefined): number | null {
  if (!e || e.imageAuroc === null || e.pixelAuroc === null) return null;
  return (e.imageAuroc + e.pixelAuroc) / 2;
}

/**
 * Trains NTSNet on the normal images of an MVTec AD category: seeded hold-out of train/good for validation, the
 * configured optimizer, and the checkpoint with the best validation loss (written atomically to `out`).
 * @throws Error for a bad dataset, bad config, missing teacher weights, or an output folder inside the dataset.
 */
export async function fit(tf: Tf, opts: FitOptions): Promise<FitResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let c = structuredClone(opts.config);
  validateRunConfig(c);
  teacherCacheSetting(); // a bad NTSNET_TEACHER_CACHE_GB fails now, not after the images are decoded
  // Before any work: the output must be outside the dataset and writable (a read-only --out fails now, not after an epoch).
  for (const dir of typeof opts.data === 'string' ? [opts.data] : datasetFolders(opts.data)) await assertOutsideDataset(opts.out, dir);
  await assertWritableFolder(opts.out, '--out', { create: true });
  // One run per output folder: a second fit into the same --out stops here instead of racing the first.
  const lock = await lockFolder(opts.out, 'fit', log);
  const caches: { dispose(): Promise<void> }[] = [];
  try {
    return await fitLocked();
  } finally {
    for (const k of caches) await k.dispose();
    lock.release();
  }

  async function fitLocked(): Promise<FitResult> {
  const saved = opts.resume ? await readResumeState(opts.out) : undefined;
  if (opts.resume) {
    if (!saved) throw new Error(`Nothing to resume in ${opts.out}: it has no ${RESUME_FILE} (no interrupted run, or the run completed). Run fit without --resume.`);
    if (saved.info.epochsDone >= saved.info.config.train.epochs) throw new Error(`The run in ${opts.out} already finished all ${saved.info.config.train.epochs} epochs; nothing to resume.`);
    if (JSON.stringify(saved.info.config) !== JSON.stringify(c)) log(`note: --resume continues with the interrupted run's own settings (preset ${saved.info.config.preset}, ${saved.info.config.train.epochs} epochs, seed ${saved.info.config.train.seed}); other config flags are ignored.`);
    c = saved.info.config;
  }
  const ds: SplitDataset = await readDataset(opts.data, { valFraction: c.train.valFraction, seed: c.train.seed, skipBad: opts.skipBad });
  for (const dir of datasetFolders(opts.data, ds)) await assertOutsideDataset(opts.out, dir);
  if (saved && JSON.stringify(splitToJson(ds).files) !== JSON.stringify(saved.info.bestMeta?.split.files))
    throw new Error(`--resume: the dataset given now does not give the interrupted run's split (other files or flags). Pass the same --data / --normal / --abnormal as the interrupted run, or start over with --force.`);
  if (!saved) await checkOutputFolder(opts.out, opts.force ?? false, log);
  else await removeStaleResults(opts.out, log, 'the resumed run replaces the checkpoint they were made with');
  for (const w of ds.warnings) log(`warning: ${w}`);
  // The same rule and message as `ntsnet data check` (data/check.ts).
  const tooFew = tooFewTrainingImages(ds.train.length);
  if (tooFew) throw new DataError(`${ds.root}: ${tooFew}`, ds.root);
  if (opts.checkTestImages) {
    const bad = await findBadFiles(ds.test.map((t) => t.path), 'image');
    const badMasks = await findBadFiles(ds.test.flatMap((t) => (t.maskPath ? [t.maskPath] : [])), 'mask');
    const all = [...bad.values(), ...badMasks.values()];
    if (all.length) throw new Error(`${all.length} test file(s) cannot be read, so the test after training would fail:\n  - ${all.slice(0, 5).map((e) => e.message).join('\n  - ')}\nFix or remove them, or pass --skip-bad to skip them with a warning.`);
  }

  let teacher: Parameters<typeof NTSNet.create>[2] = 'random';
  let teacherInfo: TeacherIdentity = RANDOM_TEACHER;
  if (c.teacher === 'imagenet') {
    // Never a silent random fallback: without weights this throws with where to put which file (or --teacher random).
    const w = await resolveResnet18Weights({ path: opts.teacherWeights, download: opts.download ?? true, onProgress: log });
    checkTeacherForNorm(w.identity, c.model.teacherNorm);
    teacher = w.state;
    teacherInfo = w.identity;
    log(`teacher: ${teacherInfo.description} (SHA-256 ${w.sha256.slice(0, 12)}...)`);
  } else {
    if (opts.teacherWeights !== undefined) throw new Error(`Teacher weights ${opts.teacherWeights} were given but the run config's teacher is 'random' (--teacher random, or a preset such as tiny): pass --teacher imagenet to use them, or drop --teacher-weights.`);
    log(`warning: teacher = random (seeded random ResNet18, not ImageNet; from ${opts.resume ? 'the interrupted run\'s config' : "the run config: --teacher random or --preset tiny"}): for tests only; accuracy is far below the paper setting.`);
  }

  if (ds.train.length < c.train.batchSize) log(`warning: only ${ds.train.length} training image(s), fewer than the batch size ${c.train.batchSize}: each epoch is one smaller batch.`);
  log(`data: ${ds.name} (${ds.kind}): ${ds.train.length} train, ${ds.val.length} validation, ${ds.test.length} test (seed ${ds.split.seed}), ${c.model.imageSize} px`);
  // Streamed from a disk cache: memory is bounded by the batch, not by the dataset (engine/imageCache.ts).
  const trainSet = await DiskImageCache.create(ds.train, c.model.imageSize);
  caches.push(trainSet);
  const valSet = await DiskImageCache.create(ds.val, c.model.imageSize);
  caches.push(valSet);
  const defectiveSet = opts.defectiveValidation?.length ? await loadDefectiveValidation(opts.defectiveValidation, ds, c.model.imageSize) : undefined;
  // Thresholds are calibrated on the normal validation images; without any, on the training images (warned).
  const calibration = valSet.length ? { set: valSet, source: 'validation' as const } : { set: trainSet, source: 'training' as const };
  let thresholdWarned = false;
  // Synthetic defects in the calibration images: an expected-detection figure from normal images only.
  // (At most SYNTHETIC_MAX_IMAGES of them, held in memory, so that memory does not grow with the dataset.)
  const synthetic = makeSyntheticSet(await calibration.set.subset([...Array(Math.min(SYNTHETIC_MAX_IMAGES, calibration.set.length)).keys()]), c.train.seed);

  const initSeed = c.train.initSeed ?? c.train.seed;
  const model = NTSNet.create(tf, c.model, teacher, initSeed, teacherInfo.source);
  const counts = model.parameterCounts();
  log(`model: student ${c.model.studentBlock}, teacher norm ${c.model.teacherNorm}, layers ${c.model.layers.join(',')}; parameters teacher ${(counts.teacher / 1e6).toFixed(2)} M, student ${(counts.student / 1e6).toFixed(2)} M`);
  // A fixed teacher's features are the same in every epoch: computed once (engine/teacherCache.ts).
  let teacherTrain: TeacherFeatureCache | undefined, teacherVal: TeacherFeatureCache | undefined;
  if (c.model.teacherNorm === 'frozen_bn' && c.train.augment === 'flip') log('note: augment flip: the teacher runs in every training step (flipped images have no cached teacher features).');
  if (c.model.teacherNorm === 'frozen_bn' && c.train.augment !== 'flip') {
    const need = (trainSet.length + valSet.length) * TeacherFeatureCache.bytesPerImage(c.model);
    if (need <= teacherCacheLimit()) {
      teacherTrain = await TeacherFeatureCache.create(tf, model, trainSet, c.train.evalBatchSize);
      caches.push(teacherTrain);
      teacherVal = await TeacherFeatureCache.create(tf, model, valSet, c.train.evalBatchSize);
      caches.push(teacherVal);
    } else if (teacherCacheSetting() === 0) log('note: the teacher-feature cache is off (NTSNET_TEACHER_CACHE_GB=0); the teacher runs in every training step instead.');
    else log(`note: the teacher's features would take ${(need / 1e9).toFixed(1)} GB of disk (over the ${(teacherCacheLimit() / 1e9).toFixed(1)} GB allowed: NTSNET_TEACHER_CACHE_GB, default 8, and half the free space of the cache folder); the teacher runs in every training step instead.`);
  }
  const optimizer = makeOptimizer(tf, c);
  let history: EpochRecord[] = [];
  let best: { epoch: number; loss: number; synthetic?: number | null } | undefined;
  // The val_loss choice kept beside a synthetic selection (opts.keepValLossChoice); after a resume, from the history.
  let bestVal: { epoch: number; loss: number } | undefined;
  const bySynthetic = c.train.selectBy === 'synthetic' && calibration.source === 'validation' && synthetic.defects.length > 0;
  if (c.train.selectBy === 'synthetic' && !bySynthetic) log('warning: selection by synthetic defects needs held-out normal images (--val-fraction > 0); the checkpoint is chosen by the training loss instead.');
  if (bySynthetic && synthetic.defects.length < 5) log(`warning: selection by synthetic defects rests on ${synthetic.defects.length} held-out image(s): its figure is very noisy; use more training images or a larger --val-fraction, or --select-by val_loss.`);
  let stoppedEarly = false;
  let meta: CheckpointMeta | undefined;
  let epochsDone = 0;
  if (saved) {
    await restoreResumeState(tf, model, optimizer, saved);
    ({ best, history, bestMeta: meta, thresholdWarned, epochsDone } = saved.info);
    for (const h of history) if (!bestVal || (h.valLoss ?? h.trainLoss) < bestVal.loss) bestVal = { epoch: h.epoch, loss: h.valLoss ?? h.trainLoss };
    log(`resuming: epochs 1-${epochsDone} of ${c.train.epochs} done (best epoch ${best?.epoch ?? '-'}); continuing with epoch ${epochsDone + 1}`);
  }
  const state = (status: TrainingState['status'], done: number): TrainingState => ({ status, epochsDone: done, epochs: c.train.epochs, pid: process.pid, updatedAt: new Date().toISOString() });
  let interrupted = false;
  const useBar = (opts.progress ?? true) && process.stderr.isTTY;
  try {
    for (let epoch = epochsDone + 1; epoch <= c.train.epochs && !interrupted; epoch++) {
      const te = Date.now();
      const order = shuffle([...Array(trainSet.length).keys()], initSeed * 7919 + epoch);
      // BatchNorm statistics are taken over B x H x W values, so even a batch of one image is usable.
      const batches = chunks(order, c.train.batchSize).slice(0, opts.maxBatchesPerEpoch ?? Infinity);
      const bar = useBar ? new SingleBar({ format: `epoch ${epoch}/${c.train.epochs} |{bar}| {value}/{total} img | loss {loss} | {ips} img/s`, stream: process.stderr }, Presets.shades_classic) : undefined;
      bar?.start(order.length, 0, { loss: '-', ips: '-' });
      let lossSum = 0, seen = 0, b = 0;
      for (const idx of batches) {
        if (opts.signal?.aborted) { interrupted = true; break; }
        let x = await trainSet.batch(tf, idx);
        const progress = ((epoch - 1) * batches.length + b) / (c.train.epochs * batches.length);
        if (c.train.augment === 'flip') {
          const f = flipsFor(initSeed, epoch, b);
          const axes = [...(f.ud ? [1] : []), ...(f.lr ? [2] : [])];
          if (axes.length) { const y = tf.reverse(x, axes); x.dispose(); x = y; }
        }
        b++;
        if (c.train.lrSchedule === 'cosine') (optimizer as Optimizer & { setLearningRate(lr: number): void }).setLearningRate(lrAt(c, progress));
        const ft = await teacherTrain?.batch(tf, idx);
        const loss = model.trainStep(x, optimizer, { weightDecay: c.train.weightDecay, lossReduction: c.train.lossReduction, progress }, ft);
        x.dispose();
        for (const t of ft ?? []) t.dispose();
        if (!Number.isFinite(loss)) throw divergedError(c, epoch, `the training loss of batch ${Math.floor(seen / c.train.batchSize) + 1} is ${loss}`);
        lossSum += loss * (c.train.lossReduction === 'sum' ? 1 : idx.length);
        seen += idx.length;
        bar?.update(seen, { loss: (lossSum / seen).toFixed(4), ips: (seen / ((Date.now() - te) / 1000)).toFixed(1) });
      }
      bar?.stop();
      if (interrupted) break;
      const trainSeconds = (Date.now() - te) / 1000;
      // Divergence is caught where it happens (weights overflowing after the last step of the epoch, or a NaN
      // validation loss), not later as a non-finite score during threshold calibration.
      const badWeight = firstNonFinite(tf, model);
      if (badWeight) throw divergedError(c, epoch, `after its last training step the student weight ${badWeight} is not finite`);
      const valLoss = await meanLossCache(tf, model, valSet, c.train.evalBatchSize, teacherVal);
      if (valLoss !== null && !Number.isFinite(valLoss)) throw divergedError(c, epoch, `the validation loss is ${valLoss}`);
      const rec: EpochRecord = { epoch, trainLoss: lossSum / seen, valLoss, seconds: (Date.now() - te) / 1000, imagesPerSecond: seen / trainSeconds };
      history.push(rec);
      const score = valLoss ?? rec.trainLoss;
      // Selection by synthetic defects scores the calibration images every epoch (reused below when improved).
      let cal = bySynthetic ? await scoreCache(tf, model, calibration.set, c.train.evalBatchSize, true) : undefined;
      const synth = cal ? expectedDetection(tf, model, synthetic, cal.scores, cal.maps!, c.train.evalBatchSize) : undefined;
      if (synth) rec.synthetic = { imageAuroc: synth.imageAuroc, pixelAuroc: synth.pixelAuroc };
      const sScore = syntheticScore(synth);
      const improved = !best || (bySynthetic
        ? (sScore ?? -1) > (best.synthetic ?? -1) || ((sScore ?? -1) === (best.synthetic ?? -1) && score < best.loss)
        : score < best.loss);
      const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(1));
      log(`epoch ${epoch}/${c.train.epochs} train loss ${rec.trainLoss.toFixed(5)} val loss ${valLoss === null ? 'n/a' : valLoss.toFixed(5)}${synth ? ` synthetic ${pct(synth.imageAuroc)} / ${pct(synth.pixelAuroc)}` : ''} ${rec.imagesPerSecond.toFixed(1)} img/s ${rec.seconds.toFixed(1)} s${improved ? ' *best' : ''}`);
      const valImproved = !!opts.keepValLossChoice && bySynthetic && (!bestVal || score < bestVal.loss);
      if (improved || valImproved) {
        cal ??= await scoreCache(tf, model, calibration.set, c.train.evalBatchSize, true);
        const valScores = calibration.source === 'validation' ? Array.from(cal.scores) : [];
        const thresholds = computeThresholds({
          normalScores: cal.scores, normalMaps: cal.maps!, source: calibration.source,
          defectiveScores: defectiveSet ? scoreImageSet(tf, model, defectiveSet, c.train.evalBatchSize).scores : undefined,
        });
        if (!thresholdWarned) for (const w of thresholds.warnings) log(`warning: thresholds: ${w}`);
        thresholdWarned = true;
        log(`thresholds: ${describeThresholds(thresholds)}`);
        const expected = synth ?? expectedDetection(tf, model, synthetic, cal.scores, cal.maps!, c.train.evalBatchSize);
        const health = assessDetector(cal.scores, cal.maps!, c.model.imageSize, calibration.source, c.model, teacherInfo, expected);
        const m: CheckpointMeta = {
          format: CHECKPOINT_FORMAT, ntsnetVersion: NTSNET_VERSION, config: c, teacher: teacherInfo,
          bestEpoch: epoch, bestValLoss: valLoss, valScores, thresholds, health, expectedDetection: expected,
          split: splitToJson(ds), createdAt: new Date().toISOString(), training: state('running', epoch),
        };
        if (improved) {
          best = { epoch, loss: score, synthetic: sScore };
          meta = await saveCheckpoint(opts.out, model, m);
        }
        if (valImproved) {
          bestVal = { epoch, loss: score };
          await saveCheckpoint(opts.keepValLossChoice!, model, m);
        }
      }
      // After every epoch: what --resume needs, and the state (epoch k of n) in config.json.
      await saveResumeState(opts.out, model, optimizer, { config: c, epochsDone: epoch, best, history, bestMeta: meta, thresholdWarned });
      await writeTrainingState(opts.out, meta!, state('running', epoch));
      epochsDone = epoch;
      if (c.train.patience && best && epoch - best.epoch >= c.train.patience && epoch < c.train.epochs) {
        log(`early stop after epoch ${epoch}: no better ${bySynthetic ? 'expected detection' : 'validation loss'} for ${c.train.patience} epochs (best epoch ${best.epoch})`);
        stoppedEarly = true;
        break;
      }
    }
    if (interrupted) {
      if (meta) await writeTrainingState(opts.out, meta, state('interrupted', epochsDone));
      throw new FitInterruptedError(opts.out, epochsDone, c.train.epochs, meta?.bestEpoch);
    }
    meta = await markTrainingState(opts.out, state('complete', stoppedEarly ? epochsDone : c.train.epochs));
    if (bestVal && opts.keepValLossChoice && bySynthetic) await markTrainingState(opts.keepValLossChoice, state('complete', stoppedEarly ? epochsDone : c.train.epochs));
    await removeResumeState(opts.out);
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  // A model that cannot detect anything is said so loudly, not reported as a success (also in config.json).
  const ed = meta!.expectedDetection;
  if (ed?.images) log(`expected detection (synthetic defects in ${ed.images} ${calibration.source} images, no defect labels): image AUROC ${ed.imageAuroc === null ? 'n/a' : (100 * ed.imageAuroc).toFixed(1)}, pixel AUROC ${ed.pixelAuroc === null ? 'n/a' : (100 * ed.pixelAuroc).toFixed(1)}`);
  for (const l of healthBanner(meta!.health!)) log(l);
  return { checkpointDir: path.resolve(opts.out), meta: meta!, history, wallSeconds: (Date.now() - t0) / 1000, parameterCounts: counts };
  }
}

/**
 * Loads labelled defective validation images for threshold calibration, refusing any that belong to the dataset's
 * test, training or validation split (thresholds are never computed from test images).
 */
async function loadDefectiveValidation(files: string[], ds: SplitDataset, size: number): Promise<ImageSet> {
  const used = new Map<string, string>();
  for (const p of ds.train) used.set(path.resolve(p), 'training');
  for (const p of ds.val) used.set(path.resolve(p), 'validation');
  for (const t of ds.test) used.set(path.resolve(t.path), 'test');
  for (const f of files) {
    const split = used.get(path.resolve(f));
    if (split) throw new Error(`Defective validation image ${f} is a ${split} image of the dataset; thresholds must be calibrated on separate images (never test images).`);
  }
  return loadImageSet(files, size);
}

/** Calibration images that also get a synthetic-defect copy (engine/synthetic.ts), at most; keeps memory bounded. */
export const SYNTHETIC_MAX_IMAGES = 100;

/** Thrown by {@link fit} when its `signal` is aborted (Ctrl-C): the checkpoint is kept and marked interrupted. */
export class FitInterruptedError extends Error {
  override readonly name = 'FitInterruptedError';
  constructor(readonly out: string, readonly epochsDone: number, readonly epochs: number, readonly bestEpoch: number | undefined) {
    super(epochsDone === 0 || bestEpoch === undefined
      ? `Training interrupted during epoch 1 of ${epochs}: no epoch finished, so no checkpoint was written to ${out}.`
      : `Training interrupted after epoch ${epochsDone} of ${epochs}: ${out} keeps the checkpoint of the best epoch so far (${bestEpoch}), marked incomplete in config.json. Continue with 'ntsnet fit --resume --out ${out}' and the same data flags.`);
  }
}

/** Name of the first student tensor holding a NaN or infinite value, if any. */
function firstNonFinite(tf: Tf, model: NTSNet): string | undefined {
  for (const [name, v] of model.student) {
    const ok = tf.tidy(() => tf.all(tf.isFinite(v)).dataSync()[0]);
    if (!ok) return name;
  }
  return undefined;
}

/** The error for a diverged run: where, what, and which setting to change. */
function divergedError(c: RunConfig, epoch: number, what: string): Error {
  return new Error(
    `Training diverged at epoch ${epoch} of ${c.train.epochs}: ${what}. The learning rate ${c.train.lr} (${c.train.optimizer}) is too high for this run: ` +
      `lower --lr (e.g. --lr ${c.train.lr / 10}; the ${c.preset} preset uses ${preset(c.preset in PRESETS ? c.preset : 'cpu').train.lr})${c.train.optimizer === 'adam' ? ' or use --optimizer sgd' : ''}.`,
  );
}

/** Every folder of a dataset the output must stay out of. */
export function datasetFolders(data: string | FolderSpec, ds?: SplitDataset): string[] {
  return typeof data === 'string' ? [ds?.root ?? data] : [...data.normal, ...data.abnormal, ...(data.masks ? [data.masks] : [])];
}

/**
 * Refuses an output path that is an existing file, and an output folder that already holds a checkpoint unless
 * `force` (then the previous run's results, which would no longer match, are removed).
 */
async function checkOutputFolder(out: string, force: boolean, log: (l: string) => void): Promise<void> {
  const st = await stat(out).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new Error(`--out ${out} is an existing file, not a folder. Choose a folder path (it is created if missing).`);
  const has = await stat(path.join(out, 'model.safetensors')).catch(() => undefined);
  if (!has) {
    // Not a checkpoint folder: fit would write config.json, results.json, ... over whatever is there.
    const entries = (await readdir(out)).filter((e) => e !== LOCK_FILE);
    if (entries.length && !force)
      throw new Error(`--out ${out} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. ${entries.slice(0, 3).join(', ')}) and holds no ntsnet checkpoint: its files could be overwritten. Choose a new or empty folder, or pass --force to write there anyway.`);
    await removeResumeState(out);
    return;
  }
  if (!force) {
    const prev = await readCheckpointMeta(out).catch(() => undefined);
    const t = prev?.training;
    if (t && t.status !== 'complete')
      throw new Error(`${out} holds an INCOMPLETE checkpoint: its training stopped after epoch ${t.epochsDone} of ${t.epochs}${t.status === 'interrupted' ? ' (interrupted)' : ' (the process was killed)'}. Pass --resume to continue it (same data flags), or --force to start over (the checkpoint is replaced).`);
    throw new Error(`${out} already holds a checkpoint (model.safetensors). Choose another --out, or pass --force to replace it.`);
  }
  await removeResumeState(out);
  log(`warning: --force: replacing the checkpoint in ${out}.`);
  await removeStaleResults(out, log, 'they belong to the checkpoint being replaced');
}

/** Results of an earlier checkpoint in `out` (results.json, metrics.md, report.html) would not match the new one. */
async function removeStaleResults(out: string, log: (l: string) => void, why: string): Promise<void> {
  const stale: string[] = [];
  for (const f of ['results.json', 'metrics.md', 'report.html']) {
    if (await stat(path.join(out, f)).catch(() => undefined)) { await rm(path.join(out, f), { force: true }); stale.push(f); }
  }
  if (stale.length) log(`note: removed ${stale.join(', ')} from ${out}: ${why}; run 'ntsnet test' / 'ntsnet report' again.`);
}
