import { mkdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDataset } from '../data/dataset.js';
import type { RunConfig } from '../engine/config.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { ChildFailedError, runLogged } from '../util/process.js';
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
  teacherMode: 'imagenet' | 'random';
  teacherWeights?: string;
  seed: number;
  /** Overrides of the protocol (recorded in benchmark.json; a changed override is a different run). */
  epochs?: number;
  speed: boolean;
  skipBad?: boolean;
}

/** Builds every ntsnet job of a benchmark run (training per dataset x configuration, then the speed jobs). */
export async function planJobs(o: BenchPlanOptions): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const ds of o.datasets) {
    const base = structuredClone(o.protocol.base);
    base.train.seed = o.seed;
    const split = await readDataset(ds.spec, { valFraction: base.train.valFraction, seed: o.seed, skipBad: o.skipBad });
    base.train.epochs = o.epochs ?? epochsFor(o.protocol, split.train.length);
    base.teacher = o.teacherMode === 'random' ? 'random' : 'imagenet';
    const job = (name: string, config: RunConfig, subsets: boolean): TrainJob => ({
      kind: 'train', dir: path.resolve(o.out, ds.id, name), dataset: { id: ds.id, spec: ds.spec }, name, config,
      teacherMode: o.teacherMode, ...(o.teacherWeights ? { teacherWeights: path.resolve(o.teacherWeights) } : {}),
      variants: variantsFor(config.model, subsets), ...(o.skipBad ? { skipBad: true } : {}),
      // The synthetic epoch selection is compared with the default's val_loss choice (runTrainJob evaluates both).
      ...(config.train.selectBy === 'synthetic' ? { keepValLossChoice: true } : {}),
    });
    for (const name of o.configs) {
      const c = structuredClone(base);
      c.model.studentBlock = ABLATION[name].studentBlock;
      c.model.teacherNorm = ABLATION[name].teacherNorm;
      const row = ABLATION[name];
      if ('cot' in row) c.model.cot = { ...c.model.cot, ...row.cot };
      if ('emanSchedule' in row) c.model.emanSchedule = row.emanSchedule;
      if ('emanScales' in row) c.model.emanScales = [...row.emanScales];
      if ('train' in row) Object.assign(c.train, row.train);
      if ('epochsFactor' in row) c.train.epochs *= row.epochsFactor;
      if ('imageSize' in row) c.model.imageSize = row.imageSize;
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

/** What must be equal for a finished job to be reused: the data, the settings and the evaluation variants. */
function jobKey(j: Job): Record<string, unknown> {
  if (j.kind === 'speed') return { model: j.model, batches: j.batches, runs: j.runs };
  if (j.kind === 'engine-speed') return { model: j.model, teacher: j.teacherWeights, batches: j.batches, runs: j.runs, calibration: j.calibration, trainProfile: j.trainProfile };
  if (j.kind === 'fit-speed') return { dataset: j.dataset.spec, config: j.config, teacher: j.teacherWeights, maxBatchesPerEpoch: j.maxBatchesPerEpoch ?? null };
  return { dataset: j.dataset.spec, config: j.config, variants: j.variants, teacher: j.teacherMode, ...(j.skipBad ? { skipBad: true } : {}) };
}

/** Dotted paths whose values differ between two JSON values, as "path: old -> new" (at most `max`). */
export function jsonDiff(a: unknown, b: unknown, max = 6, at = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])]) {
      out.push(...jsonDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], max, at ? `${at}.${k}` : k));
      if (out.length >= max) break;
    }
    return out.slice(0, max);
  }
  const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 80));
  return [`${at || '(value)'}: ${show(a)} -> ${show(b)}`];
}

