import { DEFAULT_MODEL_CONFIG, validateModelConfig, type ModelConfig } from '../model/config.js';

/** Training hyper-parameters. */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  /**
   * `sgd`: SGD with momentum (STFPM's recipe: lr 0.4, momentum 0.9, weight decay 1e-4; the default).
   * `adam`: the paper states "Adam, lr 0.4", which diverges; with Adam use a small lr such as 1e-3.
   */
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Loss reduction over the batch: `sum` as STFPM's reference code (what lr 0.4 was tuned for) or `mean`. */
  lossReduction: 'sum' | 'mean';
  /** Fraction of the normal training images held out (seeded) for validation / best-checkpoint selection. */
  valFraction: number;
  seed: number;
  /** Batch size used for evaluation and prediction (does not change results). */
  evalBatchSize: number;
  /**
   * Which epoch's weights become the checkpoint (docs/method.md, "Model selection"): `val_loss` = the lowest distillation
   * loss on the held-out normal images (absent in older checkpoints = this); `synthetic` = the highest expected
   * detection (mean of the synthetic image and pixel AUROC, engine/synthetic.ts) on synthetic defects pasted into the
   * held-out normal images, ties broken by the validation loss. Neither uses defect labels. The default stays
   * `val_loss`: checked on fresh synthetic defects (other seeds), the `synthetic` choice did not beat it on both
   * datasets (issue 10; docs/method.md, "Model selection").
   */
  selectBy?: 'val_loss' | 'synthetic';
  /** Learning-rate schedule: `constant` (absent = this) or `cosine` (lr x (1 + cos(pi t / T)) / 2 over all steps; SGD only). */
  lrSchedule?: 'constant' | 'cosine';
  /**
   * Training augmentation: `none` (absent = this) or `flip` (each batch mirrored left-right and / or top-bottom, seeded).
   * Flipped images need the teacher at every step, so `flip` does not use the teacher-feature cache.
   */
  augment?: 'none' | 'flip';
  /** Seed of the student's initialisation, the data order and the flips (absent = `seed`, which also seeds the split). */
  initSeed?: number;
  /** Stop when the selection criterion has not improved for this many epochs (absent or 0 = train every epoch). */
  patience?: number;
}

/** Everything that defines a run; saved next to (and inside) every checkpoint and result. */
export interface RunConfig {
  preset: string;
  model: ModelConfig;
  train: TrainConfig;
  /** Teacher weights: `imagenet` (torchvision IMAGENET1K_V1 from --teacher-weights, the cache or download) or `random` (seeded; tests and offline demos only). */
  teacher: 'imagenet' | 'random';
}

const BASE_TRAIN: TrainConfig = {
  epochs: 200, batchSize: 32, optimizer: 'sgd', lr: 0.4, momentum: 0.9, weightDecay: 1e-4,
  lossReduction: 'sum', valFraction: 0.1, seed: 42, evalBatchSize: 16,
};

/**
 * Presets. `paper`: the paper's protocol (256 px, 200 epochs, batch 32). `cpu`: sized so that fit + test of one MVTec AD
 * category takes about 20 minutes on a 2-core CPU (see README for the measurement).
 */
export const PRESETS: Record<'paper' | 'cpu' | 'tiny', RunConfig> = {
  paper: { preset: 'paper', model: { ...DEFAULT_MODEL_CONFIG }, train: { ...BASE_TRAIN }, teacher: 'imagenet' },
  cpu: { preset: 'cpu', model: { ...DEFAULT_MODEL_CONFIG, imageSize: 128 }, train: { ...BASE_TRAIN, epochs: 50, batchSize: 16 }, teacher: 'imagenet' },
  tiny: { preset: 'tiny', model: { ...DEFAULT_MODEL_CONFIG, imageSize: 64 }, train: { ...BASE_TRAIN, epochs: 2, batchSize: 4 }, teacher: 'random' },
};

export type PresetName = keyof typeof PRESETS;

/** Deep copy of a preset. @throws Error listing the presets when the name is unknown. */
export function preset(name: string): RunConfig {
  const p = (PRESETS as Record<string, RunConfig>)[name];
  if (!p) throw new Error(`Unknown preset '${name}'. Available: ${Object.keys(PRESETS).join(', ')}.`);
  return structuredClone(p);
}

/** Validates a run config; throws an Error listing every problem. */
export function validateRunConfig(c: RunConfig): void {
  validateModelConfig(c.model);
  const t = c.train;
  const errs: string[] = [];
  if (!Number.isInteger(t.epochs) || t.epochs < 1) errs.push(`epochs must be a positive integer (got ${t.epochs})`);
  if (!Number.isInteger(t.batchSize) || t.batchSize < 1) errs.push(`batchSize must be a positive integer (got ${t.batchSize})`);
  if (!Number.isInteger(t.evalBatchSize) || t.evalBatchSize < 1) errs.push(`evalBatchSize must be a positive integer (got ${t.evalBatchSize})`);
  if (t.optimizer !== 'sgd' && t.optimizer !== 'adam') errs.push(`optimizer must be 'sgd' or 'adam' (got ${String(t.optimizer)})`);
  if (!(t.lr > 0)) errs.push(`lr must be > 0 (got ${t.lr})`);
  if (!(t.momentum >= 0 && t.momentum < 1)) errs.push(`momentum must be in [0, 1) (got ${t.momentum})`);
  if (!(t.weightDecay >= 0)) errs.push(`weightDecay must be >= 0 (got ${t.weightDecay})`);
  if (t.lossReduction !== 'sum' && t.lossReduction !== 'mean') errs.push(`lossReduction must be 'sum' or 'mean'`);
  if (!(t.valFraction >= 0 && t.valFraction < 1)) errs.push(`valFraction must be in [0, 1) (got ${t.valFraction})`);
  if (!Number.isInteger(t.seed)) errs.push(`seed must be an integer (got ${t.seed})`);
  if (c.teacher !== 'imagenet' && c.teacher !== 'random') errs.push(`teacher must be 'imagenet' or 'random'`);
  if (t.selectBy !== undefined && t.selectBy !== 'val_loss' && t.selectBy !== 'synthetic') errs.push(`selectBy must be 'val_loss' or 'synthetic' (got ${String(t.selectBy)})`);
  if (t.lrSchedule !== undefined && t.lrSchedule !== 'constant' && t.lrSchedule !== 'cosine') errs.push(`lrSchedule must be 'constant' or 'cosine' (got ${String(t.lrSchedule)})`);
  if (t.lrSchedule === 'cosine' && t.optimizer !== 'sgd') errs.push(`lrSchedule 'cosine' needs optimizer 'sgd'`);
  if (t.augment !== undefined && t.augment !== 'none' && t.augment !== 'flip') errs.push(`augment must be 'none' or 'flip' (got ${String(t.augment)})`);
  if (t.initSeed !== undefined && !Number.isInteger(t.initSeed)) errs.push(`initSeed must be an integer (got ${t.initSeed})`);
  if (t.patience !== undefined && !(Number.isInteger(t.patience) && t.patience >= 0)) errs.push(`patience must be a non-negative integer (got ${t.patience})`);
  if (errs.length) throw new Error(`Invalid run config:\n  - ${errs.join('\n  - ')}`);
}
