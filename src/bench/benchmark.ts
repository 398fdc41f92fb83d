import { execFileSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { readDataset } from '../data/dataset.js';
import { commonAncestor } from '../data/folder.js';
import { assertOutsideDataset, NTSNET_VERSION } from '../engine/paths.js';
import { writeJsonAtomic } from '../util/atomic.js';
import type { BenchDataset } from './datasets.js';
import type { Job, TrainJob } from './jobs.js';
import { DEFAULT_PEER_PYTHON, benchTeacher, checkPeerPlan, checkPeerPython, runPeer, writeBenchTeacher, type PeerName } from './peers.js';
import { ABLATION, type AblationName } from './plan.js';
import type { Protocol } from './protocol.js';
import { collectResults, writeReport, type BenchMeta } from './report.js';
import { writeAccuracyReport } from './accuracyReport.js';
import { runLevers } from './levers.js';
import { checkJobPlans, planJobs, readRunJson, runJobs } from './runner.js';

/** Options of {@link runBenchmark} (the `ntsnet benchmark` command). */
export interface BenchmarkOptions {
  protocol: Protocol;
  datasets: BenchDataset[];
  out: string;
  configs: AblationName[];
  peers: PeerName[];
  teacherMode: 'imagenet' | 'random';
  teacherWeights?: string;
  seed: number;
  epochs?: number;
  speed: boolean;
  python?: string;
  /** PatchCore's coreset sampling ratio. */
  coresetRatio: number;
  report: boolean;
  skipBad?: boolean;
  /** The command line, recorded in benchmark.json and the report. */
  command: string;
  log: (l: string) => void;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: path.dirname(new URL(import.meta.url).pathname), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Refuses an output path that is a file, a folder inside (or equal to) a dataset folder, or an existing non-empty
 * folder that is not a benchmark run (so nothing of the user's is overwritten).
 */
export async function checkOutFolder(out: string, datasetRoots: string[]): Promise<void> {
  for (const d of datasetRoots) {
    await assertOutsideDataset(out, d);
    const rel = path.relative(path.resolve(out), path.resolve(d));
    if (!rel.startsWith('..') && !path.isAbsolute(rel)) throw new Error(`--out ${out} contains the dataset folder ${d}; the run writes one folder per dataset name inside --out and could write into the data. Choose an output folder outside the dataset's parent folder.`);
  }
  const st = await stat(out).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new Error(`--out ${out} is an existing file, not a folder. Choose a folder path (it is created if missing).`);
  const entries = await readdir(out);
  const hasJobs = async (): Promise<boolean> => {
    for (const e of entries) for (const j of await readdir(path.join(out, e)).catch(() => [] as string[])) if (await stat(path.join(out, e, j, 'job.json')).catch(() => undefined)) return true;
    return false;
  };
  if (entries.length && !entries.includes('benchmark.json') && !entries.includes('speed.json') && !entries.includes('speed') && !(await hasJobs()))
    throw new Error(`--out ${out} is a non-empty folder that is not a benchmark run (no benchmark.json); its files could be overwritten. Choose a new or empty folder, or the folder of an earlier run to resume it.`);
}

/**
 * Runs a whole benchmark: ntsnet's training and speed jobs, the anomalib peers, then report.md + summary.json.
 * Everything that can be checked is checked before anything is written or trained: the output folder, the peer
 * environment, the run folder's settings and every existing job folder's plan. Resumable: finished jobs are kept.
 * @throws Error for a bad output folder, a run folder made with other settings (both listed), a failed job (its
 *   reason and log named) or a missing peer environment.
 */
export async function runBenchmark(tf: Tf, o: BenchmarkOptions, datasetRoots: string[]): Promise<{ report?: string }> {
  await checkOutFolder(o.out, datasetRoots);
  const python = o.python ?? DEFAULT_PEER_PYTHON;
  if (o.peers.length) checkPeerPython(python);
  const base = structuredClone(o.protocol.base);
  base.train.seed = o.seed;
  const teacher = await benchTeacher(o.teacherMode, o.teacherWeights, o.seed, o.out, o.configs.map((c) => ABLATION[c].teacherNorm));
  // Every training job reads exactly this file (not whatever the cache or environment holds when the job starts).
  const teacherWeights = teacher.imagenet || o.teacherMode === 'imagenet' ? teacher.file : undefined;
  const metaFile = path.join(o.out, 'benchmark.json');
  const prev = (await stat(metaFile).catch(() => undefined)) ? await readRunJson<BenchMeta>(metaFile) : undefined;
  const settings = (m: { protocol: string; seed: number; epochs: number | null; imagenet: boolean }): string => `protocol ${m.protocol}, seed ${m.seed}, epochs ${m.epochs ?? 'from the protocol'}, ${m.imagenet ? 'ImageNet' : 'random'} teacher`;
  if (prev && (prev.protocol.name !== o.protocol.name || prev.seed !== o.seed || prev.epochsOverride !== (o.epochs ?? null) || prev.teacher.imagenet !== teacher.imagenet)) {
    throw new Error(`${o.out} holds a benchmark run with ${settings({ protocol: prev.protocol.name, seed: prev.seed, epochs: prev.epochsOverride, imagenet: prev.teacher.imagenet })}; this command asks for ${settings({ protocol: o.protocol.name, seed: o.seed, epochs: o.epochs ?? null, imagenet: teacher.imagenet })}. Use another --out for different settings.`);
  }
  const jobs = await planJobs({ protocol: o.protocol, datasets: o.datasets, out: o.out, configs: o.configs, teacherMode: o.teacherMode, teacherWeights, seed: o.seed, epochs: o.epochs, speed: o.speed, skipBad: o.skipBad });
  await checkJobPlans(jobs);
  for (const ds of o.datasets) {
    const known = prev?.datasets.find((d) => d.id === ds.id);
    if (known?.path && known.path !== datasetPath(ds)) throw new Error(`${o.out} already holds results for a dataset named '${ds.id}' from ${known.path}, not ${datasetPath(ds)}. Use another --out.`);
    if (!o.peers.length) continue;
    const config = peerConfig(jobs, ds) ?? (await datasetConfig(o, ds));
    const split = await readDataset(ds.spec, { valFraction: config.train.valFraction, seed: config.train.seed, skipBad: o.skipBad });
    for (const p of o.peers) await checkPeerPlan({ dir: peerDir(o.out, ds, p), peer: p, coresetRatio: o.coresetRatio }, split.train.length, config.model.imageSize);
  }

  // Checks passed: from here on the run folder is written.
  await writeBenchTeacher(tf, teacher, base.model);
  o.log(`teacher: ${teacher.description}`);
  const ids = (xs: { id: string }[]): string[] => xs.map((d) => d.id);
  const meta: BenchMeta = {
    format: 'ntsnet-benchmark', version: 1,
    protocol: { name: o.protocol.name, description: o.protocol.description, layerSubsets: o.protocol.layerSubsets, speed: o.protocol.speed },
    command: prev?.command ?? o.command,
    resumedWith: [...(prev?.resumedWith ?? []), ...(prev ? [o.command] : [])],
    datasets: [...(prev?.datasets ?? []), ...o.datasets.filter((d) => !prev || !ids(prev.datasets).includes(d.id)).map((d) => ({ id: d.id, kind: d.kind, path: datasetPath(d) }))],
    configs: [...new Set([...(prev?.configs ?? []), ...o.configs])],
    peers: [...new Set([...(prev?.peers ?? []), ...o.peers])],
    seed: o.seed, epochsOverride: o.epochs ?? null, teacher: { imagenet: teacher.imagenet, description: teacher.description, sha256: teacher.identity.sha256, form: teacher.identity.form },
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` },
    versions: { ntsnet: `${NTSNET_VERSION} (git ${gitCommit()})`, node: process.versions.node, tfjs: tf.version.tfjs, backend: tf.getBackend() },
    startedAt: prev?.startedAt ?? new Date().toISOString(),
  };
  await writeJsonAtomic(metaFile, meta);
  await runJobs(jobs, o.log);

  for (const ds of o.datasets) {
    const config = peerConfig(jobs, ds) ?? (await datasetConfig(o, ds));
    for (const p of o.peers) {
      const label = `${ds.id}/anomalib-${p}`;
      o.log(`peer ${label}: running (or reusing a finished run) ...`);
      const t0 = Date.now();
      const rec = await runPeer({
        python, dataset: ds, peer: p, dir: peerDir(o.out, ds, p), config, teacher, skipBad: o.skipBad, coresetRatio: o.coresetRatio,
        // Speed is data-independent: time each peer once, on the first dataset.
        speed: o.speed && ds === o.datasets[0] ? o.protocol.speed : null,
      });
      o.log(`peer ${label}: image AUROC ${rec.metrics.imageAuroc?.toFixed(4) ?? 'n/a'}, pixel AUROC ${rec.metrics.pixelAuroc?.toFixed(4) ?? 'n/a'} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  if (!o.report) return {};
  const trainNames = [...new Set([...meta.configs, ...jobs.filter((j): j is TrainJob => j.kind === 'train').map((j) => j.name)])];
  const results = await collectResults(o.out, meta, trainNames);
  const { md } = await writeReport(o.out, results);
  o.log(`report: ${md}`);
  const levers = await runLevers(tf, o.out, o.log);
  const acc = await writeAccuracyReport(o.out, results, levers);
  o.log(`accuracy table: ${acc}`);
  return { report: md };
}

/** A dataset's location as recorded in benchmark.json (the category folder, or the folder-dataset root). */
function datasetPath(d: BenchDataset): string {
  return typeof d.spec === 'string' ? d.spec : commonAncestor([...d.spec.normal, ...d.spec.abnormal]);
}

const peerDir = (out: string, ds: BenchDataset, p: PeerName): string => path.join(out, ds.id, `anomalib-${p}`);

/** The run config of a dataset's first training job (peers share its image size, epochs and split), if any. */
const peerConfig = (jobs: Job[], ds: BenchDataset): TrainJob['config'] | undefined =>
  jobs.find((j): j is TrainJob => j.kind === 'train' && j.dataset.id === ds.id)?.config;

/** The run config a dataset's jobs use (for peers run without ntsnet configs). */
async function datasetConfig(o: BenchmarkOptions, ds: BenchDataset): Promise<TrainJob['config']> {
  const [j] = await planJobs({ protocol: o.protocol, datasets: [ds], out: o.out, configs: ['baseline'], teacherMode: o.teacherMode, seed: o.seed, epochs: o.epochs, speed: false });
  return (j as TrainJob).config;
}
