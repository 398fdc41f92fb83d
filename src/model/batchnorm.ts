import type { Tensor, Tensor1D, Tensor4D, Variable } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { floatTypeAttr, nativeBackend, type NativeBackend } from '../backend/native.js';

/** BatchNorm epsilon of torchvision's ResNet (PyTorch default). */
export const BN_EPS = 1e-5;

/** Batch statistics of one training-mode BatchNorm call, kept for EMAN and running-stat updates. */
export interface BatchStats {
  /** BatchNorm path, e.g. `layer2.0.bn1`. */
  name: string;
  /** Batch mean per channel, [C] float32. */
  mean: Tensor1D;
  /** Biased batch variance per channel (divided by N*H*W, paper eq. 4), [C] float32. */
  variance: Tensor1D;
  /** Number of values per channel the statistics were computed over (N*H*W). */
  count: number;
  /** True when the BatchNorm kernel has already moved the layer's running statistics (see {@link batchNormTrain}). */
  runningUpdated?: boolean;
}

/** Running statistics a training-mode BatchNorm moves itself: r = (1 - momentum) r + momentum * batch statistic (PyTorch's rule). */
export interface RunningStats {
  mean: Variable;
  variance: Variable;
  momentum: number;
}

/** Attributes of FusedBatchNormV3 (with `avgFactor`, its exponential_avg_factor) or, without, of FusedBatchNormGradV2. */
function attrs(b: NativeBackend, training: boolean, avgFactor?: number): unknown[] {
  return [
    floatTypeAttr(b, 'T'),
    floatTypeAttr(b, 'U'),
    { name: 'epsilon', type: b.binding.TF_ATTR_FLOAT, value: BN_EPS },
    ...(avgFactor === undefined ? [] : [{ name: 'exponential_avg_factor', type: b.binding.TF_ATTR_FLOAT, value: avgFactor }]),
    { name: 'data_format', type: b.binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.binding.TF_ATTR_BOOL, value: training },
  ];
}

/**
 * Training-mode BatchNorm (normalise with the batch statistics), y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * differentiable with respect to x, gamma and beta.
 *
 * On the native backend it runs TensorFlow's fused `FusedBatchNormV3` kernel with `FusedBatchNormGradV2` as its
 * gradient (the composite moments + batchNorm version costs about two thirds of a training step on CPU, see
 * shared/notes/tfjs-node-offline.md); elsewhere it falls back to `tf.moments` + `tf.batchNorm`.
 *
 * @param x - [B, H, W, C] float32.
 * @param gamma - [C] scale; @param beta - [C] offset.
 * @param collect - receives the batch mean and the biased batch variance (both [C], kept: the caller disposes them).
 * @param running - on the native backend, the kernel also moves these running statistics (its
 *   `exponential_avg_factor`: r_mean = (1 - m) r_mean + m mean, r_var = (1 - m) r_var + m var * n / (n - 1), as
 *   updateRunningStats in eman.ts), saving a training step a hundred small ops; the collected entry says so.
 * @returns y, [B, H, W, C] float32.
 */
export function batchNormTrain(tf: Tf, x: Tensor4D, gamma: Tensor1D, beta: Tensor1D, name: string, collect?: BatchStats[], running?: RunningStats): Tensor4D {
  const count = x.shape[0] * x.shape[1] * x.shape[2];
  const b = nativeBackend(tf);
  if (!b) {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    if (collect) collect.push({ name, mean: tf.keep(mean.clone() as Tensor1D), variance: tf.keep(variance.clone() as Tensor1D), count });
    return tf.batchNorm4d(x, mean as Tensor1D, variance as Tensor1D, beta, gamma, BN_EPS);
  }
  const op = tf.customGrad((...args: unknown[]) => {
    const [xi, g, o, save] = args as [Tensor4D, Tensor1D, Tensor1D, (t: Tensor[]) => void];
    const c = xi.shape[3];
    const zeros = tf.zeros([c]);
    const inMean = running?.mean ?? zeros, inVar = running?.variance ?? zeros;
    const outs = b.executeMultipleOutputs('FusedBatchNormV3', attrs(b, true, running?.momentum ?? 1), [xi, g, o, inMean, inVar], 6);
    const [y, newMean, newVar, mean, biasedVar] = outs as [Tensor4D, Tensor1D, Tensor1D, Tensor1D, Tensor1D, Tensor];
    if (running) {
      running.mean.assign(newMean);
      running.variance.assign(newVar);
    }
    if (collect) collect.push({ name, mean: tf.keep(mean.clone()), variance: tf.keep(biasedVar.clone()), count, runningUpdated: !!running });
    save([xi, g, mean, biasedVar]);
    return {
      value: y,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sx, sg, sm, sv] = saved as [Tensor4D, Tensor1D, Tensor1D, Tensor1D];
        const grads = b.executeMultipleOutputs('FusedBatchNormGradV2', attrs(b, true), [dy, sx, sg, sm, sv], 5);
        grads[3]!.dispose();
        grads[4]!.dispose();
        return [grads[0]!, grads[1]!, grads[2]!];
      },
    };
  });
  return op(x, gamma, beta) as Tensor4D;
}

/**
 * Evaluation-mode BatchNorm with fixed statistics: y = (x - mean) / sqrt(var + eps) * gamma + beta.
 * @param x - [B, H, W, C]; other arguments [C]. @returns [B, H, W, C] float32.
 */
export function batchNormEval(tf: Tf, x: Tensor4D, gamma: Tensor1D, beta: Tensor1D, mean: Tensor1D, variance: Tensor1D): Tensor4D {
  return tf.batchNorm4d(x, mean, variance, beta, gamma, BN_EPS);
}
