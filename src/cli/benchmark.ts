import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { resolveBenchDatasets, type BenchDataset } from '../bench/datasets.js';
import { ABLATION_NAMES, DEFAULT_ABLATION, type AblationName } from '../bench/plan.js';
import { protocol } from '../bench/protocol.js';
import { runBenchmark } from '../bench/benchmark.js';
import { DEFAULT_PEER_PYTHON, PEERS, type PeerName } from '../bench/peers.js';
import { runSpeedBenchmark } from '../bench/speedBench.js';
import type { Tf } from '../backend/index.js';
import { int, positiveInt, positiveIntList } from './options.js';

interface BenchFlags {
  protocol: string; dataset: string[]; out?: string; configs: string; peers: string; teacher: 'imagenet' | 'random';
  teacherWeights?: string; seed: number; epochs?: number; speed?: boolean; python?: string; report: boolean; skipBad?: boolean; coresetRatio: number;
  size: number; batches: string; runs?: string; trainEpochs: number; trainRounds: number;
}

/** positiveIntList for an option parsed after commander (its value may be the default string), its name first. */
const ratio = (v: string): number => {
  const r = Number(v);
  if (!(r > 0 && r <= 1)) throw new Error(`--coreset-ratio: give a number in (0, 1], got '${v}'.`);
  return r;
};

const list = (name: string, v: string): number[] => {
  try {
    return positiveIntList(v);
  } catch (e) {
    throw new Error(`${name}: ${(e as Error).message}`);
  }
};

/** The flags among `keys` (commander's camelCase names) given on the command line, as `--kebab-case`. */
const givenFlags = (cmd: Command, keys: string[]): string[] =>
  keys.filter((k) => cmd.getOptionValueSource(k) === 'cli').map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);

export function registerBenchmark(program: Command, tfLoader: () => Tf): void {
  program
    .command('benchmark')
    .description("reproduce the paper's tables (1, 2, 3, 5, fusion / sigma, AUPRO, F1-max) and run anomalib side by side; resumable")
    .addOption(new Option('--protocol <name>', "default: the cpu preset as 'ntsnet fit' runs it (128 px, 50 epochs); cpu: ~400 optimiser steps per run (the earlier runs); paper: 256 px, 200 epochs, batch 32").choices(['default', 'cpu', 'paper']).default('default'))
    .requiredOption('--dataset <dir...>', 'MVTec AD category or root folder (every category), or a Magnetic Tile root; repeatable')
    .option('--out <dir>', 'run folder (default results/<protocol>); rerun with the same folder to resume')
    .option('--configs <list>', `ablation configurations, any of ${ABLATION_NAMES.join(',')}`, DEFAULT_ABLATION.join(','))
    .option('--peers <list>', 'anomalib peers: stfpm,patchcore,rd (Reverse Distillation, ResNet18 encoder) or none', 'stfpm,patchcore,rd')
    .option('--coreset-ratio <r>', "PatchCore's coreset sampling ratio (anomalib's default 0.1; its greedy selection grows with ratio x training patches)", ratio, 0.1)
    .addOption(new Option('--teacher <kind>', 'teacher weights (the same file is given to anomalib): ImageNet ResNet18 (required), or a seeded random teacher chosen knowingly').choices(['imagenet', 'random']).default('imagenet'))
    .option('--teacher-weights <file>', 'resnet18-imagenet-trunk.safetensors (../shared/weights), torchvision resnet18-f37072fd.pth or .safetensors (else $NTSNET_TEACHER_WEIGHTS, then the cache)')
    .option('--seed <n>', 'seed of splits, initialisation and data order', int, 42)
    .option('--epochs <n>', "override the protocol's epochs (recorded in the report)", positiveInt)
    .option('--speed', 'the speed benchmark instead of the accuracy jobs: every ntsnet engine and anomalib STFPM-R18 (PyTorch, OpenVINO) at --size, training seconds per epoch and peak memory, compute ceilings, per-op profiles (speed.md)')
    .option('--no-speed', 'accuracy benchmark without the Table 2 speed measurements')
    .option('--size <px>', 'with --speed: inference image size', positiveInt, 256)
    .option('--batches <list>', 'with --speed: inference batch sizes', '1,32')
    .option('--runs <list>', 'with --speed: timed runs per batch size (default max(5, ceil(64 / batch)))')
    .option('--train-epochs <n>', 'with --speed: epochs of the training-speed measurement (128 px, batch 16, the cpu preset)', positiveInt, 5)
    .option('--train-rounds <n>', 'with --speed: training-speed rounds, alternating ntsnet and anomalib (the ratio is their median)', positiveInt, 3)
    .option('--python <exe>', 'Python of the anomalib environment (default $NTSNET_BENCH_VENV/bin/python, else <repository>/.bench/venv/bin/python; see benchmarks/peers/setup-anomalib.sh)')
    .option('--skip-bad', 'skip unreadable images with a warning instead of failing')
    .option('--no-report', 'run the jobs only')
    .action(async (o: BenchFlags, command: Command) => {
      const log = (l: string): void => void process.stderr.write(`${l}\n`);
      // Ctrl-C (or a SIGINT / SIGTERM to this process alone, passed on by util/process.ts) reaches the job's process,
      // which stops after its batch and cleans up; the run then ends saying so. A second one kills the job at once.
      process.once('SIGINT', () => log('interrupted: the running job stops after its current batch (a second Ctrl-C stops it at once); rerun the same command to resume (finished jobs are kept)'));
      if (o.speed === true) return speedCommand(o, command, tfLoader, log);
      const speedOnly = givenFlags(command, ['size', 'batches', 'runs', 'trainEpochs', 'trainRounds']);
      if (speedOnly.length) throw new Error(`${speedOnly.join(', ')}: option(s) of the speed benchmark (--speed), which the accuracy benchmark does not use; drop them, or add --speed.`);
      const proto = protocol(o.protocol);
      const configs = [...new Set(o.configs.split(',').map((s) => s.trim()).filter(Boolean))];
      const bad = configs.filter((c) => !(ABLATION_NAMES as string[]).includes(c));
      if (bad.length || !configs.length) throw new Error(`--configs: unknown ${bad.join(', ') || '(empty)'}; choose from ${ABLATION_NAMES.join(', ')}.`);
      if (o.teacherWeights && o.teacher === 'random') throw new Error('--teacher-weights is used with --teacher imagenet, not --teacher random.');
      const datasets: BenchDataset[] = [];
      const roots = [...new Set(o.dataset.map((x) => path.resolve(x)))];
      for (const d of roots) datasets.push(...(await resolveBenchDatasets(d, o.seed, log)));
      const ids = datasets.map((d) => d.id);
      const dup = ids.find((id, i) => ids.indexOf(id) !== i);
      if (dup) throw new Error(`two datasets are both named '${dup}' (results are kept per folder name): benchmark them into separate --out folders.`);
      const out = path.resolve(o.out ?? path.join('results', proto.name));
      log(`benchmark: protocol ${proto.name} (${proto.description})${o.epochs ? `, epochs overridden: ${o.epochs} (--epochs)` : ''}, seed ${o.seed}; datasets ${ids.join(', ')}; configs ${configs.join(', ')}; out ${out}`);
      const peers = o.peers.trim() === 'none' ? [] : [...new Set(o.peers.split(',').map((s) => s.trim()).filter(Boolean))];
      if (peers.includes('none')) throw new Error(`--peers: 'none' cannot be combined with peers (got '${o.peers}'); give 'none' alone, or a list of ${PEERS.join(', ')}.`);
      const badPeer = peers.filter((p) => !(PEERS as readonly string[]).includes(p));
      if (badPeer.length) throw new Error(`--peers: unknown ${badPeer.join(', ')}; give a comma-separated list of ${PEERS.join(', ')}, or just 'none'.`);
      const tf = tfLoader();
      const r = await runBenchmark(tf, {
        protocol: proto, datasets, out, configs: configs as AblationName[], peers: peers as PeerName[], teacherMode: o.teacher,
        teacherWeights: o.teacherWeights, seed: o.seed, epochs: o.epochs, speed: o.speed !== false, python: o.python, report: o.report,
        skipBad: o.skipBad, coresetRatio: o.coresetRatio, command: ['ntsnet', ...process.argv.slice(2)].join(' '), log,
      }, roots);
      if (r.report) process.stdout.write(`${r.report}\n`);
    });
}

