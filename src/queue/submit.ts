/**
 * Enqueueing jobs (`ntsnet submit`) and reading their state (`ntsnet jobs`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { FlowProducer, Queue, type Job, type JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import { readCheckpointMeta, WEIGHTS_FILE } from '../engine/checkpoint.js';
import { collectInspectionInputs, assertPredictOutput } from '../engine/predict.js';
import { DEFAULT_QUEUE, JOB_OPTIONS, chunkName, requestJobId, type FitJobData, type NtsJobData, type NtsJobProgress, type NtsJobResult, type PredictChunkJobData, type PredictJobData, type PredictSettings, type TestJobData } from './jobs.js';


/** Outcome of a submit: the job id and whether it was added now or already known. */
export interface Submitted {
  id: string;
  added: boolean;
  /** State of the already known job (when `added` is false). */
  state?: string;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** A queue handle for submitting and listing. */
export class JobQueue {
  readonly queue: Queue<NtsJobData, NtsJobResult>;
  private flow: FlowProducer | undefined;

  constructor(private readonly connection: Redis, readonly name = DEFAULT_QUEUE) {
    this.queue = new Queue<NtsJobData, NtsJobResult>(name, { connection });
  }

  private async known(id: string): Promise<Submitted | undefined> {
    const j = await this.queue.getJob(id);
    return j ? { id, added: false, state: await j.getState() } : undefined;
  }

  /** Enqueues a fit (one product). Paths must be absolute and visible to every worker. */
  async submitFit(d: Omit<FitJobData, 'kind'>): Promise<Submitted> {
    const data: FitJobData = { kind: 'fit', ...d };
    const id = requestJobId('fit', data);
    const k = await this.known(id);
    if (k) return k;
    await this.queue.add('fit', data, { ...JOB_OPTIONS, jobId: id });
    return { id, added: true };
  }

  /** Enqueues a test of a checkpoint. */
  async submitTest(d: Omit<TestJobData, 'kind'>): Promise<Submitted> {
    const data: TestJobData = { kind: 'test', ...d };
    let sha: string | null = null;
    try {
      sha = await sha256File(path.join(d.checkpoint, WEIGHTS_FILE));
    } catch {
      /* missing checkpoint: the worker reports it (the job fails once with the error) */
    }
    const id = requestJobId('test', { ...data, checkpointSha256: sha });
    const k = await this.known(id);
    if (k) return k;
    await this.queue.add('test', data, { ...JOB_OPTIONS, jobId: id });
    return { id, added: true };
  }

