/**
 * `ntsnet benchmark --speed`: one run that times ntsnet's engines and anomalib's STFPM-R18 (PyTorch and its OpenVINO
 * export) on the same machine, the training of both on the same images, peak training memory, the machine's compute
 * ceilings and per-op profiles; writes speed.json and speed.md (docs/benchmark.md, "Speed"). Resumable: every part is
 * a job folder under `out/speed/` that is kept once finished.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { cpuFlags } from '../backend/cpu.js';
import type { Tf } from '../backend/index.js';
import { readDataset } from '../data/dataset.js';
import { preset, type RunConfig } from '../engine/config.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { checkOutFolder } from './benchmark.js';
import { commonAncestor } from '../data/folder.js';
import { spreadSample } from '../export/int8.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { runLogged } from '../util/process.js';
import type { BenchDataset } from './datasets.js';
import { benchTeacher, checkPeerPython, PEER_SCRIPT } from './peers.js';
import { checkJobPlans, readRunJson, runJobs } from './runner.js';
import type { EngineSpeedJob, EngineSpeedRecord, FitSpeedJob, FitSpeedRecord } from './speedJobs.js';
import { speedReport, type PeerSpeed, type SpeedSummary } from './speedReport.js';

/** Options of {@link runSpeedBenchmark}. */
export interface SpeedBenchOptions {
  dataset: BenchDataset;
  out: string;
  teacherWeights?: string;
  seed: number;
  /** Inference: image size, batch sizes, timed runs per batch size (default max(5, ceil(64 / batch))), warm-up runs. */
  imageSize: number;
  batches: number[];
  runs?: number[];
  warmup: number;
  /** Training-speed measurement: `fit` for `epochs` whole epochs at this size and batch (the `cpu` preset's), in `rounds` alternating with anomalib's. */
  train: { imageSize: number; batchSize: number; epochs: number; rounds: number };
  /** Peak-memory measurement: `fit` for `batches` batches at this size and batch. */
  memory: { imageSize: number; batchSize: number; batches: number };
  /** Run anomalib's STFPM beside ntsnet (needs the environment of benchmarks/peers/setup-anomalib.sh). */
  peers: boolean;
  python: string;
  command: string;
  log: (l: string) => void;
}

/** Default timed runs of a batch size: enough single images for a p99, at least 5 batches. */
export const defaultRuns = (b: number): number => Math.max(5, Math.ceil(64 / b));

/**
 * Runs the speed benchmark (see the module comment). @returns the markdown report.
 * @throws Error when the ImageNet teacher or the peer environment is missing, or a job fails (its log named).
 */