/** Reads a JSON file of a run folder, naming the file when it is not valid JSON. */
export async function readRunJson<T>(file: string): Promise<T> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); it was probably cut off by an interrupted run. Delete that file (and rerun) or use another --out.`);
  }
}

/**
 * Checks, before anything is written, that every FINISHED job (run.json present) was made with the same plan; an
 * unfinished job folder is simply redone with the new plan.
 * @throws Error naming the folder and the settings that differ (old -> new).
 */
export async function checkJobPlans(jobs: Job[]): Promise<void> {
  for (const job of jobs) {
    const jobFile = path.join(job.dir, 'job.json');
    if (!(await exists(jobFile)) || !(await exists(path.join(job.dir, 'run.json')))) continue;
    const prev = await readRunJson<Job>(jobFile);
    const d = jsonDiff(jobKey(prev), jobKey(job));
    if (d.length) throw new Error(`${job.dir} holds a job made with different settings (old -> new):\n  - ${d.join('\n  - ')}\nRerun with the old settings to resume that run, or use another --out for the new ones.`);
  }
}

/** Where the compiled worker lives (dist/src/bench/worker.js next to this module). */
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');
/** Prefix of the worker's last stderr line block when its job fails (see worker.ts). */
export const WORKER_FAILED = 'benchmark job failed:';

/** The worker's error message (everything after its `... failed:` line marker), else the log's last lines. */
async function failureLines(file: string): Promise<string> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l.trim());
  let at = lines.length - 1;
  while (at >= 0 && !lines[at]!.startsWith(WORKER_FAILED)) at--;
  const why = at >= 0 ? [lines[at]!.slice(WORKER_FAILED.length).trim(), ...lines.slice(at + 1)] : lines.slice(-5);
  return why.slice(0, 12).join('\n  ');
}

/**
 * Runs the jobs one after the other, each in its own Node process (its peak memory is its own). A job whose run.json
 * exists and whose job.json matches the plan is skipped (resume); call {@link checkJobPlans} first so that a folder
 * holding a different plan is refused before anything runs. Warnings of a job's log (once per distinct text) and,
 * on failure, the lines that say why are shown on `log`.
 * @throws Error when a job fails, with its reason and log file; the jobs after it are not started.
 */
export async function runJobs(jobs: Job[], log: (l: string) => void): Promise<void> {
  const warned = new Set<string>();
  for (const [i, job] of jobs.entries()) {
    const label = job.kind === 'train' ? `${job.dataset.id}/${job.name}` : `speed/${job.name}`;
    await mkdir(job.dir, { recursive: true });
    const jobFile = path.join(job.dir, 'job.json');
    if ((await exists(jobFile)) && (await exists(path.join(job.dir, 'run.json')))) {
      log(`[${i + 1}/${jobs.length}] ${label}: done earlier, skipped`);
      continue;
    }
    await writeJsonAtomic(jobFile, job);
    log(`[${i + 1}/${jobs.length}] ${label}: running${job.kind === 'train' ? ` (${job.config.model.studentBlock} student, ${job.config.model.teacherNorm} teacher, ${job.config.train.epochs} epochs, ${job.config.model.imageSize} px)` : ''} ...`);
    const t0 = Date.now();
    const workerLog = path.join(job.dir, 'worker.log');
    try {
      await runLogged(process.execPath, [WORKER, jobFile], workerLog, `benchmark job ${label}`);
    } catch (e) {
      if (e instanceof ChildFailedError && e.interrupted) throw new Error(`benchmark interrupted during job ${label}; rerun the same command to resume (finished jobs are kept, the interrupted one is redone).`);
      throw new Error(`benchmark job ${label} failed:\n  ${await failureLines(workerLog)}\n(full log: ${workerLog}). Fix the cause and rerun the same command: finished jobs are kept.`);
    } finally {
      for (const w of (await readFile(workerLog, 'utf8').catch(() => '')).split('\n')) {
        const m = /warning: (.*)$/.exec(w);
        if (m && !warned.has(m[1]!)) { warned.add(m[1]!); log(`  warning (${label}): ${m[1]}`); }
      }
    }
    log(`[${i + 1}/${jobs.length}] ${label}: finished in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}
