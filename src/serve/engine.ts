/**
 * The scoring engine behind `ntsnet serve`: one small interface ({@link InferenceEngine}) so that a faster engine can
 * slot in later without touching the HTTP layer. Two engines exist today: tfjs-node (`NTSNet.predict`) and
 * onnxruntime-node on the checkpoint's ONNX export (`ntsnet export --format onnx`, or `model.onnx` next to the weights).
 */
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { onnxForCheckpoint } from '../engine/onnxModel.js';
import { OnnxDetector } from '../engine/onnxPredict.js';
import type { NTSNet } from '../model/ntsnet.js';

/** Engine names as reported by `GET /v1/models` and in predictions. */
export type EngineName = 'tfjs-node' | 'onnxruntime-node';

/**
 * Which engine to use: `auto` = onnxruntime-node (the faster one at the service's batch sizes, docs/deploy.md),
 * exporting `model.onnx` into the checkpoint folder when missing or stale, and tfjs-node when that cannot be done.
 */
export type EngineChoice = 'auto' | 'tfjs' | 'onnxruntime';

/** Scores and maps of one batch: scores [n], maps [n * size * size] (image-major, row-major), float32. */
export interface EngineOutput {
  scores: Float32Array;
  maps: Float32Array;
}

/** A loaded model that scores batches of preprocessed images. */
export interface InferenceEngine {
  readonly name: EngineName;
  /** Square input size in pixels. */
  readonly imageSize: number;
  /**
   * Scores `n` ImageNet-normalised RGB images laid out [n, size, size, 3] (NHWC) in `batch`. Results do not depend on
   * which other images share the batch.
   */
  run(batch: Float32Array, n: number): Promise<EngineOutput>;
  /** Releases the engine's memory (tensors, sessions). */
  dispose(): Promise<void>;
  /** Why the engine can no longer score (its thread died), or undefined while it can. */
  readonly failure?: string;
  /** Live TF.js tensors the engine holds outside the caller's TF.js instance (an engine in a worker thread). */
  tensors?(): Promise<number>;
}

/** tfjs-node: NTSNet.predict; every tensor is disposed before returning. */
class TfjsEngine implements InferenceEngine {
  readonly name = 'tfjs-node' as const;
  readonly imageSize: number;
  constructor(private readonly tf: Tf, private readonly model: NTSNet) {
    this.imageSize = model.config.imageSize;
  }

  async run(batch: Float32Array, n: number): Promise<EngineOutput> {
    const s = this.imageSize;
    const x = this.tf.tensor4d(batch, [n, s, s, 3]) as Tensor4D;
    try {
      const p = this.model.predict(x);
      try {
        const [maps, scores] = await Promise.all([p.maps.data(), p.scores.data()]);
        return { maps: maps as Float32Array, scores: scores as Float32Array };
      } finally {
        p.maps.dispose();
        p.scores.dispose();
      }
    } finally {
      x.dispose();
    }
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}

/** onnxruntime-node on an exported graph. */
class OnnxEngine implements InferenceEngine {
  readonly name = 'onnxruntime-node' as const;
  constructor(private readonly det: OnnxDetector, readonly imageSize: number) {}

  run(batch: Float32Array, n: number): Promise<EngineOutput> {
    return this.det.run(batch, n, this.imageSize, this.imageSize);
  }

  dispose(): Promise<void> {
    return this.det.dispose();
  }
}

/** Options of {@link openEngine}. */
export interface OpenEngineOptions {
  /** onnxruntime intra-op threads (default: its choice). */
  threads?: number;
  log?: (line: string) => void;
}

/**
 * Wraps a loaded checkpoint model in the chosen engine. `tfjs` keeps the model; `onnxruntime` uses (or writes, as
 * `ntsnet predict --engine onnxruntime` does) `model.onnx` in the checkpoint folder and disposes the TF.js model;
 * `auto` does the same, and falls back to tfjs-node with a logged warning when the ONNX model cannot be written
 * (e.g. a read-only checkpoint folder) or loaded.
 * The engine owns `model` from here on (its {@link InferenceEngine.dispose} frees it).
 * @throws Error (`onnxruntime`) when the ONNX model does not match the checkpoint's image size or cannot be loaded.
 */
export async function openEngine(tf: Tf, model: NTSNet, checkpointDir: string, choice: EngineChoice, opts: OpenEngineOptions = {}): Promise<InferenceEngine> {
  if (choice === 'tfjs') return new TfjsEngine(tf, model);
  const log = opts.log ?? (() => {});
  try {
    const onnx = await onnxForCheckpoint(model, checkpointDir, undefined, log);
    const det = await OnnxDetector.load(onnx, { intraOpThreads: opts.threads });
    const s = model.config.imageSize;
    if ((det.height && det.height !== s) || (det.width && det.width !== s)) {
      await det.dispose();
      throw new Error(`${onnx} takes ${det.height}x${det.width} images but the checkpoint's model size is ${s} px: re-export it from this checkpoint ('ntsnet export ${checkpointDir} --format onnx --out ${onnx}').`);
    }
    model.dispose();
    return new OnnxEngine(det, s);
  } catch (e) {
    if (choice === 'auto') {
      log(`warning: ${checkpointDir}: serving with tfjs-node because the onnxruntime engine is not available: ${(e as Error).message.split('\n')[0]} (--engine onnxruntime makes this an error)`);
      return new TfjsEngine(tf, model);
    }
    model.dispose();
    throw e;
  }
}