  /**
   * Enqueues a predict over an image, folder or list, split into chunks of `chunkSize` images (rounded up to a
   * multiple of the batch size, so every forward pass has the images `ntsnet predict` would give it and results are
   * bit-identical); a parent job merges the chunks into `out` when all are done.
   * @throws Error (before anything is queued) for a missing input, a bad checkpoint or an output inside the input.
   */
  async submitPredict(o: { input: string; out: string; chunkSize: number } & Omit<PredictSettings, 'checkpointSha256' | 'batchSize'> & { batchSize?: number }): Promise<Submitted & { chunks: number; images: number }> {
    const input = path.resolve(o.input), out = path.resolve(o.out), checkpoint = path.resolve(o.checkpoint);
    const meta = await readCheckpointMeta(checkpoint);
    const inputs = await collectInspectionInputs(input);
    for (const d of inputs.guardDirs) await assertPredictOutput(out, d);
    const batchSize = o.batchSize ?? meta.config.train.evalBatchSize;
    const chunkSize = Math.ceil(Math.max(1, o.chunkSize) / batchSize) * batchSize;
    const settings: PredictSettings = {
      checkpoint, checkpointSha256: await sha256File(path.join(checkpoint, WEIGHTS_FILE)), mapFormat: o.mapFormat, threshold: o.threshold, pixelThreshold: o.pixelThreshold, batchSize, skipBad: o.skipBad,
      ...(o.engine && o.engine !== 'tfjs' ? { engine: o.engine } : {}), ...(o.onnx ? { onnx: path.resolve(o.onnx) } : {}), ...(o.threads ? { threads: o.threads } : {}),
    };
    if (o.onnx && o.engine !== 'onnxruntime') throw new Error('--onnx needs --engine onnxruntime');
    const id = requestJobId('predict', { ...settings, input, out, chunkSize, files: inputs.files });
    const chunks: string[][] = [];
    for (let i = 0; i < inputs.files.length; i += chunkSize) chunks.push(inputs.files.slice(i, i + chunkSize));
    const k = await this.known(id);
    if (k) return { ...k, chunks: chunks.length, images: inputs.files.length };
    const workDir = path.join(out, `.ntsnet-queue-${id}`);
    const parent: PredictJobData = { kind: 'predict', ...settings, input, root: inputs.root, files: inputs.files, chunks: chunks.length, out, workDir };
    this.flow ??= new FlowProducer({ connection: this.connection });
    await this.flow.add({
      name: 'predict', queueName: this.name, data: parent, opts: { ...JOB_OPTIONS, jobId: id },
      children: chunks.map((files, index): { name: string; queueName: string; data: PredictChunkJobData; opts: object } => ({
        name: 'predict-chunk', queueName: this.name,
        data: { kind: 'predict-chunk', ...settings, index, files, chunkDir: path.join(workDir, chunkName(index)) },
        opts: { ...JOB_OPTIONS, jobId: `${id}-c${index}`, failParentOnFailure: true },
      })),
    });
    return { id, added: true, chunks: chunks.length, images: inputs.files.length };
  }

  /** Every job the queue still holds, with its state. */
  async list(): Promise<JobInfo[]> {
    const states: JobType[] = ['active', 'waiting', 'waiting-children', 'prioritized', 'delayed', 'failed', 'completed'];
    const out: JobInfo[] = [];
    for (const state of states) for (const j of await this.queue.getJobs(state, 0, 999, true)) if (j) out.push(jobInfo(j as Job<NtsJobData, NtsJobResult>, state));
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** One job's state, or undefined when unknown. */
  async info(id: string): Promise<JobInfo | undefined> {
    const state = await this.queue.getJobState(id); // state first: a job read after it is final carries its result / reason
    const j = await this.queue.getJob(id);
    return j && state !== 'unknown' ? jobInfo(j, state) : undefined;
  }

  async close(): Promise<void> {
    await this.flow?.close();
    await this.queue.close();
  }
}

/** A job as listed by `ntsnet jobs`. */
export interface JobInfo {
  id: string;
  kind: string;
  state: string;
  progress?: NtsJobProgress;
  /** Times the job was started (a stalled job that was taken over counts twice). */
  started: number;
  failures: number;
  createdAt: number;
  finishedAt?: number;
  worker?: string;
  result?: string;
  error?: string;
}

function jobInfo(j: Job<NtsJobData, NtsJobResult>, state: string): JobInfo {
  const p = j.progress as unknown;
  return {
    id: j.id ?? '?', kind: j.data?.kind ?? j.name, state,
    ...(p && typeof p === 'object' && 'done' in p ? { progress: p as NtsJobProgress } : {}),
    started: j.attemptsStarted ?? 0, failures: j.attemptsMade ?? 0, createdAt: j.timestamp, finishedAt: j.finishedOn, worker: j.processedBy,
    result: j.returnvalue?.summary, error: j.failedReason,
  };
}

/** `ntsnet jobs` table. */
export function jobsTable(jobs: readonly JobInfo[]): string {
  const rows = [['ID', 'KIND', 'STATE', 'PROGRESS', 'STARTS', 'WORKER', 'RESULT / ERROR']];
  for (const j of jobs)
    rows.push([j.id, j.kind, j.state, j.progress ? `${j.progress.done}/${j.progress.total} ${j.progress.unit}` : '', String(j.started), j.worker ?? '', (j.error ?? j.result ?? '').split('\n')[0]!.slice(0, 120)]);
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(w[c]!))).join('  ')).join('\n');
}
