import type { Tensor1D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { BatchStats } from './batchnorm.js';
import type { ParamMap } from './params.js';

/**
 * EMAN pairing rule: a teacher BatchNorm is paired with the student BatchNorm at the same path (e.g. `layer2.0.bn1`,
 * `layer3.0.downsample.1`, `bn1`) when both have the same channel count. Student BatchNorms with no teacher twin
 * (those inside CoT blocks, `...conv1.key.bn`) and teacher BatchNorms with no student twin (deeper trunks) are left
 * unpaired; an unpaired teacher BatchNorm keeps its pretrained statistics.
 * @returns the student statistics that have a teacher twin.
 */
export function emanPairs(teacher: ParamMap, stats: BatchStats[]): BatchStats[] {
  return stats.filter((s) => {
    const rm = teacher.get(`${s.name}.running_mean`);
    return rm !== undefined && rm.shape[0] === s.mean.shape[0];
  });
}

/**
 * Feature scale of a teacher BatchNorm path: the stem (`bn1`) and `layer1.*` are scale 1, `layerN.*` scale N.
 */
export function bnScale(name: string): number {
  const m = /^layer(\d+)\./.exec(name);
  return m ? Number(m[1]) : 1;
}

/**
 * Momentum of the teacher statistics at a point of training (ModelConfig.emanSchedule).
 * @param m - base momentum in [0, 1). @param progress - fraction of the optimiser steps done before this one, in [0, 1].
 * @returns m for `constant`; 1 - (1 - m)(cos(pi progress) + 1) / 2 for `cosine` (m at the start, 1 at the end).
 */
export function emanMomentumAt(m: number, schedule: 'constant' | 'cosine' | undefined, progress: number): number {
  if (schedule !== 'cosine') return m;
  const p = Math.min(Math.max(progress, 0), 1);
  return 1 - ((1 - m) * (Math.cos(Math.PI * p) + 1)) / 2;
}

/**
 * EMAN update (paper eq. 6-7, Cai et al. 2021): for each paired BatchNorm,
 *   mu_T  <- m * mu_T  + (1 - m) * mu_S
 *   var_T <- m * var_T + (1 - m) * var_S
 * where mu_S, var_S are the student's batch mean and biased batch variance (eq. 4-5) of this step. Affine parameters
 * are not touched. Evaluation uses the updated running statistics (eq. 8). With `scales`, only the BatchNorms of
 * those feature scales ({@link bnScale}) are updated.
 * @returns the number of BatchNorms updated.
 */
export function emanUpdate(tf: Tf, teacher: ParamMap, stats: BatchStats[], m: number, scales?: readonly number[]): number {
  const pairs = emanPairs(teacher, stats).filter((s) => !scales || scales.includes(bnScale(s.name)));
  tf.tidy(() => {
    for (const s of pairs) {
      const rm = teacher.get(`${s.name}.running_mean`)!;
      const rv = teacher.get(`${s.name}.running_var`)!;
      rm.assign(tf.add(tf.mul(m, rm), tf.mul(1 - m, s.mean)) as Tensor1D);
      rv.assign(tf.add(tf.mul(m, rv), tf.mul(1 - m, s.variance)) as Tensor1D);
    }
  });
  return pairs.length;
}

/**
 * PyTorch-style running statistics of the student's own BatchNorms (momentum 0.1, unbiased variance), used when the
 * student runs in evaluation mode.
 */
export function updateRunningStats(tf: Tf, student: ParamMap, stats: BatchStats[], momentum = 0.1): void {
  tf.tidy(() => {
    for (const s of stats) {
      if (s.runningUpdated) continue; // moved by the BatchNorm kernel itself (batchNormTrain)
      const rm = student.get(`${s.name}.running_mean`);
      const rv = student.get(`${s.name}.running_var`);
      if (!rm || !rv) continue;
      const unbiased = tf.mul(s.variance, s.count / Math.max(s.count - 1, 1));
      rm.assign(tf.add(tf.mul(1 - momentum, rm), tf.mul(momentum, s.mean)) as Tensor1D);
      rv.assign(tf.add(tf.mul(1 - momentum, rv), tf.mul(momentum, unbiased)) as Tensor1D);
    }
  });
}
