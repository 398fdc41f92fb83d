/**
 * `predict --engine auto` (the default): which scoring engine is faster for this checkpoint on this machine, measured
 * once and cached next to the checkpoint (docs/inspection.md, "Engine").
 */
import { readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import type { NTSNet } from '../model/ntsnet.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { checkpointWeightsFile, WEIGHTS_FILE, type CheckpointMeta } from './checkpoint.js';
import { onnxForCheckpoint, openOnnxFile, type OnnxScorer } from './onnxModel.js';
import { measureOnnxInference } from './onnxPredict.js';
import { measureInference } from './speed.js';

/** The engines `predict` can score with, by the name predictions.json records. */
export type EngineName = 'tfjs-node' | 'onnxruntime-node';

/** One measured comparison, as cached in `engine-choice.json`. */
export interface EngineMeasurement {
  /** What the figures are valid for: CPU model and cores, image size, batch size, onnxruntime threads. */
  key: string;
  /** Modification times (ms) of the weights and the ONNX file measured; a newer file invalidates the entry. */
  weightsMtimeMs: number;
  onnxMtimeMs: number;
  /** Images per second of each engine at this batch size (median of the timed passes, warm-up excluded). */
  imagesPerSecond: Record<EngineName, number>;
  chosen: EngineName;
  measuredAt: string;
}

/** The chosen engine, its open onnxruntime session when that is the one, and the line that says why. */
export interface EngineChoice {
  engine: EngineName;
  /** Set when `engine` is onnxruntime-node; the caller disposes `onnx.det`. */
  onnx?: OnnxScorer;
  reason: string;
}

/** The cache file of a checkpoint folder (or of a bare `.safetensors` file: `<name>.engine-choice.json` beside it). */
export function engineCacheFile(checkpoint: string): string {
  if (!checkpoint.endsWith('.safetensors')) return path.join(checkpoint, 'engine-choice.json');
  // A checkpoint folder's own model.safetensors shares the folder's cache (its ONNX export is the same model.onnx).
  if (path.basename(checkpoint) === WEIGHTS_FILE) return path.join(path.dirname(checkpoint), 'engine-choice.json');
  return `${checkpoint.slice(0, -'.safetensors'.length)}.engine-choice.json`;
}

const fmt = (m: EngineMeasurement): string => `onnxruntime-node ${m.imagesPerSecond['onnxruntime-node'].toFixed(1)} images/s, tfjs-node ${m.imagesPerSecond['tfjs-node'].toFixed(1)} images/s`;

function readCache(file: string): EngineMeasurement[] {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { measurements?: EngineMeasurement[] };
    return Array.isArray(v.measurements) ? v.measurements : [];
  } catch {
    return []; // absent or unreadable: measure again (the file is only a cache)
  }
}

/**
 * Picks the faster scoring engine for `model` at `batchSize`: the cached measurement in {@link engineCacheFile} when
 * it was made on this machine (CPU model, cores), for this image size, batch size and thread count and is newer than
 * the weights and the ONNX file; otherwise times both engines on random inputs (1 warm-up + 2 passes each, about two
 * seconds at 256 px on 2 cores), caches the result (skipped with a note when the folder is read-only) and uses it.
 * When the ONNX model cannot be exported or loaded, tfjs-node is used and the reason is given.
 * @param batchSize - images per pass of the coming run. @returns the engine, its session (onnxruntime) and a reason line.
 */
export async function chooseEngine(tf: Tf, model: NTSNet, checkpoint: string, o: { batchSize: number; threads?: number; meta?: CheckpointMeta; log: (l: string) => void; runs?: number }): Promise<EngineChoice> {
  const unusable = (e: unknown): EngineChoice => ({ engine: 'tfjs-node', reason: `tfjs-node (onnxruntime-node is not usable for this checkpoint: ${(e as Error).message.split('\n')[0]})` });
  let file: string;
  try {
    file = await onnxForCheckpoint(model, checkpoint, undefined, o.log, o.meta);
  } catch (e) {
    return unusable(e);
  }
  const S = model.config.imageSize, b = o.batchSize;
  const key = `${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length} | ${S} px | batch ${b} | threads ${o.threads ?? 'default'}`;
  const weightsMtimeMs = statSync(checkpointWeightsFile(checkpoint)).mtimeMs, onnxMtimeMs = statSync(file).mtimeMs;
  const cacheFile = engineCacheFile(checkpoint);
  const cached = readCache(cacheFile);
  const hit = cached.find((m) => m.key === key && m.weightsMtimeMs === weightsMtimeMs && m.onnxMtimeMs === onnxMtimeMs);
  // The onnxruntime session is opened only when it is measured or chosen.
  let onnx: OnnxScorer | undefined;
  if (!hit || hit.chosen === 'onnxruntime-node') {
    try {
      onnx = await openOnnxFile(model, file, o.threads);
    } catch (e) {
      return unusable(e);
    }
  }
  let m: EngineMeasurement;
  let how: string;
  if (hit) {
    m = hit;
    how = `measured ${hit.measuredAt.slice(0, 10)}, cached in ${cacheFile}`;
  } else {
    const runs = o.runs ?? 2;
    const ort = (await measureOnnxInference(onnx!.det, S, b, runs, 1)).imagesPerSecond;
    const tfjs = measureInference(tf, model, b, runs, 1).imagesPerSecond;
    m = { key, weightsMtimeMs, onnxMtimeMs, imagesPerSecond: { 'tfjs-node': tfjs, 'onnxruntime-node': ort }, chosen: ort >= tfjs ? 'onnxruntime-node' : 'tfjs-node', measuredAt: new Date().toISOString() };
    try {
      await writeJsonAtomic(cacheFile, { format: 'ntsnet-engine-choice', version: 1, measurements: [...cached.filter((c) => c.key !== key), m] });
      how = `measured now, cached in ${cacheFile}`;
    } catch (e) {
      how = `measured now; not cached (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
  }
  const reason = `${m.chosen} (faster at batch ${b}, ${S} px on this machine: ${fmt(m)}; ${how}; --engine tfjs|onnxruntime to choose)`;
  if (m.chosen === 'onnxruntime-node') return { engine: m.chosen, onnx, reason };
  await onnx?.det.dispose();
  return { engine: m.chosen, reason };
}
