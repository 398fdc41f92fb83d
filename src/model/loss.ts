import type { Scalar, Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';

/**
 * Channel-wise L2 normalisation f / max(||f||_2, 1e-12) (as torch.nn.functional.normalize).
 * @param f - [B, h, w, C]. @returns [B, h, w, C].
 */
export function l2NormalizeChannels(tf: Tf, f: Tensor4D): Tensor4D {
  const n = tf.maximum(tf.sqrt(tf.sum(tf.square(f), 3, true)), 1e-12);
  return tf.div(f, n) as Tensor4D;
}

/**
 * Per-pixel distance of one layer: 0.5 * || t/||t|| - s/||s|| ||^2 over channels (paper eq. 10 and eq. 12).
 * @param t - teacher features [B, h, w, C]; @param s - student features [B, h, w, C]. @returns [B, h, w, 1] float32.
 */
export function layerDistance(tf: Tf, t: Tensor4D, s: Tensor4D): Tensor4D {
  return tf.mul(0.5, tf.sum(tf.square(tf.sub(l2NormalizeChannels(tf, t), l2NormalizeChannels(tf, s))), 3, true)) as Tensor4D;
}

/**
 * Training loss (paper eq. 10-11): per layer, the distance of {@link layerDistance} averaged over the h x w pixels;
 * summed over layers. Over the batch: `sum` (as STFPM's reference code, which its SGD lr 0.4 recipe assumes) or `mean`.
 * @param teacher - per-layer features [B, h_l, w_l, C_l]; @param student - the same shapes. @returns scalar float32.
 */
export function ntsLoss(tf: Tf, teacher: Tensor4D[], student: Tensor4D[], reduction: 'sum' | 'mean' = 'sum'): Scalar {
  if (teacher.length !== student.length) throw new Error(`ntsLoss: ${teacher.length} teacher layers vs ${student.length} student layers`);
  let total: Scalar | undefined;
  for (let l = 0; l < teacher.length; l++) {
    const perImage = tf.mean(layerDistance(tf, teacher[l]!, student[l]!), [1, 2, 3]);
    const layer = (reduction === 'sum' ? tf.sum(perImage) : tf.mean(perImage)) as Scalar;
    total = total ? (tf.add(total, layer) as Scalar) : layer;
  }
  return total!;
}
