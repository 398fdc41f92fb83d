import type { Tensor1D, Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { batchNormEval, batchNormTrain, type BatchStats, type RunningStats } from './batchnorm.js';
import type { LayerId, ModelConfig } from './config.js';
import { cotForward, cotShapes } from './cot.js';
import { param, type ParamMap } from './params.js';
import { reluTrain } from './relu.js';
import { convTorch, trunkForward, trunkShapes, type TrunkOps } from './resnet.js';

/** Deepest requested layer. */
export function maxLayer(layers: readonly LayerId[]): LayerId {
  return Math.max(...layers) as LayerId;
}

/** Teacher parameter names and TF-layout shapes: torchvision ResNet trunk up to the deepest used layer. */
export function teacherShapes(cfg: ModelConfig): Map<string, number[]> {
  return trunkShapes(cfg.teacherDepth, maxLayer(cfg.layers));
}

/** Student parameter names and shapes: the same trunk with CoT blocks (`cot`) or plain 3x3 convs (`basic`). */
export function studentShapes(cfg: ModelConfig): Map<string, number[]> {
  if (cfg.studentBlock === 'basic') return trunkShapes(cfg.studentDepth, maxLayer(cfg.layers));
  return trunkShapes(cfg.studentDepth, maxLayer(cfg.layers), (s, n, i, o) => cotShapes(s, n, i, o, cfg.cot));
}

/** True for BatchNorm running statistics (never trained by the optimizer). */
export function isRunningStat(name: string): boolean {
  return name.endsWith('.running_mean') || name.endsWith('.running_var');
}

/**
 * Teacher forward pass (frozen; BatchNorm always normalises with its running statistics, which EMAN updates).
 * With `collect`, each BatchNorm's input batch mean and biased variance are pushed to it (kept tensors the caller
 * disposes) for the `self_ema` update; the features are the same either way.
 * @param x - [B, H, W, 3] normalised images. @returns features of `cfg.layers`, each [B, h, w, C].
 */
export function teacherForward(tf: Tf, p: ParamMap, x: Tensor4D, cfg: ModelConfig, collect?: BatchStats[]): Tensor4D[] {
  const ops: TrunkOps = {
    conv: (h, name, stride, pad) => convTorch(tf, h, param(p, `${name}.weight`), stride, pad),
    blockConv: (h, name, _i, _o, stride) => convTorch(tf, h, param(p, `${name}.weight`), stride, 1),
    norm: (h, name) => {
      if (collect) {
        const { mean, variance } = tf.moments(h, [0, 1, 2]);
        collect.push({ name, mean: tf.keep(mean as Tensor1D), variance: tf.keep(variance as Tensor1D), count: h.shape[0] * h.shape[1] * h.shape[2] });
      }
      return batchNormEval(tf, h, param(p, `${name}.weight`), param(p, `${name}.bias`), param(p, `${name}.running_mean`), param(p, `${name}.running_var`));
    },
  };
  return trunkForward(tf, x, ops, cfg.teacherDepth, cfg.layers);
}

/**
 * Student forward pass. In training mode each BatchNorm uses batch statistics and pushes them to `collect`
 * (for the student's running statistics and the teacher's EMAN update); in evaluation mode it uses running statistics.
 * @param x - [B, H, W, 3] normalised images. @returns features of `cfg.layers`, each [B, h, w, C].
 */
export function studentForward(tf: Tf, p: ParamMap, x: Tensor4D, cfg: ModelConfig, training: boolean, collect?: BatchStats[]): Tensor4D[] {
  // With collect (a training step), the kernel moves the running statistics itself (momentum 0.1, as updateRunningStats).
  const running = (name: string): RunningStats | undefined => {
    const mean = p.get(`${name}.running_mean`), variance = p.get(`${name}.running_var`);
    return collect && mean && variance ? { mean, variance, momentum: 0.1 } : undefined;
  };
  const norm = (h: Tensor4D, name: string): Tensor4D =>
    training
      ? batchNormTrain(tf, h, param<Tensor1D>(p, `${name}.weight`), param<Tensor1D>(p, `${name}.bias`), name, collect, running(name))
      : batchNormEval(tf, h, param(p, `${name}.weight`), param(p, `${name}.bias`), param(p, `${name}.running_mean`), param(p, `${name}.running_var`));
  const ctx = { weight: (n: string) => param<Tensor4D>(p, n), bias: (n: string) => param<Tensor1D>(p, n), norm };
  const ops: TrunkOps = {
    conv: (h, name, stride, pad) => convTorch(tf, h, param(p, `${name}.weight`), stride, pad),
    blockConv: (h, name, _i, outC, stride) =>
      cfg.studentBlock === 'cot' ? cotForward(tf, h, name, outC, stride, cfg.cot, ctx) : convTorch(tf, h, param(p, `${name}.weight`), stride, 1),
    norm,
    ...(training ? { relu: (h: Tensor4D) => reluTrain(tf, h) } : {}),
  };
  return trunkForward(tf, x, ops, cfg.studentDepth, cfg.layers);
}

/**
 * Random student initialisation as torchvision's ResNet: Kaiming-normal (fan_out, ReLU gain) convolution filters,
 * BatchNorm weight 1 / bias 0 / running mean 0 / running var 1, attention biases 0. Seeded: the same seed gives the
 * same weights. Running statistics are non-trainable variables, the rest trainable.
 */
let variableCounter = 0;

export function initParams(tf: Tf, shapes: Map<string, number[]>, seed: number): ParamMap {
  const p: ParamMap = new Map();
  let i = 0;
  for (const [name, shape] of shapes) {
    i++;
    const t = tf.tidy(() => {
      if (name.endsWith('.running_var') || (shape.length === 1 && name.endsWith('.weight'))) return tf.ones(shape);
      if (shape.length === 1) return tf.zeros(shape);
      const fanOut = shape[0]! * shape[1]! * shape[3]!;
      return tf.randomNormal(shape, 0, Math.sqrt(2 / fanOut), 'float32', (seed * 1000003 + i * 7919) % 2147483647);
    });
    // TF.js variable names must be unique per process; they play no part in the values.
    p.set(name, tf.variable(t, !isRunningStat(name), `${name}#${++variableCounter}`));
    t.dispose();
  }
  return p;
}
