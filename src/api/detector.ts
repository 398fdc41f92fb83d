/**
 * High-level library API: train, load, predict and save an NTSNet anomaly detector in a few lines.
 *
 * ```ts
 * const det = await Detector.fit({ data: 'DATA/bottle', out: 'runs/bottle', config: 'cpu' });
 * const [r] = await det.predict('photo.png');   // r.score, r.normalizedScore, r.isAnomalous, r.map [height, width]
 * det.dispose();
 * ```
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { loadTf, type Tf } from '../backend/index.js';
import type { FolderSpec } from '../data/folder.js';
import { loadImageSet } from '../engine/batches.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from '../engine/checkpoint.js';
import { preset, validateRunConfig, type PresetName, type RunConfig, type TrainConfig } from '../engine/config.js';
import { fit, type FitResult } from '../engine/fit.js';
import { effectiveThresholds, type EffectiveThresholds } from '../engine/inspect.js';
import { collectImages } from '../engine/predict.js';
import { scoreImageSet } from '../engine/score.js';
import type { ModelConfig } from '../model/config.js';
import type { NTSNet } from '../model/ntsnet.js';

/** A partial run config: a preset (default `cpu`) with some model / train fields changed. */
export interface DetectorConfig {
  /** Starting preset: `paper` (256 px, 200 epochs), `cpu` (128 px, 50 epochs; default), `tiny` (64 px, 2 epochs, random teacher). */
  preset?: PresetName;
  model?: Partial<ModelConfig>;
  train?: Partial<TrainConfig>;
  /** `imagenet` (needs the torchvision ResNet18 weights, see docs/weights.md) or `random` (tests only). */
  teacher?: RunConfig['teacher'];
}

/** Options of {@link Detector.fit}. */
export interface DetectorFitOptions {
  /** MVTec AD category folder (train/good is used for training) or a folder dataset description. */
  data: string | FolderSpec;
  /** Checkpoint output folder (created; must not be inside the dataset). */
  out: string;
  /** A preset name or a partial config (default: the `cpu` preset). */
  config?: PresetName | DetectorConfig;
  /** torchvision `resnet18-f37072fd.pth` or a converted .safetensors (otherwise: cache, then download). */
  teacherWeights?: string;
  /** Allow downloading the teacher weights (default true). */
  download?: boolean;
  /**
   * Labelled DEFECTIVE validation images (never test images): the image threshold becomes the F1-optimal one over
   * these and the normal validation images instead of the normal-data rule.
   */
  defectiveValidation?: string[];
  /** Skip unreadable images with a warning. */
  skipBad?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** Options of {@link Detector.load}. */
export interface DetectorLoadOptions {
  /** Image threshold override (raw score units; default: the checkpoint's calibrated threshold). */
  threshold?: number;
  /** Pixel threshold override (map units). */
  pixelThreshold?: number;
}

/** Prediction for one image. */
export interface DetectorResult {
  /** Absolute image path. */
  path: string;
  /** Raw image-level anomaly score: the maximum of `map` (unitless distance; larger = more anomalous). */
  score: number;
  /** score / image threshold: 1.0 = at the threshold, > 1 anomalous. */
  normalizedScore: number;
  /** score > image threshold. */
  isAnomalous: boolean;
  /**
   * Anomaly map [height, width] float32, row-major, at the model's input resolution (the image resized to a square
   * `imageSize` x `imageSize`); a pixel is defective when its value > {@link Detector.thresholds}.pixel.
   */
  map: Float32Array;
  /** Map width in pixels (= model image size). */
  width: number;
  /** Map height in pixels (= model image size). */
  height: number;
}

function buildConfig(c: DetectorFitOptions['config']): RunConfig {
  const spec: DetectorConfig = typeof c === 'string' ? { preset: c } : (c ?? {});
  const cfg = preset(spec.preset ?? 'cpu');
  Object.assign(cfg.model, spec.model ?? {});
  Object.assign(cfg.train, spec.train ?? {});
  if (spec.teacher) cfg.teacher = spec.teacher;
  validateRunConfig(cfg);
  return cfg;
}

/**
 * A trained NTSNet detector: the model (TF.js variables, call {@link dispose}), its checkpoint metadata and the
 * decision thresholds calibrated on held-out normal validation images at training time (docs/inspection.md).
 */
export class Detector {
  /** Checkpoint metadata (config, split, calibrated thresholds, ...). */
  readonly meta: CheckpointMeta;
  /** Thresholds applied by {@link predict}: the checkpoint's, or the overrides given to {@link load}. */
  readonly thresholds: EffectiveThresholds;
  /** Training history when this detector was made by {@link fit}. */
  readonly fitResult?: FitResult;
  private model: NTSNet | undefined;
  private readonly tf: Tf;

