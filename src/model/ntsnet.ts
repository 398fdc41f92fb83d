import type { Optimizer, Tensor, Tensor1D, Tensor3D, Tensor4D, Variable } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { anomalyMap } from './anomalyMap.js';
import type { BatchStats } from './batchnorm.js';
import { validateModelConfig, type ModelConfig } from './config.js';
import { emanMomentumAt, emanUpdate, updateRunningStats } from './eman.js';
import { ntsLoss } from './loss.js';
import { initParams, isRunningStat, studentForward, studentShapes, teacherForward, teacherShapes } from './networks.js';
import { countParams, disposeParams, paramsFromTorch, type ParamMap } from './params.js';
import type { RawStateDict } from './weights/safetensors.js';

/** Optimiser-side training options of one step. */
export interface StepOptions {
  /** L2 weight decay added to every trainable gradient (as torch.optim.SGD's weight_decay). */
  weightDecay: number;
  /** Loss reduction over the batch (see {@link ntsLoss}). */
  lossReduction: 'sum' | 'mean';
  /** Fraction of training's optimiser steps done before this one, in [0, 1] (for ModelConfig.emanSchedule; default 0). */
  progress?: number;
}

/** Output of {@link NTSNet.predict}. */
export interface Prediction {
  /** Anomaly maps [B, H, W] float32 at input resolution. */
  maps: Tensor3D;
  /** Image-level anomaly scores [B] float32 (map maximum). */
  scores: Tensor1D;
}

/**
 * NTSNet: frozen ImageNet ResNet teacher (with EMAN statistics) and a trainable asymmetric student. Holds TF variables:
 * call {@link dispose} when done. Pure tensor code; no file I/O (see engine/checkpoint.ts).
 */
export class NTSNet {
  readonly config: ModelConfig;
  readonly teacher: ParamMap;
  readonly student: ParamMap;
  private readonly tf: Tf;

  constructor(tf: Tf, config: ModelConfig, teacher: ParamMap, student: ParamMap) {
    validateModelConfig(config);
    this.tf = tf;
    this.config = config;
    this.teacher = teacher;
    this.student = student;
  }

  /**
   * Builds a model with a teacher from torchvision weights (PyTorch layout state dict) or seeded random weights
   * (`'random'`, for tests only), and a seeded random student.
   * @throws Error when the teacher weights lack keys or have wrong shapes.
   */
  static create(tf: Tf, config: ModelConfig, teacherWeights: RawStateDict | 'random', seed: number, source = 'teacher weights'): NTSNet {
    validateModelConfig(config);
    const tShapes = teacherShapes(config);
    const teacher = teacherWeights === 'random' ? initParams(tf, tShapes, seed + 1) : paramsFromTorch(tf, teacherWeights, tShapes, source);
    for (const v of teacher.values()) (v as unknown as { trainable: boolean }).trainable = false;
    const student = initParams(tf, studentShapes(config), seed);
    if (config.studentBlock === 'cot' && config.cot.valueInit === 'zero') {
      for (const [n, v] of student) if (n.endsWith('.value.1.weight')) v.assign(tf.zerosLike(v));
    }
    return new NTSNet(tf, config, teacher, student);
  }

  /** Trainable student variables (everything but BatchNorm running statistics). */
  trainableVariables(): Variable[] {
    return [...this.student].filter(([n]) => !isRunningStat(n)).map(([, v]) => v);
  }

  /** Parameter counts: teacher (all values incl. BN statistics) and student trainable parameters. */
  parameterCounts(): { teacher: number; student: number } {
    return { teacher: countParams(this.teacher, (n) => !isRunningStat(n)), student: countParams(this.student, (n) => !isRunningStat(n)) };
  }

