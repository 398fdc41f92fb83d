/**
 * Teacher features computed once per image and streamed from a disk cache during training.
 *
 * With the default `frozen_bn` teacher norm the teacher never changes and training images are not augmented, so an
 * image's teacher features are the same in every epoch: recomputing them is a fifth of a training step (the teacher's
 * forward pass, docs/results speed profile). They are computed once, in batches, and written as float32 records to a
 * temporary file (`bytesPerImage` each: the features of every used layer of one image, NHWC, layer after layer), so
 * memory stays bounded by the batch as with the decoded-image cache. The values are the teacher's own forward pass:
 * a step with cached features is the step without them (up to the summation order of a differently-sized batch).
 */
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { ModelConfig } from '../model/config.js';
import { STAGES } from '../model/resnet.js';
import type { NTSNet } from '../model/ntsnet.js';
import { chunks } from './batches.js';
import type { DiskImageCache } from './imageCache.js';

/**
 * Largest cache written (bytes): `$NTSNET_TEACHER_CACHE_GB` GB (default 8), and at most half the free space of the
 * cache folder (`$NTSNET_CACHE_DIR` or the system temporary folder); above it the teacher runs in every step.
 */
export function teacherCacheLimit(): number {
  const limit = teacherCacheSetting() * 1e9;
  try {
    const st = statfsSync(process.env.NTSNET_CACHE_DIR || tmpdir());
    return Math.min(limit, (st.bavail * st.bsize) / 2);
  } catch {
    return limit; // the cache folder's own error comes when it is created
  }
}

/**
 * `$NTSNET_TEACHER_CACHE_GB` as a number of GB (default 8).
 * @throws Error naming the variable when it is set to something that is not a number >= 0.
 */
export function teacherCacheSetting(): number {
  const raw = process.env.NTSNET_TEACHER_CACHE_GB;
  if (raw === undefined || raw.trim() === '') return 8;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`NTSNET_TEACHER_CACHE_GB=${raw} is not a size in GB: set a number >= 0 (0 turns the teacher-feature cache off), or unset it for the default 8.`);
  return v;
}

/** Shapes [h, w, C] of the teacher features of one image, per used layer (layer l: S / 2^(l+1), the stage's channels). */
export function teacherFeatureShapes(cfg: ModelConfig): [number, number, number][] {
  return [...cfg.layers].sort().map((l) => {
    const side = cfg.imageSize / 2 ** (l + 1);
    return [side, side, STAGES[l - 1]!.channels];
  });
}

/** Teacher features of a fixed image set on disk, read back per batch. */
export class TeacherFeatureCache {
  private constructor(
    readonly length: number,
    private readonly shapes: [number, number, number][],
    private readonly dir: string,
    private readonly fh: fsp.FileHandle,
  ) {}

  /** Values of one image (all layers). */
  get recordValues(): number {
    return this.shapes.reduce((a, [h, w, c]) => a + h * w * c, 0);
  }

  /** Bytes of one image's record for a model config. */
  static bytesPerImage(cfg: ModelConfig): number {
    return teacherFeatureShapes(cfg).reduce((a, [h, w, c]) => a + h * w * c, 0) * 4;
  }

  /**
   * Computes the teacher features of every image of `images` (batches of `batchSize`) into a new cache file under
   * `$NTSNET_CACHE_DIR` or the system temporary folder.
   * @throws Error when the model's teacher is not fixed (only `frozen_bn` teachers can be cached) or the folder
   *   cannot be created (named, with the fix).
   */
  static async create(tf: Tf, model: NTSNet, images: DiskImageCache, batchSize: number): Promise<TeacherFeatureCache> {
    if (model.config.teacherNorm !== 'frozen_bn') throw new Error(`teacher features can only be cached for a fixed teacher (teacherNorm frozen_bn), not ${model.config.teacherNorm}`);
    const base = process.env.NTSNET_CACHE_DIR || tmpdir();
    let dir: string;
    try {
      dir = mkdtempSync(path.join(base, 'ntsnet-teacher-'));
    } catch (e) {
      throw new Error(`Cannot create the teacher-feature cache in ${base}: ${(e as Error).message}. Point NTSNET_CACHE_DIR at a writable folder, or set NTSNET_TEACHER_CACHE_GB=0 to run the teacher in every step instead.`);
    }
    const fh = await fsp.open(path.join(dir, 'teacher.f32'), 'w+');
    const cache = new TeacherFeatureCache(images.length, teacherFeatureShapes(model.config), dir, fh);
    try {
      const rec = cache.recordValues;
      for (const idx of chunks([...Array(images.length).keys()], batchSize)) {
        const x = await images.batch(tf, idx);
        const feats = model.teacherFeatures(x);
        x.dispose();
        const data = feats.map((f) => f.dataSync() as Float32Array);
        for (const f of feats) f.dispose();
        const buf = new Float32Array(idx.length * rec);
        for (let b = 0; b < idx.length; b++) {
          let at = b * rec;
          for (const [l, [h, w, c]] of cache.shapes.entries()) {
            const n = h * w * c;
            buf.set(data[l]!.subarray(b * n, (b + 1) * n), at);
            at += n;
          }
        }
        // Batches are consecutive images, so a batch is one contiguous write.
        await fh.write(new Uint8Array(buf.buffer), 0, buf.byteLength, idx[0]! * rec * 4);
      }
    } catch (e) {
      await cache.dispose();
      throw e;
    }
    return cache;
  }

  /** Teacher features of images `idx`: one [B, h, w, C] float32 tensor per used layer (ascending); the caller disposes them. */
  async batch(tf: Tf, idx: readonly number[]): Promise<Tensor4D[]> {
    const rec = this.recordValues;
    const raw = new Float32Array(rec);
    const layers = this.shapes.map(([h, w, c]) => new Float32Array(idx.length * h * w * c));
    for (const [b, i] of idx.entries()) {
      if (!(i >= 0 && i < this.length)) throw new RangeError(`TeacherFeatureCache.batch: index ${i} outside 0..${this.length - 1}`);
      const { bytesRead } = await this.fh.read(new Uint8Array(raw.buffer), 0, rec * 4, i * rec * 4);
      if (bytesRead !== rec * 4) throw new Error(`teacher-feature cache ${this.dir} is truncated (record ${i}); was the temporary folder cleaned while ntsnet ran?`);
      let at = 0;
      for (const [l, [h, w, c]] of this.shapes.entries()) {
        const n = h * w * c;
        layers[l]!.set(raw.subarray(at, at + n), b * n);
        at += n;
      }
    }
    return layers.map((d, l) => tf.tensor4d(d, [idx.length, ...this.shapes[l]!]));
  }

  /** Closes and deletes the cache file. */
  async dispose(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
