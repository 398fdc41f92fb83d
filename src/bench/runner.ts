import { mkdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDataset } from '../data/dataset.js';
import type { RunConfig } from '../engine/config.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { runLogged } from '../util/process.js';
import type { BenchDataset } from './datasets.js';
import type { Job, SpeedJob, TrainJob } from './jobs.js';
import { ABLATION, LAYER_SUBSETS, layerKey, variantsFor, type AblationName } from './plan.js';
import { epochsFor, type Protocol } from './protocol.js';

/** Options of {@link planJobs} and the benchmark command. */
export interface BenchPlanOptions {
  protocol: Protocol;
  datasets: BenchDataset[];
  /** Run folder, e.g. results/cpu-2026-11-29. */
  out: string;
  configs: AblationName[];
  teacherMode: 'auto' | 'imagenet' | 'random';
  teacherWeights?: string;
  seed: number;
  /** Overrides of the protocol (recorded in benchmark.json; a changed override is a different run). */
  epochs?: number;
  speed: boolean;
}

/** Builds every ntsnet job of a benchmark run (training per dataset x configuration, then the speed jobs). */
export async function planJobs(o: BenchPlanOptions): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const ds of o.datasets) {
    const base = structuredClone(o.protocol.base);
    base.train.seed = o.seed;
    const split = await readDataset(ds.spec, { valFraction: base.train.valFraction, seed: o.seed });
    base.train.epochs = o.epochs ?? epochsFor(o.protocol, split.train.length);
    base.teacher = o.teacherMode === 'random' ? 'random' : 'imagenet';
    const job = (name: string, config: RunConfig, subsets: boolean): TrainJob => ({
      kind: 'train', dir: path.resolve(o.out, ds.id, name), dataset: { id: ds.id, spec: ds.spec }, name, config,
      teacherMode: o.teacherMode, ...(o.teacherWeights ? { teacherWeights: path.resolve(o.teacherWeights) } : {}),
      variants: variantsFor(config.model, subsets),
    });
    for (const name of o.configs) {
      const c = structuredClone(base);
      c.model.studentBlock = ABLATION[name].studentBlock;
      c.model.teacherNorm = ABLATION[name].teacherNorm;
      jobs.push(job(name, c, o.protocol.layerSubsets === 'eval'));
    }
    if (o.protocol.layerSubsets === 'retrain' && o.configs.includes('ntsnet')) {
      for (const l of LAYER_SUBSETS.filter((s) => s.length < 3)) {
        const c = structuredClone(base);
        c.model.layers = l;
        jobs.push(job(`ntsnet-${layerKey(l)}`, c, false));
      }
    }
  }
  if (o.speed) {
    for (const block of ['basic', 'cot'] as const) {
      const model = { ...o.protocol.base.model, studentBlock: block, imageSize: o.protocol.speed.imageSize };
      jobs.push({ kind: 'speed', dir: path.resolve(o.out, 'speed', block), name: block, model, batches: o.protocol.speed.batches, runs: o.protocol.speed.runs, seed: o.seed } satisfies SpeedJob);
    }
  }
  return jobs;
}

const exists = async (p: string): Promise<boolean> => !!(await stat(p).catch(() => undefined));
const jobKey = (j: Job): string => JSON.stringify(j.kind === 'train' ? { config: j.config, variants: j.variants, teacher: j.teacherMode } : { model: j.model, batches: j.batches, runs: j.runs });

/** Where the compiled worker lives (dist/src/bench/worker.js next to this module). */
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

/**
 * Runs the jobs one after the other, each in its own Node process (its peak memory is its own; a crash loses one job).
 * A job whose run.json exists and whose job.json matches the plan is skipped (resume); a job folder holding a
 * different plan is refused, so results of different settings are never mixed.
 * @throws Error when a job fails (its log file is named) or a folder holds a different plan.
 */
export async function runJobs(jobs: Job[], log: (l: string) => void): Promise<void> {
  for (const [i, job] of jobs.entries()) {
    const label = job.kind === 'train' ? `${job.dataset.id}/${job.name}` : `speed/${job.name}`;
    await mkdir(job.dir, { recursive: true });
    const jobFile = path.join(job.dir, 'job.json');
    if (await exists(jobFile)) {
      const prev = JSON.parse(await readFile(jobFile, 'utf8')) as Job;
      if (jobKey(prev) !== jobKey(job)) throw new Error(`${job.dir} holds a job with different settings (job.json). Use a new --out for a different protocol or options, or delete that folder to rerun it.`);
      if (await exists(path.join(job.dir, 'run.json'))) { log(`[${i + 1}/${jobs.length}] ${label}: done earlier, skipped`); continue; }
    }
    await writeJsonAtomic(jobFile, job);
    log(`[${i + 1}/${jobs.length}] ${label}: running${job.kind === 'train' ? ` (${job.config.model.studentBlock} student, ${job.config.model.teacherNorm} teacher, ${job.config.train.epochs} epochs, ${job.config.model.imageSize} px)` : ''} ...`);
    const t0 = Date.now();
    await runLogged(process.execPath, [WORKER, jobFile], path.join(job.dir, 'worker.log'), `benchmark job ${label} (rerun the same command to resume)`);
    log(`[${i + 1}/${jobs.length}] ${label}: finished in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}