  /**
   * One optimisation step on a batch: teacher features (no gradient), student forward in training mode, loss
   * (eq. 10-11) + weight decay, optimizer update, then the student's running statistics and, with `eman`, the
   * teacher's statistics (eq. 6-7) follow the student's batch statistics; with `self_ema`, the teacher's own (momentum
   * per ModelConfig.emanSchedule at `opts.progress`, BatchNorms of ModelConfig.emanScales only).
   * @param x - [B, H, W, 3] normalised images.
   * @param teacherFeatures - the teacher's features of `x` computed earlier ({@link teacherFeatures}, one [B, h, w, C]
   *   per used layer; engine/teacherCache.ts), used instead of running the teacher; only for a fixed (`frozen_bn`)
   *   teacher. Not disposed here.
   * @returns the loss value (without weight decay).
   * @throws Error when `teacherFeatures` is given for a teacher whose statistics move.
   */
  trainStep(x: Tensor4D, optimizer: Optimizer, opts: StepOptions, teacherFeatures?: Tensor4D[]): number {
    if (teacherFeatures && this.config.teacherNorm !== 'frozen_bn') throw new Error(`trainStep: precomputed teacher features need a fixed teacher (frozen_bn), not ${this.config.teacherNorm}`);
    const tf = this.tf;
    const stats: BatchStats[] = [];
    const teacherStats: BatchStats[] = [];
    const vars = this.trainableVariables();
    let lossValue = 0;
    tf.tidy(() => {
      const ft = teacherFeatures ?? teacherForward(tf, this.teacher, x, this.config, this.config.teacherNorm === 'self_ema' ? teacherStats : undefined);
      const { value, grads } = tf.variableGrads(() => ntsLoss(tf, ft, studentForward(tf, this.student, x, this.config, true, stats), opts.lossReduction), vars);
      lossValue = value.dataSync()[0]!;
      if (opts.weightDecay > 0) for (const v of vars) grads[v.name] = tf.add(grads[v.name]!, tf.mul(opts.weightDecay, v)) as Tensor;
      optimizer.applyGradients(grads);
    });
    updateRunningStats(tf, this.student, stats);
    const { emanSchedule, emanScales } = this.config;
    const m = emanMomentumAt(this.config.emanMomentum, emanSchedule, opts.progress ?? 0);
    if (this.config.teacherNorm === 'eman') emanUpdate(tf, this.teacher, stats, m, emanScales);
    // self_ema: the same moving average, but of the teacher's own batch statistics (every BatchNorm pairs with itself).
    if (this.config.teacherNorm === 'self_ema') emanUpdate(tf, this.teacher, teacherStats, m, emanScales);
    for (const s of [...stats, ...teacherStats]) { s.mean.dispose(); s.variance.dispose(); }
    return lossValue;
  }

  /**
   * Teacher features of a batch (evaluation mode, no gradient): one [B, h, w, C] float32 tensor per used layer, in
   * ascending layer order; the caller disposes them. @param x - [B, H, W, 3] normalised images.
   */
  teacherFeatures(x: Tensor4D): Tensor4D[] {
    return this.tf.tidy(() => teacherForward(this.tf, this.teacher, x, this.config));
  }

  /**
   * Loss of a batch with both networks in evaluation mode (validation). @param x - [B, H, W, 3].
   * @param teacherFeatures - precomputed teacher features of `x` (as in {@link trainStep}); not disposed here.
   */
  evalLoss(x: Tensor4D, reduction: 'sum' | 'mean' = 'mean', teacherFeatures?: Tensor4D[]): number {
    const tf = this.tf;
    const v = tf.tidy(() => ntsLoss(tf, teacherFeatures ?? teacherForward(tf, this.teacher, x, this.config), studentForward(tf, this.student, x, this.config, false), reduction));
    const out = v.dataSync()[0]!;
    v.dispose();
    return out;
  }

  /**
   * Anomaly maps and image-level scores (eq. 12-13), both networks in evaluation mode.
   * @param x - [B, H, W, 3] normalised images. @returns tensors the caller disposes.
   */
  predict(x: Tensor4D): Prediction {
    const tf = this.tf;
    return tf.tidy(() => {
      const ft = teacherForward(tf, this.teacher, x, this.config);
      const fs = studentForward(tf, this.student, x, this.config, false);
      const { map, score } = anomalyMap(tf, ft, fs, [x.shape[1], x.shape[2]], this.config.fusion, this.config.sigma);
      return { maps: map, scores: score };
    });
  }

  /** Releases all variables. */
  dispose(): void {
    disposeParams(this.teacher);
    disposeParams(this.student);
  }
}

