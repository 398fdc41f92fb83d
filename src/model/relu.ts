import type { Tensor, Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { floatTypeAttr, nativeBackend } from '../backend/native.js';

/**
 * ReLU for training: max(x, 0) forward, with TensorFlow's fused `ReluGrad` kernel (dy where y > 0, else 0) as its
 * gradient on the native backend. tfjs's own ReLU gradient is dy * step(x), which tfjs-node runs as a Step kernel plus
 * a Select, each a full pass over the tensor: 43 % of a training step's kernel time at 128 px, batch 16
 * (docs/results, speed profile). Elsewhere it is plain tf.relu. Same values as tf.relu and its gradient (also at 0).
 * @param x - [B, H, W, C] float32. @returns [B, H, W, C] float32.
 */
export function reluTrain(tf: Tf, x: Tensor4D): Tensor4D {
  const b = nativeBackend(tf);
  if (!b) return tf.relu(x);
  const op = tf.customGrad((...args: unknown[]) => {
    const [xi, save] = args as [Tensor4D, (t: Tensor[]) => void];
    const y = tf.relu(xi);
    save([y]);
    return {
      value: y,
      // ReluGrad(gradients, features) = gradients * (features > 0); the output is > 0 exactly where the input is.
      gradFunc: (dy: Tensor, saved: Tensor[]) => b.executeMultipleOutputs('ReluGrad', [floatTypeAttr(b)], [dy, saved[0]!], 1)[0]!,
    };
  });
  return op(x) as Tensor4D;
}
