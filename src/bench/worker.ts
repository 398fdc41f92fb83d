#!/usr/bin/env node
/** Benchmark worker: runs one job (JSON file given as the only argument) in its own process; see bench/runner.ts. */
import { readFile } from 'node:fs/promises';
import { loadTf } from '../backend/index.js';
import { runSpeedJob, runTrainJob, type Job } from './jobs.js';
import { runEngineSpeedJob, runFitSpeedJob } from './speedJobs.js';
import { WORKER_FAILED } from './runner.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: worker.js JOB.json\n');
  process.exit(2);
}
const job = JSON.parse(await readFile(file, 'utf8')) as Job;
const tf = loadTf();
// Ctrl-C (the whole process group gets it, and the runner passes it on too) or a kill: a training stops after its
// batch and removes its caches. Repeats are harmless; the runner kills the worker on a second Ctrl-C.
const stop = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => stop.abort());
try {
  if (job.kind === 'train') await runTrainJob(tf, job, stop.signal);
  else if (job.kind === 'speed') await runSpeedJob(tf, job);
  else if (job.kind === 'engine-speed') await runEngineSpeedJob(tf, job);
  else await runFitSpeedJob(tf, job, stop.signal);
} catch (e) {
  if (stop.signal.aborted) {
    process.stderr.write(`${WORKER_FAILED} interrupted; rerun the same command to resume (finished jobs are kept)\n`);
    process.exit(130);
  }
  process.stderr.write(`${WORKER_FAILED} ${e instanceof Error ? (process.env.NTSNET_DEBUG ? e.stack : e.message) : String(e)}\n`);
  process.exit(1);
}