/** `benchmark --speed`: one dataset (training images for the training timings and int8 calibration), no ablation. */
async function speedCommand(o: BenchFlags, cmd: Command, tfLoader: () => Tf, log: (l: string) => void): Promise<void> {
  if (o.teacher === 'random') throw new Error('--speed times the ImageNet-teacher detector; --teacher random does not apply.');
  if (o.dataset.length !== 1) throw new Error(`--speed takes one --dataset (its training images are trained on and calibrate int8), got ${o.dataset.length}.`);
  const [ds, ...more] = await resolveBenchDatasets(path.resolve(o.dataset[0]!), o.seed, log);
  if (!ds || more.length) throw new Error(`--speed takes one dataset: ${o.dataset[0]} holds ${more.length + (ds ? 1 : 0)} (give one category folder).`);
  const batches = list('--batches', o.batches);
  const runs = o.runs === undefined ? undefined : list('--runs', o.runs);
  if (runs && runs.length !== batches.length && runs.length !== 1) throw new Error(`--runs: ${runs.length} value(s) for ${batches.length} batch size(s); give one per batch size, or one for all.`);
  const ignored = givenFlags(cmd, ['protocol', 'configs', 'epochs', 'skipBad', 'report', 'coresetRatio']);
  if (ignored.length) throw new Error(`--speed does not use ${ignored.join(', ')} (those are options of the accuracy benchmark); drop them.`);
  const out = path.resolve(o.out ?? path.join('results', 'speed'));
  const peers = o.peers.trim() !== 'none';
  if (peers && o.peers.split(',').map((p) => p.trim()).some((p) => !(PEERS as readonly string[]).includes(p))) throw new Error(`--peers: give stfpm (the speed peer) or none, got '${o.peers}'.`);
  const cpu = protocol('cpu').base;
  const md = await runSpeedBenchmark(tfLoader(), {
    dataset: ds, out, teacherWeights: o.teacherWeights, seed: o.seed, imageSize: o.size, batches, runs, warmup: 2,
    train: { imageSize: cpu.model.imageSize, batchSize: cpu.train.batchSize, epochs: o.trainEpochs, rounds: o.trainRounds },
    memory: { imageSize: 256, batchSize: 16, batches: 8 },
    peers, python: o.python ?? DEFAULT_PEER_PYTHON, command: ['ntsnet', ...process.argv.slice(2)].join(' '), log,
  });
  process.stdout.write(md);
}
