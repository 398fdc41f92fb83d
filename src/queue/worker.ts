/**
 * `ntsnet worker`: runs queued jobs (fit, test, chunked predict) with the same engine functions as the verbs
 * (processor.ts, in a child process so that TF.js never blocks the lock renewals of this process).
 *
 * Faults: a worker that dies mid-job (SIGKILL, power loss) stops renewing its job's lock; another worker's stalled-job
 * check puts the job back in the queue and it is run again. Every job is safe to run again:
 * - fit trains into a hidden staging folder next to `out` that replaces `out` in one rename when the job completes
 *   (killed attempts' staging folders are deleted by the next attempt), so `out` never holds a partial checkpoint;
 * - a predict chunk resumes from its journal (engine/inspect.ts), so no image is predicted twice;
 * - the merge of a chunked predict moves finished files and writes predictions.csv / .json atomically last, then
 *   deletes the chunks.
 * A job that fails because of its input (missing data, bad checkpoint, ...) fails at once with that error; only
 * transient system errors (disk full, I/O, too many open files, ...) are retried (JOB_OPTIONS.attempts).
 */
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { DEFAULT_QUEUE, connectRedis, type NtsJobData, type NtsJobResult } from './jobs.js';

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  redis: string;
  queue?: string;
  /** Jobs run at the same time by this worker, each in its own child process (default 1). */
  concurrency?: number;
  /** Job lock time in ms (default 30000): a job whose worker has not renewed its lock for this long is stalled. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs, in ms (default 30000). */
  stalledIntervalMs?: number;
  /** Times a job may stall (its worker died) and still be run again (default 3). */
  maxStalledCount?: number;
  log?: (line: string) => void;
}

/** A running worker. */
export interface RunningWorker {
  worker: Worker<NtsJobData, NtsJobResult>;
  /** Finishes the running jobs, then disconnects. */
  close(): Promise<void>;
}

/** The compiled processor file run in the child processes. */
export const PROCESSOR_FILE = fileURLToPath(new URL('./processor.js', import.meta.url));

/**
 * Starts a worker on the queue.
 * @throws Error when Redis cannot be reached.
 */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const log = o.log ?? (() => {});
  const connection = await connectRedis(o.redis, true);
  const worker = new Worker<NtsJobData, NtsJobResult>(o.queue ?? DEFAULT_QUEUE, PROCESSOR_FILE, {
    connection, concurrency: o.concurrency ?? 1, lockDuration: o.lockDurationMs ?? 30_000, stalledInterval: o.stalledIntervalMs ?? 30_000,
    maxStalledCount: o.maxStalledCount ?? 3, name: `${hostname()}:${process.pid}`, autorun: true, useWorkerThreads: false,
  });
  worker.on('error', (e) => log(`worker: ${e.message}`));
  worker.on('stalled', (id) => log(`job ${id} stalled (its worker stopped renewing the lock): queued again`));
  worker.on('failed', (job, e) => log(`job ${job?.id ?? '?'} failed${job && job.attemptsMade < (job.opts.attempts ?? 1) && e.name !== 'UnrecoverableError' ? ' (will be retried)' : ''}: ${e.message}`));
  await worker.waitUntilReady();
  return {
    worker,
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}
