import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { loadImage } from '../data/image.js';
import { mapLimit } from '../util/concurrency.js';

/** Decoded, normalised images kept in memory: [N] x ([size, size, 3] float32). */
export interface ImageSet {
  size: number;
  images: Float32Array[];
}

/** Decodes and normalises every image once (sharp; see data/image.ts). */
export async function loadImageSet(paths: readonly string[], size: number, onEach?: () => void): Promise<ImageSet> {
  const images = await mapLimit(paths, 4, async (p) => {
    const img = await loadImage(p, size);
    onEach?.();
    return img;
  });
  return { size, images };
}

/** Stacks images `idx` of a set into one batch tensor [B, size, size, 3] float32. */
export function toBatch(tf: Tf, set: ImageSet, idx: readonly number[]): Tensor4D {
  const s = set.size;
  const buf = new Float32Array(idx.length * s * s * 3);
  idx.forEach((i, b) => buf.set(set.images[i]!, b * s * s * 3));
  return tf.tensor4d(buf, [idx.length, s, s, 3]);
}

/** Splits 0..n-1 (or a given order) into consecutive chunks of at most `size`. */
export function chunks(order: readonly number[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += size) out.push(order.slice(i, i + size));
  return out;
}
