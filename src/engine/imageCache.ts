/**
 * Training and validation images streamed from a disk cache, so that memory is bounded by the batch, not by the
 * dataset: every image is decoded once (sharp, data/image.ts) to 8-bit RGB at the model size and appended to one
 * temporary file (`size * size * 3` bytes per image); a batch reads its records back and normalises them. The
 * result is bit-identical to decoding and normalising in memory ({@link loadImageSet}): the same 8-bit pixels go
 * through the same normalisation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { loadImageRgb8, normalizeImagenet } from '../data/image.js';
import type { NTSNet } from '../model/ntsnet.js';
import { chunks, type ImageSet } from './batches.js';
import { predictInto } from './score.js';
import type { TeacherFeatureCache } from './teacherCache.js';

/** A decoded image set on disk: [length] x [size, size, 3] uint8 records, read back per batch. */
export class DiskImageCache {
  private constructor(
    /** Model input size in pixels. */
    readonly size: number,
    /** Number of images. */
    readonly length: number,
    private readonly dir: string,
    private readonly fh: fsp.FileHandle,
  ) {}

  /** Bytes of one record. */
  get recordBytes(): number {
    return this.size * this.size * 3;
  }

  /**
   * Decodes `paths` (4 at a time) into a new cache file under `$NTSNET_CACHE_DIR` or the system temporary folder.
   * Peak memory: a few decoded images. @throws DataError naming a file that cannot be decoded (the cache is removed).
   */
  static async create(paths: readonly string[], size: number, onEach?: () => void): Promise<DiskImageCache> {
    const base = process.env.NTSNET_CACHE_DIR || tmpdir();
    let dir: string;
    try {
      dir = mkdtempSync(path.join(base, 'ntsnet-images-'));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message;
      throw new Error(`Cannot create the decoded-image cache in ${base} (${process.env.NTSNET_CACHE_DIR ? '$NTSNET_CACHE_DIR' : 'the system temporary folder'}): ${why}. Create the folder, point NTSNET_CACHE_DIR at a writable folder with room for ${paths.length} x ${size} x ${size} x 3 bytes, or unset it.`);
    }
    const fh = await fsp.open(path.join(dir, 'images.u8'), 'w+');
    const cache = new DiskImageCache(size, paths.length, dir, fh);
    const rec = size * size * 3;
    try {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < paths.length) {
          const i = next++;
          const img = await loadImageRgb8(paths[i]!, size);
          await fh.write(img.data, 0, rec, i * rec);
          onEach?.();
        }
      };
      await Promise.all(Array.from({ length: Math.min(4, paths.length) }, worker));
    } catch (e) {
      await cache.dispose();
      throw e;
    }
    return cache;
  }

  /** Normalised images `idx` as one buffer [idx.length, size, size, 3] float32 (ImageNet normalisation). */
  async read(idx: readonly number[]): Promise<Float32Array> {
    const rec = this.recordBytes;
    const raw = Buffer.alloc(rec);
    const out = new Float32Array(idx.length * rec);
    for (const [b, i] of idx.entries()) {
      if (!(i >= 0 && i < this.length)) throw new RangeError(`DiskImageCache.read: index ${i} outside 0..${this.length - 1}`);
      const { bytesRead } = await this.fh.read(raw, 0, rec, i * rec);
      if (bytesRead !== rec) throw new Error(`image cache ${this.dir} is truncated (record ${i}); was the temporary folder cleaned while ntsnet ran?`);
      normalizeImagenet(new Uint8Array(raw.buffer, raw.byteOffset, rec), out.subarray(b * rec, (b + 1) * rec));
    }
    return out;
  }

  /** Images `idx` as one batch tensor [B, size, size, 3] float32; the caller disposes it. */
  async batch(tf: Tf, idx: readonly number[]): Promise<Tensor4D> {
    return tf.tensor4d(await this.read(idx), [idx.length, this.size, this.size, 3]);
  }

  /** Images `idx` in memory as an {@link ImageSet} (for code that needs one; keep `idx` small). */
  async subset(idx: readonly number[]): Promise<ImageSet> {
    const all = await this.read(idx);
    const rec = this.recordBytes;
    return { size: this.size, images: idx.map((_, b) => all.slice(b * rec, (b + 1) * rec)) };
  }

  /** Closes and deletes the cache file. */
  async dispose(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Anomaly maps and image scores of a cached set, batch by batch (as {@link scoreImageSet} for an in-memory set).
 * @returns scores [N] float32 and, when `keepMaps`, maps [N * size * size] float32.
 */
export async function scoreCache(tf: Tf, model: NTSNet, cache: DiskImageCache, batchSize: number, keepMaps = false): Promise<{ scores: Float32Array; maps?: Float32Array }> {
  const n = cache.length, hw = cache.size * cache.size;
  const scores = new Float32Array(n);
  const maps = keepMaps ? new Float32Array(n * hw) : undefined;
  let at = 0;
  for (const idx of chunks([...Array(n).keys()], batchSize)) {
    at = predictInto(model, await cache.batch(tf, idx), scores, maps, at, hw);
  }
  return maps ? { scores, maps } : { scores };
}

/** Mean validation loss over a cached set (null when it is empty); `teacher`: the set's cached teacher features. */
export async function meanLossCache(tf: Tf, model: NTSNet, cache: DiskImageCache, batchSize: number, teacher?: TeacherFeatureCache): Promise<number | null> {
  if (cache.length === 0) return null;
  let sum = 0;
  for (const idx of chunks([...Array(cache.length).keys()], batchSize)) {
    const x = await cache.batch(tf, idx);
    const ft = await teacher?.batch(tf, idx);
    sum += model.evalLoss(x, 'mean', ft) * idx.length;
    x.dispose();
    for (const t of ft ?? []) t.dispose();
  }
  return sum / cache.length;
}
