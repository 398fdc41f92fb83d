import { execFileSync } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { writeJsonAtomic } from '../util/atomic.js';
import type { BenchDataset } from './datasets.js';
import type { TrainJob } from './jobs.js';
import { DEFAULT_PEER_PYTHON, benchTeacher, runPeer, type PeerName } from './peers.js';
import type { AblationName } from './plan.js';
import type { Protocol } from './protocol.js';
import { collectResults, writeReport, type BenchMeta } from './report.js';
import { planJobs, runJobs } from './runner.js';

/** Options of {@link runBenchmark} (the `ntsnet benchmark` command). */
export interface BenchmarkOptions {
  protocol: Protocol;
  datasets: BenchDataset[];
  out: string;
  configs: AblationName[];
  peers: PeerName[];
  teacherMode: 'auto' | 'imagenet' | 'random';
  teacherWeights?: string;
  seed: number;
  epochs?: number;
  speed: boolean;
  python?: string;
  report: boolean;
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
 * Runs a whole benchmark: ntsnet's training and speed jobs, the anomalib peers, then report.md + summary.json.
 * Resumable: finished jobs are kept; a run folder made with another protocol, seed or epoch override is refused.
 * @throws Error for a mismatching run folder, a failed job (its log named) or a missing peer environment.
 */
export async function runBenchmark(tf: Tf, o: BenchmarkOptions): Promise<{ report?: string }> {
  const base = structuredClone(o.protocol.base);
  base.train.seed = o.seed;
  const teacher = await benchTeacher(tf, o.teacherMode, o.teacherWeights, base, o.out);
  o.log(`teacher: ${teacher.description}`);
  const metaFile = path.join(o.out, 'benchmark.json');
  const prev = (await stat(metaFile).catch(() => undefined)) ? (JSON.parse(await readFile(metaFile, 'utf8')) as BenchMeta) : undefined;
  if (prev && (prev.protocol.name !== o.protocol.name || prev.seed !== o.seed || prev.epochsOverride !== (o.epochs ?? null) || prev.teacher.imagenet !== teacher.imagenet))
    throw new Error(`${o.out} holds a benchmark run with protocol ${prev.protocol.name}, seed ${prev.seed}, epochs ${prev.epochsOverride ?? 'protocol'}, ${prev.teacher.imagenet ? 'ImageNet' : 'random'} teacher. Use another --out for different settings.`);
  const ids = (xs: { id: string }[]): string[] => xs.map((d) => d.id);
  const meta: BenchMeta = {
    format: 'ntsnet-benchmark', version: 1,
    protocol: { name: o.protocol.name, description: o.protocol.description, layerSubsets: o.protocol.layerSubsets, speed: o.protocol.speed },
    command: o.command,
    datasets: [...(prev?.datasets ?? []), ...o.datasets.filter((d) => !prev || !ids(prev.datasets).includes(d.id)).map((d) => ({ id: d.id, kind: d.kind }))],
    configs: [...new Set([...(prev?.configs ?? []), ...o.configs])],
    peers: [...new Set([...(prev?.peers ?? []), ...o.peers])],
    seed: o.seed, epochsOverride: o.epochs ?? null, teacher: { imagenet: teacher.imagenet, description: teacher.description },
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}` },
    versions: { ntsnet: `${NTSNET_VERSION} (git ${gitCommit()})`, node: process.versions.node, tfjs: tf.version.tfjs, backend: tf.getBackend() },
    startedAt: prev?.startedAt ?? new Date().toISOString(),
  };
  await writeJsonAtomic(metaFile, meta);

  const jobs = await planJobs({ protocol: o.protocol, datasets: o.datasets, out: o.out, configs: o.configs, teacherMode: o.teacherMode, teacherWeights: o.teacherWeights, seed: o.seed, epochs: o.epochs, speed: o.speed });
  await runJobs(jobs, o.log);

  for (const ds of o.datasets) {
    const cfgJob = jobs.find((j): j is TrainJob => j.kind === 'train' && j.dataset.id === ds.id);
    const config = cfgJob?.config ?? (await datasetConfig(o, ds));
    for (const p of o.peers) {
      const label = `${ds.id}/anomalib-${p}`;
      o.log(`peer ${label}: running (or reusing a finished run) ...`);
      const t0 = Date.now();
      const rec = await runPeer({
        python: o.python ?? DEFAULT_PEER_PYTHON, dataset: ds, peer: p, dir: path.join(o.out, ds.id, `anomalib-${p}`), config, teacher,
        // Speed is data-independent: time each peer once, on the first dataset.
        speed: o.speed && ds === o.datasets[0] ? o.protocol.speed : null,
      });
      o.log(`peer ${label}: image AUROC ${rec.metrics.imageAuroc?.toFixed(4) ?? 'n/a'}, pixel AUROC ${rec.metrics.pixelAuroc?.toFixed(4) ?? 'n/a'} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  if (!o.report) return {};
  const trainNames = [...new Set([...meta.configs, ...jobs.filter((j): j is TrainJob => j.kind === 'train').map((j) => j.name)])];
  const { md } = await writeReport(o.out, await collectResults(o.out, meta, trainNames));
  o.log(`report: ${md}`);
  return { report: md };
}

/** The run config a dataset's jobs use (for peers run without ntsnet configs). */
async function datasetConfig(o: BenchmarkOptions, ds: BenchDataset): Promise<TrainJob['config']> {
  const [j] = await planJobs({ protocol: o.protocol, datasets: [ds], out: o.out, configs: ['baseline'], teacherMode: o.teacherMode, seed: o.seed, epochs: o.epochs, speed: false });
  return (j as TrainJob).config;
}
