/**
 * The job queue shared by `ntsnet submit`, `ntsnet worker` and `ntsnet jobs`: BullMQ on Redis. Job data holds only
 * absolute paths into a folder every worker sees under the same path (docs/deploy.md), and every job id is derived
 * from the request, so submitting the same request twice does not run it twice.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { JobsOptions } from 'bullmq';
import type { DatasetFlags } from '../data/flags.js';
import type { FolderSpec } from '../data/folder.js';
import type { RunConfig } from '../engine/config.js';
import type { MapFormat } from '../engine/inspect.js';

/** Default queue name (`--queue`). */
export const DEFAULT_QUEUE = 'ntsnet';
/** Default Redis URL: $NTSNET_REDIS, else a Redis on this machine's loopback interface. */
export const defaultRedisUrl = (): string => process.env.NTSNET_REDIS || 'redis://127.0.0.1:6379';

/** `fit` (one product): trains into `out`, replaced as a whole folder only when the job completes. */
export interface FitJobData {
  kind: 'fit';
  data: string | FolderSpec;
  out: string;
  config: RunConfig;
  /** Evaluate afterwards (results.json + metrics.md in the checkpoint folder), as `fit --test`. */
  test: boolean;
  force: boolean;
  skipBad: boolean;
  teacherWeights?: string;
  download: boolean;
  /** Folder-dataset flags (absolute paths) for the `test` step of a folder dataset. */
  datasetFlags?: DatasetFlags;
}

/** `test`: evaluates a checkpoint, writes results.json + metrics.md into `out`. */
export interface TestJobData {
  kind: 'test';
  checkpoint: string;
  data?: string[];
  normal?: string[];
  abnormal?: string[];
  masks?: string;
  maskSuffix?: string;
  split?: string;
  skipBad: boolean;
  out: string;
  batchSize?: number;
}

/** Settings shared by a chunked predict and its chunks (those of `ntsnet predict`). */
export interface PredictSettings {
  checkpoint: string;
  /** SHA-256 of the checkpoint's model.safetensors at submit time (a retrained checkpoint is a new request). */
  checkpointSha256: string;
  mapFormat: MapFormat;
  threshold?: number;
  pixelThreshold?: number;
  batchSize: number;
  skipBad: boolean;
  /** Scoring engine, as `ntsnet predict --engine` (default tfjs). */
  engine?: 'tfjs' | 'onnxruntime';
  /** ONNX model for the onnxruntime engine (default: model.onnx in the checkpoint folder, exported when missing). */
  onnx?: string;
  /** onnxruntime intra-op threads. */
  threads?: number;
}

/** One chunk of a chunked predict: inspects `files` into `chunkDir` (resumable, like `ntsnet predict`). */
export interface PredictChunkJobData extends PredictSettings {
  kind: 'predict-chunk';
  index: number;
  files: string[];
  /** Working folder of this chunk inside the parent's `workDir`. */
  chunkDir: string;
}

/** A chunked predict (parent job): runs when every chunk is done and merges them into `out`. */
export interface PredictJobData extends PredictSettings {
  kind: 'predict';
  input: string;
  root: string;
  /** Every image, in the order of `ntsnet predict`. */
  files: string[];
  chunks: number;
  out: string;
  /** Hidden folder inside `out` holding the chunks until the merge; removed by it. */
  workDir: string;
}

export type NtsJobData = FitJobData | TestJobData | PredictChunkJobData | PredictJobData;

/** What a job returns (stored in Redis, shown by `ntsnet jobs`). */
export interface NtsJobResult {
  summary: string;
  out?: string;
}

/** Progress reported by running jobs. */
export interface NtsJobProgress {
  done: number;
  total: number;
  unit: 'epochs' | 'images' | 'datasets' | 'chunks';
}

/** Job options: failed jobs retried only for transient errors (see worker.ts), finished ones kept 30 days. */
export const JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { age: 30 * 86400, count: 10000 },
  removeOnFail: { age: 30 * 86400, count: 10000 },
};

/** A job id from the request: `<kind>-<first 20 hex digits of SHA-256 of its canonical JSON>`. */
export function requestJobId(kind: string, request: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canonical(x)])) : v;
  return `${kind}-${createHash('sha256').update(JSON.stringify(canonical(request))).digest('hex').slice(0, 20)}`;
}

/**
 * Connects to Redis and checks that it answers.
 * @param forWorker BullMQ workers need `maxRetriesPerRequest: null` (they wait out Redis restarts).
 * @throws Error naming the URL and the fix when Redis cannot be reached.
 */
export async function connectRedis(url: string, forWorker = false): Promise<Redis> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--redis ${url} is not a URL. Use redis://HOST:PORT (e.g. redis://127.0.0.1:6379).`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error(`--redis ${url}: use a redis:// or rediss:// URL.`);
  const conn = new Redis(url, { maxRetriesPerRequest: forWorker ? null : 3, lazyConnect: true, retryStrategy: (n) => (n > 3 && !forWorker ? null : Math.min(1000, 100 * n)) });
  conn.on('error', () => {}); // reported by the connect below; later errors are retried by ioredis
  try {
    await conn.connect();
    await conn.ping();
  } catch (e) {
    conn.disconnect();
    throw new Error(`Cannot reach Redis at ${url}: ${(e as Error).message}. Start redis-server (e.g. 'redis-server --port 6379 --bind 127.0.0.1') or pass --redis URL / set NTSNET_REDIS.`);
  }
  return conn;
}

/** Folder (and list-file stem) of chunk `k` inside a predict's work folder. */
export function chunkName(k: number): string {
  return `chunk-${String(k).padStart(5, '0')}`;
}
