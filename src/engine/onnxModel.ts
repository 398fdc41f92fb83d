import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { checkpointWeightsFile, readCheckpointMeta, type CheckpointMeta } from './checkpoint.js';
import { modelToOnnx, onnxCheckpointMismatch, onnxIdentity } from '../export/index.js';
import type { NTSNet } from '../model/ntsnet.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { InspectOptions } from './inspect.js';
import { OnnxDetector } from './onnxPredict.js';

/** Where a checkpoint's own ONNX export lives: `model.onnx` in its folder, or `<name>.onnx` beside a bare `.safetensors`. */
export function defaultOnnxFile(checkpoint: string): string {
  return checkpoint.endsWith('.safetensors') ? `${checkpoint.slice(0, -'.safetensors'.length)}.onnx` : path.join(checkpoint, 'model.onnx');
}

/**
 * The ONNX model for `--engine onnxruntime`: `--onnx FILE` when given, else `model.onnx` next to the checkpoint's
 * weights, exported from the loaded model when missing or older than the weights (shared by predict, serve and the
 * queue workers).
 * @returns the ONNX file's path.
 * @throws Error when `onnx` was exported from another checkpoint (identity in its metadata, export/onnx.ts).
 */
export async function onnxForCheckpoint(model: NTSNet, checkpoint: string, onnx: string | undefined, log: (l: string) => void, meta?: CheckpointMeta): Promise<string> {
  meta ??= (await readCheckpointMeta(checkpoint));
  if (onnx) {
    const st = statSync(onnx, { throwIfNoEntry: false });
    if (!st) throw new Error(`--onnx ${onnx} does not exist: give an ONNX file written by 'ntsnet export ${checkpoint} --format onnx', or leave --onnx out to use (and export) ${defaultOnnxFile(checkpoint)}`);
    if (!st.isFile()) throw new Error(`--onnx ${onnx} is a folder, not an ONNX file`);
    // An ONNX file from another checkpoint would be scored against THIS checkpoint's thresholds: refused.
    const why = onnxCheckpointMismatch(readFileSync(onnx), meta, onnx);
    if (why) throw new Error(`${why}. Its scores would be judged with the thresholds of ${checkpoint}. Export this checkpoint ('ntsnet export ${checkpoint} --format onnx --out FILE') or pass the checkpoint it came from.`);
    log(`engine onnxruntime: using ${onnx}`);
    return onnx;
  }
  const weights = checkpointWeightsFile(checkpoint);
  const file = defaultOnnxFile(checkpoint);
  const exists = existsSync(file);
  const why = exists ? onnxCheckpointMismatch(readFileSync(file), meta, file) : undefined;
  if (exists && !why && statSync(file).mtimeMs >= statSync(weights).mtimeMs) {
    log(`engine onnxruntime: using ${file}`);
    return file;
  }
  const replaced = exists ? (why ? (/not a readable ONNX/.test(why) ? 'a damaged file' : 'another checkpoint\'s export') : 'an export older than the weights') : undefined;
  await writeFileAtomic(file, modelToOnnx(model, { metadata: onnxIdentity(meta) }));
  log(`engine onnxruntime: exported the checkpoint to ${file}${replaced ? ` (replacing ${replaced} there)` : ''}`);
  return file;
}

/** An onnxruntime session for a checkpoint and the batch scorer that `inspectImages` runs it through. */
export interface OnnxScorer {
  file: string;
  det: OnnxDetector;
  /** Scores [n] and maps [n * S * S] of the first n images of a set (see InspectOptions.scorer). */
  scorer: NonNullable<InspectOptions['scorer']>;
}

/**
 * Opens the checkpoint's ONNX model ({@link onnxForCheckpoint}) on onnxruntime-node and wraps it as an
 * `inspectImages` scorer (what `ntsnet predict --engine onnxruntime` runs). The caller disposes `det`.
 * @throws Error when the graph's input size differs from the checkpoint's image size, or the file cannot be loaded.
 */
export async function openOnnxScorer(model: NTSNet, checkpoint: string, o: { onnx?: string; log: (l: string) => void; meta?: CheckpointMeta; threads?: number }): Promise<OnnxScorer> {
  return openOnnxFile(model, await onnxForCheckpoint(model, checkpoint, o.onnx, o.log, o.meta), o.threads);
}

/**
 * An onnxruntime session on an ONNX file already resolved for `model` (by {@link onnxForCheckpoint}), as a scorer.
 * @throws Error when the graph's input size differs from the model's image size, or the file cannot be loaded.
 */
export async function openOnnxFile(model: NTSNet, file: string, threads?: number): Promise<OnnxScorer> {
  const det = await OnnxDetector.load(file, { intraOpThreads: threads });
  const S = model.config.imageSize;
  if ((det.height && det.height !== S) || (det.width && det.width !== S)) {
    await det.dispose();
    throw new Error(`${file} takes ${det.height}x${det.width} images but the checkpoint's model size is ${S} px: export it from this checkpoint.`);
  }
  return {
    file, det,
    scorer: async (set, n, keepMaps) => {
      const x = new Float32Array(n * S * S * 3);
      for (let i = 0; i < n; i++) x.set(set.images[i]!, i * S * S * 3);
      const r = await det.run(x, n, S, S);
      return keepMaps ? r : { scores: r.scores };
    },
  };
}
