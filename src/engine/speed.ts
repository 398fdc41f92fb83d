import type { Tf } from '../backend/index.js';
import type { NTSNet } from '../model/ntsnet.js';
import { quantile } from './threshold.js';

/** Inference throughput of one batch size. */
export interface SpeedResult {
  batchSize: number;
  /** Median over `runs` timed runs (after `warmup` untimed runs) of images per second, full predict (maps + scores, read back). */
  imagesPerSecond: number;
  medianMsPerBatch: number;
  /** 99th percentile of the milliseconds of one batch (an image's latency is its batch's time). */
  p99MsPerBatch: number;
  runs: number;
}

/**
 * Times `call` `runs` times after `warmup` untimed calls. @returns the milliseconds of each timed call.
 */
export async function timeRuns(call: () => unknown, runs: number, warmup: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await call();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return times;
}

/** Summary of timed batches (milliseconds each): median throughput and the median / p99 batch time. */
export function speedOf(batchSize: number, times: readonly number[]): SpeedResult {
  const med = quantile(times, 0.5);
  return { batchSize, imagesPerSecond: (batchSize * 1000) / med, medianMsPerBatch: med, p99MsPerBatch: quantile(times, 0.99), runs: times.length };
}

/**
 * Measures inference images per second of {@link NTSNet.predict} on random inputs at the model's image size,
 * warm-up excluded, median of several runs.
 */
export function measureInference(tf: Tf, model: NTSNet, batchSize: number, runs = 5, warmup = 2): SpeedResult {
  const s = model.config.imageSize;
  const x = tf.randomNormal([batchSize, s, s, 3], 0, 1, 'float32', 7) as import('@tensorflow/tfjs-node').Tensor4D;
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    const p = model.predict(x);
    p.maps.dataSync();
    p.scores.dataSync();
    p.maps.dispose(); p.scores.dispose();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  x.dispose();
  return speedOf(batchSize, times);
}