export async function runSpeedBenchmark(tf: Tf, o: SpeedBenchOptions): Promise<string> {
  const dsRoot = typeof o.dataset.spec === 'string' ? o.dataset.spec : commonAncestor([...o.dataset.spec.normal, ...o.dataset.spec.abnormal]);
  await checkOutFolder(o.out, [dsRoot]);
  for (const [what, v] of [['--size', o.imageSize], ['the training size', o.train.imageSize], ['the memory run size', o.memory.imageSize]] as const)
    if (v % 16 !== 0) throw new Error(`${what} must be a multiple of 16 (the trunk halves it four times), got ${v}.`);
  if (new Set(o.batches).size !== o.batches.length) throw new Error(`--batches lists a batch size twice (${o.batches.join(',')}).`);
  if (o.peers) checkPeerPython(o.python, ['openvino', 'onnxscript']); // anomalib's OpenVINO export
  const teacher = await benchTeacher('imagenet', o.teacherWeights, o.seed, o.out);
  const dir = path.join(o.out, 'speed');
  const base = preset('cpu');
  base.train.seed = o.seed;
  const split = await readDataset(o.dataset.spec, { valFraction: base.train.valFraction, seed: o.seed });
  const runs = o.runs?.length === 1 ? o.batches.map(() => o.runs![0]!) : (o.runs ?? o.batches.map(defaultRuns));
  const fitConfig = (size: number, batch: number, epochs: number): RunConfig => {
    const c = structuredClone(base);
    c.model.imageSize = size;
    c.train.batchSize = batch;
    c.train.epochs = epochs;
    return c;
  };
  const ds = { id: o.dataset.id, spec: o.dataset.spec };
  const engines: EngineSpeedJob = {
    kind: 'engine-speed', dir: path.join(dir, 'engines'), name: 'engines', model: { ...base.model, imageSize: o.imageSize }, teacherWeights: teacher.file,
    seed: o.seed, calibration: spreadSample(split.train, 64), batches: o.batches, runs, warmup: o.warmup,
    trainProfile: { imageSize: o.train.imageSize, batchSize: o.train.batchSize },
  };
  const trainJobs: FitSpeedJob[] = Array.from({ length: o.train.rounds }, (_, r) => ({
    kind: 'fit-speed', dir: path.join(dir, `fit-${o.train.imageSize}px-r${r + 1}`), name: `fit-${o.train.imageSize}px-r${r + 1}`, dataset: ds,
    config: fitConfig(o.train.imageSize, o.train.batchSize, o.train.epochs), teacherWeights: teacher.file,
  }));
  const memJob: FitSpeedJob = {
    kind: 'fit-speed', dir: path.join(dir, `fit-memory-${o.memory.imageSize}px`), name: `fit-memory-${o.memory.imageSize}px`, dataset: ds,
    config: fitConfig(o.memory.imageSize, o.memory.batchSize, 1), teacherWeights: teacher.file, maxBatchesPerEpoch: o.memory.batches,
  };
  await checkJobPlans([engines, memJob, ...trainJobs]);
  o.log(`benchmark --speed: ${o.dataset.id} (${split.train.length} training images), teacher ${teacher.description}; out ${dir}`);

  const train = [...split.train];
  const peer = async (task: 'infer' | 'train' | 'memory', input: Record<string, unknown>, name: string): Promise<PeerSpeed> => {
    const pdir = path.join(dir, `anomalib-stfpm-${name}`);
    const result = path.join(pdir, `speed-${task}.json`);
    const inputFile = path.join(pdir, 'input.json');
    const text = `${JSON.stringify(input, null, 1)}\n`;
    if (!existsSync(result) || !existsSync(inputFile) || (await readFile(inputFile, 'utf8')) !== text) {
      o.log(`anomalib STFPM ${name}: running ...`);
      await writeFileAtomic(inputFile, text);
      await runLogged(o.python, [PEER_SCRIPT, '--model', 'stfpm', '--task', task, '--input', inputFile, '--weights', teacher.file, '--out', pdir],
        path.join(pdir, 'log.txt'), `anomalib STFPM speed task '${name}' (rerun the same command to resume)`, { ...process.env, PYTHONWARNINGS: 'ignore' });
    } else o.log(`anomalib STFPM ${name}: done earlier, kept`);
    return readRunJson<PeerSpeed>(result);
  };
  await runJobs([engines, memJob], o.log);
  const peers: PeerSpeed[] = [];
  if (o.peers) {
    peers.push(await peer('infer', { seed: o.seed, imageSize: o.imageSize, batches: o.batches, runs, warmup: o.warmup }, 'infer'));
    peers.push(await peer('memory', { seed: o.seed, train: train.slice(0, o.memory.batches * o.memory.batchSize), imageSize: o.memory.imageSize, batchSize: o.memory.batchSize, epochs: 1, maxBatches: o.memory.batches }, 'memory'));
  }
  // Training speed in alternating rounds (ntsnet, anomalib, ntsnet, ...): this machine's speed drifts by tens of
  // percent within minutes, and alternating keeps the drift out of the ratio.
  for (const [r, job] of trainJobs.entries()) {
    await runJobs([job], o.log);
    if (o.peers) peers.push(await peer('train', { seed: o.seed, train, imageSize: o.train.imageSize, batchSize: o.train.batchSize, epochs: o.train.epochs }, `train-r${r + 1}`));
  }
  const summary: SpeedSummary = {
    format: 'ntsnet-speed-benchmark', version: 1, command: o.command, dataset: { id: o.dataset.id, kind: o.dataset.kind, trainImages: split.train.length },
    teacher: { description: teacher.description, sha256: teacher.identity.sha256 }, seed: o.seed,
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), flags: (cpuFlags() ?? []).filter((f) => SIMD.test(f)) },
    versions: { ntsnet: NTSNET_VERSION, node: process.versions.node, tfjs: tf.version.tfjs },
    engines: await readRunJson<EngineSpeedRecord>(path.join(engines.dir, 'run.json')),
    train: await Promise.all(trainJobs.map((j) => readRunJson<FitSpeedRecord>(path.join(j.dir, 'run.json')))),
    memory: await readRunJson<FitSpeedRecord>(path.join(memJob.dir, 'run.json')),
    peers, finishedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(path.join(o.out, 'speed.json'), summary);
  const md = speedReport(summary);
  await writeFileAtomic(path.join(o.out, 'speed.md'), md);
  return md;
}

/** The SIMD features that decide which kernels the runtimes pick (empty where they cannot be read). */
const SIMD = /^(avx2|fma|avx512f|avx512_vnni|avx512_bf16|avx_vnni|amx_\w+)$/;
