import type { Tensor1D, Tensor3D, Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { layerDistance } from './loss.js';

/** Gaussian kernel size for a sigma: 2 * floor(4 sigma + 0.5) + 1 (33 for sigma 4), as anomalib's GaussianBlur2d. */
export function gaussianKernelSize(sigma: number): number {
  return 2 * Math.floor(4 * sigma + 0.5) + 1;
}

/** Normalised 1-D Gaussian weights of length `size`. */
export function gaussianKernel1d(sigma: number, size: number): Float32Array {
  const r = (size - 1) / 2;
  const w = new Float32Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) { w[i] = Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)); sum += w[i]!; }
  for (let i = 0; i < size; i++) w[i]! /= sum;
  return w;
}

/**
 * Separable Gaussian smoothing with reflect padding (paper eq. 13). The kernel is clipped so that the reflection
 * fits the map (radius <= size - 1).
 * @param m - [B, H, W, 1] float32. @param sigma - pixels; 0 returns the input unchanged. @returns [B, H, W, 1].
 */
export function gaussianBlur(tf: Tf, m: Tensor4D, sigma: number): Tensor4D {
  if (sigma <= 0) return m;
  const [, h, w] = m.shape;
  const radius = Math.min((gaussianKernelSize(sigma) - 1) / 2, h - 1, w - 1);
  const k = gaussianKernel1d(sigma, 2 * radius + 1);
  const padded = tf.mirrorPad(m, [[0, 0], [radius, radius], [radius, radius], [0, 0]], 'reflect');
  const ky = tf.tensor4d(k, [k.length, 1, 1, 1]);
  const kx = tf.tensor4d(k, [1, k.length, 1, 1]);
  return tf.conv2d(tf.conv2d(padded, ky, 1, 'valid'), kx, 1, 'valid');
}

/**
 * Anomaly map and image-level score (paper eq. 12-13): per-layer distance maps, bilinear upsampling to the input
 * size (half-pixel centres, as PyTorch's align_corners=False), fusion by `sum` (paper) or `product` (STFPM), then
 * Gaussian smoothing. The image score is the maximum of the map.
 * @param teacher - per-layer features [B, h_l, w_l, C_l]; @param student - same shapes.
 * @param size - output [H, W] in pixels.
 * @returns map [B, H, W] float32 (unitless squared distance) and score [B] float32.
 */
export function anomalyMap(
  tf: Tf, teacher: Tensor4D[], student: Tensor4D[], size: [number, number], fusion: 'sum' | 'product', sigma: number,
): { map: Tensor3D; score: Tensor1D } {
  let fused: Tensor4D | undefined;
  for (let l = 0; l < teacher.length; l++) {
    const d = tf.image.resizeBilinear(layerDistance(tf, teacher[l]!, student[l]!), size, false, true);
    fused = !fused ? d : ((fusion === 'sum' ? tf.add(fused, d) : tf.mul(fused, d)) as Tensor4D);
  }
  const smooth = gaussianBlur(tf, fused!, sigma);
  const map = tf.squeeze(smooth, [3]) as Tensor3D;
  return { map, score: tf.max(map, [1, 2]) as Tensor1D };
}