  private constructor(tf: Tf, model: NTSNet, meta: CheckpointMeta, thresholds: EffectiveThresholds, fitResult?: FitResult) {
    this.tf = tf;
    this.model = model;
    this.meta = meta;
    this.thresholds = thresholds;
    this.fitResult = fitResult;
  }

  /** Model input size in pixels (maps are imageSize x imageSize). */
  get imageSize(): number {
    return this.meta.config.model.imageSize;
  }

  /**
   * Trains on the normal images of `data`, keeps the best-validation-loss checkpoint in `out` (with calibrated
   * thresholds) and returns it loaded.
   * @throws Error for a bad dataset or config, missing teacher weights, or `out` inside the dataset.
   */
  static async fit(opts: DetectorFitOptions): Promise<Detector> {
    const tf = loadTf();
    const r = await fit(tf, {
      data: opts.data, out: opts.out, config: buildConfig(opts.config), teacherWeights: opts.teacherWeights,
      download: opts.download, defectiveValidation: opts.defectiveValidation, skipBad: opts.skipBad, log: opts.log, progress: false,
    });
    return Detector.open(tf, r.checkpointDir, {}, r);
  }

  /**
   * Loads a checkpoint folder written by `ntsnet fit`, {@link fit} or {@link save}.
   * @throws Error when the checkpoint is missing or invalid, or has no thresholds and no override is given.
   */
  static async load(checkpointDir: string, opts: DetectorLoadOptions = {}): Promise<Detector> {
    return Detector.open(loadTf(), checkpointDir, opts);
  }

  private static async open(tf: Tf, dir: string, opts: DetectorLoadOptions, fitResult?: FitResult): Promise<Detector> {
    const { model, meta } = await loadCheckpoint(tf, dir);
    try {
      return new Detector(tf, model, meta, effectiveThresholds(meta, { image: opts.threshold, pixel: opts.pixelThreshold }), fitResult);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  private live(): NTSNet {
    if (!this.model) throw new Error('Detector was disposed.');
    return this.model;
  }

  /**
   * Scores images (a path, or paths; a folder is expanded recursively) in batches of the checkpoint's evaluation
   * batch size.
   * @returns one result per image, in input order.
   * @throws Error (DataError) naming an image that is missing or cannot be decoded.
   */
  async predict(imagePathOrPaths: string | readonly string[], opts: { batchSize?: number } = {}): Promise<DetectorResult[]> {
    const model = this.live();
    const files: string[] = [];
    for (const p of typeof imagePathOrPaths === 'string' ? [imagePathOrPaths] : imagePathOrPaths) {
      const st = await stat(p).catch(() => undefined);
      if (st?.isDirectory()) files.push(...(await collectImages(p)));
      else files.push(path.resolve(p)); // missing files are reported by the decoder, naming the file
    }
    const size = this.imageSize, hw = size * size;
    const batch = opts.batchSize ?? this.meta.config.train.evalBatchSize;
    const t = this.thresholds.image;
    const out: DetectorResult[] = [];
    for (let i = 0; i < files.length; i += batch) {
      const part = files.slice(i, i + batch);
      const set = await loadImageSet(part, size);
      const { scores, maps } = scoreImageSet(this.tf, model, set, batch, true);
      part.forEach((p, j) => {
        const score = scores[j]!;
        out.push({ path: p, score, normalizedScore: score / t, isAnomalous: score > t, map: maps!.slice(j * hw, (j + 1) * hw), width: size, height: size });
      });
    }
    return out;
  }

  /** Writes the checkpoint (model.safetensors + config.json, atomically) to `dir`, thresholds included. */
  async save(dir: string): Promise<void> {
    await saveCheckpoint(dir, this.live(), this.meta);
  }

  /** Frees the model's TF.js memory; the detector cannot be used afterwards. Safe to call twice. */
  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
