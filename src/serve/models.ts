/**
 * The models a service holds: checkpoints loaded by name, each with its thresholds, its engine and its micro-batcher.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync, existsSync, createReadStream } from 'node:fs';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { loadCheckpoint, readCheckpointMeta, WEIGHTS_FILE, type CheckpointMeta } from '../engine/checkpoint.js';
import { effectiveThresholds, type EffectiveThresholds } from '../engine/inspect.js';
import { MicroBatcher, type BatcherOptions } from './batcher.js';
import { openEngine, type EngineChoice, type InferenceEngine } from './engine.js';
import { ThreadedEngine } from './threadedEngine.js';

/** A model name in URLs: letters, digits, `.`, `_`, `-` (1-64 characters). */
export const MODEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** One served checkpoint. */
export interface ServedModel {
  name: string;
  /** Absolute checkpoint folder. */
  dir: string;
  meta: CheckpointMeta;
  thresholds: EffectiveThresholds;
  /** SHA-256 of model.safetensors. */
  sha256: string;
  engine: InferenceEngine;
  batcher: MicroBatcher;
}

/** A checkpoint to serve under a name. */
export interface ModelSpec {
  name: string;
  dir: string;
}

/**
 * Names checkpoint folders: `--checkpoint DIR...` are named by their folder name; `--models DIR` contributes every
 * sub-folder holding a model.safetensors, named by the sub-folder.
 * @throws Error for a missing folder, a bad or duplicate name, or nothing to serve.
 */
export function modelSpecs(checkpoints: readonly string[], modelsDir?: string): ModelSpec[] {
  const specs: ModelSpec[] = checkpoints.map((d) => ({ name: path.basename(path.resolve(d)), dir: path.resolve(d) }));
  if (modelsDir) {
    const root = path.resolve(modelsDir);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`--models ${modelsDir} is not a folder. Pass a folder holding one checkpoint folder per model.`);
    const subs = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.') && existsSync(path.join(root, e.name, WEIGHTS_FILE)));
    if (!subs.length) throw new Error(`--models ${modelsDir} holds no checkpoint folders (sub-folders with ${WEIGHTS_FILE}, written by 'ntsnet fit').`);
    for (const e of subs.sort((a, b) => a.name.localeCompare(b.name))) specs.push({ name: e.name, dir: path.join(root, e.name) });
  }
  if (!specs.length) throw new Error('Nothing to serve: pass --checkpoint DIR... (folders written by `ntsnet fit`) or --models DIR (one checkpoint folder per model).');
  const seen = new Map<string, string>();
  for (const s of specs) {
    if (!MODEL_NAME_RE.test(s.name)) throw new Error(`Model name '${s.name}' (from ${s.dir}) is not usable in a URL: rename the folder to letters, digits, '.', '_' or '-'.`);
    const prev = seen.get(s.name);
    if (prev) throw new Error(`Two models are named '${s.name}': ${prev} and ${s.dir}. Rename one of the folders.`);
    seen.set(s.name, s.dir);
  }
  return specs;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Options of {@link loadModels}. */
export interface LoadModelsOptions {
  engine: EngineChoice;
  batching: BatcherOptions;
  threads?: number;
  /**
   * Run each model's engine in a worker thread (default true), so that the HTTP thread keeps receiving and decoding
   * requests during a forward pass (see {@link ThreadedEngine}); false runs it on the calling thread.
   */
  thread?: boolean;
  log?: (line: string) => void;
}

/** The checkpoint's metadata, its thresholds and its engine, in a worker thread or on this one. */
async function open(tf: Tf, dir: string, opts: LoadModelsOptions): Promise<{ meta: CheckpointMeta; thresholds: EffectiveThresholds; engine: InferenceEngine }> {
  const thresholdsOf = (meta: CheckpointMeta): EffectiveThresholds => {
    try {
      return effectiveThresholds(meta);
    } catch (e) {
      throw new Error(`${dir}: ${(e as Error).message}`);
    }
  };
  if (opts.thread === false) {
    const { model, meta } = await loadCheckpoint(tf, dir);
    let thresholds: EffectiveThresholds;
    try {
      thresholds = thresholdsOf(meta);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { meta, thresholds, engine: await openEngine(tf, model, dir, opts.engine, { threads: opts.threads, log: opts.log }) };
  }
  // Checked before the thread loads the weights: a checkpoint without usable thresholds is refused at once.
  const meta = await readCheckpointMeta(dir);
  const thresholds = thresholdsOf(meta);
  return { meta, thresholds, engine: await ThreadedEngine.open({ checkpointDir: dir, choice: opts.engine, threads: opts.threads }, opts.log) };
}

/** Batch sizes run once at load: all of 1..maxBatch up to 16, beyond that powers of two and maxBatch. */
export function warmUpSizes(maxBatch: number): number[] {
  const out = new Set<number>();
  for (let n = 1; n <= Math.min(maxBatch, 16); n++) out.add(n);
  for (let n = 32; n < maxBatch; n *= 2) out.add(n);
  out.add(maxBatch);
  return [...out];
}

/**
 * Loads every checkpoint with its engine and a micro-batcher.
 * @throws Error naming the checkpoint when one cannot be loaded (the ones already loaded are released).
 */
export async function loadModels(tf: Tf, specs: readonly ModelSpec[], opts: LoadModelsOptions): Promise<Map<string, ServedModel>> {
  const out = new Map<string, ServedModel>();
  try {
    for (const s of specs) {
      const { meta, thresholds, engine } = await open(tf, s.dir, opts);
      // Warm-up: the first pass of each batch shape is 30-100 % slower (kernel selection), which would land on the
      // latency tail of the first requests; every size up to --max-batch is run once before the first request.
      const px = engine.imageSize * engine.imageSize * 3;
      try {
        for (const n of warmUpSizes(opts.batching.maxBatch)) await engine.run(new Float32Array(n * px), n);
      } catch (e) {
        await engine.dispose();
        throw new Error(`${s.dir}: the ${engine.name} engine failed on a test batch: ${(e as Error).message}`);
      }
      const batcher = new MicroBatcher(engine, opts.batching);
      out.set(s.name, { name: s.name, dir: s.dir, meta, thresholds, sha256: await sha256File(path.join(s.dir, WEIGHTS_FILE)), engine, batcher });
      opts.log?.(`model ${s.name}: ${s.dir} (${meta.config.model.imageSize} px, engine ${engine.name}, image threshold ${thresholds.image.toPrecision(6)})`);
    }
  } catch (e) {
    for (const m of out.values()) await m.engine.dispose();
    throw e;
  }
  return out;
}
