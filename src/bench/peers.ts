import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tf } from '../backend/index.js';
import { readDataset } from '../data/dataset.js';
import type { RunConfig } from '../engine/config.js';
import { NTSNet } from '../model/ntsnet.js';
import { paramsToRaw, tfToTorchLayout } from '../model/params.js';
import { checkTeacherForNorm, RANDOM_TEACHER, resolveResnet18Weights, type TeacherIdentity } from '../model/weights/resolve.js';
import { serializeSafetensors, type RawStateDict } from '../model/weights/safetensors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { runLogged } from '../util/process.js';
import type { BenchDataset } from './datasets.js';
import { readRunJson } from './runner.js';
import { mapMetrics, type MapMetrics } from './variants.js';
import { loadTestMasks } from '../engine/evaluate.js';

/** anomalib models run as peers: STFPM-R18, PatchCore-R18 and Reverse Distillation with a ResNet18 encoder (`rd`). */
export const PEERS = ['stfpm', 'patchcore', 'rd'] as const;
export type PeerName = (typeof PEERS)[number];
/** Report names of the peers. */
export const PEER_LABELS: Record<PeerName, string> = { stfpm: 'STFPM-R18', patchcore: 'PatchCore-R18', rd: 'Reverse Distillation (R18 encoder)' };

/** Repository root (this file is dist/src/bench/peers.js). */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PEER_SCRIPT = path.join(REPO, 'benchmarks', 'peers', 'anomalib_peer.py');
/** The anomalib environment's Python: `$NTSNET_BENCH_VENV/bin/python`, else `<repository>/.bench/venv/bin/python` (see setup-anomalib.sh). */
export const DEFAULT_PEER_PYTHON = path.join(process.env.NTSNET_BENCH_VENV ? path.resolve(process.env.NTSNET_BENCH_VENV) : path.join(REPO, '.bench', 'venv'), 'bin', 'python');

/**
 * Checks, before any training, that `python` exists and imports anomalib, torch and PIL (and `extraModules`).
 * @throws Error with the setup command when it does not.
 */
export function checkPeerPython(python: string, extraModules: readonly string[] = []): void {
  const fix = `Create the environment with 'bash benchmarks/peers/setup-anomalib.sh', pass --python EXE, or skip the peers with --peers none.`;
  if (!existsSync(python)) throw new Error(`anomalib environment not found: ${python} does not exist. ${fix}`);
  const r = spawnSync(python, ['-c', `import ${['anomalib', 'torch', 'timm', 'PIL', 'numpy', ...extraModules].join(', ')}`], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    const why = (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-1)[0];
    throw new Error(`${python} cannot run the anomalib peer (${why || `exit ${r.status}`}). ${fix}`);
  }
}

/** The teacher both tools use: the ImageNet file, or ntsnet's seeded random teacher exported for anomalib. */
export interface BenchTeacher {
  /** File given to anomalib (torchvision names, PyTorch layout). */
  file: string;
  imagenet: boolean;
  /** What the file is (by SHA-256). */
  identity: TeacherIdentity;
  /** Human description for the report. */
  description: string;
  /** The seed of ntsnet's random teacher when `file` is that teacher's export (written by {@link writeBenchTeacher}). */
  randomSeed?: number;
}

/**
 * Decides the teacher of a benchmark run. `imagenet`: the ImageNet ResNet18 file (explicit path, $NTSNET_TEACHER_WEIGHTS
 * or ntsnet's weights cache; never downloaded here), required: there is no silent random fallback. `random`: the
 * seeded random teacher ntsnet's training jobs then use (chosen knowingly); its export to `out/weights/` is written by
 * {@link writeBenchTeacher}. Writes nothing itself, so that it can be called before a run's checks pass.
 * @throws Error when the ImageNet weights are not found (with where to put which file), or when the BatchNorm-folded
 *   trunk is combined with a configuration whose teacher norm changes the teacher's statistics.
 */
export async function benchTeacher(mode: 'imagenet' | 'random', explicit: string | undefined, seed: number, out: string, teacherNorms: string[] = []): Promise<BenchTeacher> {
  if (mode !== 'random') {
    const w = await resolveResnet18Weights({ path: explicit, download: false });
    for (const n of new Set(teacherNorms)) checkTeacherForNorm(w.identity, n);
    return { file: path.resolve(w.source), imagenet: w.imagenet, identity: w.identity, description: `${w.identity.description} (sha256 ${w.sha256.slice(0, 8)})` };
  }
  return {
    file: path.join(out, 'weights', `teacher-random-seed${seed}.safetensors`), imagenet: false, randomSeed: seed, identity: RANDOM_TEACHER,
    description: `seeded random ResNet18 (ntsnet teacher, seed ${seed}; chosen with --teacher random)`,
  };
}

/**
 * Writes the seeded random teacher of `t` (when it is one and not written yet) in PyTorch layout with torchvision
 * names: bit-identical to the teacher of `NTSNet.create(tf, model, 'random', seed)`.
 */
export async function writeBenchTeacher(tf: Tf, t: BenchTeacher, model: RunConfig['model']): Promise<void> {
  if (t.randomSeed === undefined || existsSync(t.file)) return;
  const net = NTSNet.create(tf, model, 'random', t.randomSeed);
  try {
    const raw: RawStateDict = new Map();
    for (const [k, v] of paramsToRaw(net.teacher)) raw.set(k, tfToTorchLayout(v));
    await mkdir(path.dirname(t.file), { recursive: true });
    await writeFileAtomic(t.file, serializeSafetensors(raw, { source: `ntsnet seeded random ResNet18 teacher (seed ${t.randomSeed})` }));
  } finally {
    net.dispose();
  }
}

/** What a peer run writes to run.json (metrics computed by ntsnet's metric code from anomalib's raw maps). */
export interface PeerRunRecord {
  kind: 'peer';
  dataset: string;
  name: PeerName;
  teacher: string;
  tool: Record<string, unknown>;
  metrics: MapMetrics;
  images: { file: string; label: 0 | 1; score: number }[];
  finishedAt: string;
}

/** Options of {@link runPeer}. */
export interface PeerOptions {
  python: string;
  dataset: BenchDataset;
  peer: PeerName;
  dir: string;
  /** The ntsnet run config of this dataset (image size, epochs, batch size, seed, val fraction). */
  config: RunConfig;
  teacher: BenchTeacher;
  speed: { imageSize: number; batches: number[]; runs: number } | null;
  /** PatchCore's coreset sampling ratio (anomalib's default 0.1). */
  coresetRatio: number;
  skipBad?: boolean;
}

/** PatchCore's patches per training image: its layer2 grid (stride 8), where layer3 is resampled to. */
const patchCorePatches = (imageSize: number): number => Math.ceil(imageSize / 8) ** 2;

/** The smallest ratio with two significant digits that keeps at least one of `patches` (rounded up, not to nearest). */
export function smallestRatio(patches: number): string {
  const step = 10 ** (Math.floor(Math.log10(1 / patches)) - 1);
  return (Math.ceil(1 / patches / step - 1e-9) * step).toPrecision(2);
}

/** A peer's finished record in `o.dir` (resume), or undefined; refuses one made with another PatchCore coreset ratio. */
async function finishedPeer(o: Pick<PeerOptions, 'dir' | 'peer' | 'coresetRatio'>): Promise<PeerRunRecord | undefined> {
  const runFile = path.join(o.dir, 'run.json');
  if (!(await stat(runFile).catch(() => undefined))) return undefined;
  const done = await readRunJson<PeerRunRecord>(runFile);
  const ratio = (done.tool.settings as { coresetRatio?: number | null } | undefined)?.coresetRatio;
  if (o.peer === 'patchcore' && typeof ratio === 'number' && ratio !== o.coresetRatio)
    throw new Error(`${o.dir} holds a PatchCore run with coreset ratio ${ratio}, not ${o.coresetRatio}. Rerun with --coreset-ratio ${ratio} to reuse it, or use another --out.`);
  return done;
}

/**
 * Checks a peer's plan before a benchmark writes or trains anything: a finished run made with another coreset ratio
 * is refused (not after hours of ntsnet training), and so is a ratio that leaves PatchCore's memory bank empty
 * (ratio x training images x patches per image < 1).
 * @param trainImages - training images of the dataset's split. @throws Error naming the folder or the smallest usable ratio.
 */
export async function checkPeerPlan(o: Pick<PeerOptions, 'dir' | 'peer' | 'coresetRatio'>, trainImages: number, imageSize: number): Promise<void> {
  if (await finishedPeer(o)) return;
  const patches = trainImages * patchCorePatches(imageSize);
  if (o.peer === 'patchcore' && Math.floor(o.coresetRatio * patches) < 1)
    throw new Error(`--coreset-ratio ${o.coresetRatio} keeps no patch of PatchCore's ${patches} (${trainImages} training images x ${patchCorePatches(imageSize)} at ${imageSize} px): give at least ${smallestRatio(patches)}.`);
}

/**
 * Runs one anomalib peer on the exact train / test images of ntsnet's seeded split, then scores its raw anomaly maps
 * with ntsnet's metrics and the same masks. Skipped when `dir/run.json` exists (resume).
 * @throws Error when the Python environment is missing (with the setup command) or the peer fails (log named).
 */
export async function runPeer(o: PeerOptions): Promise<PeerRunRecord> {
  const done = await finishedPeer(o);
  if (done) return done;
  await mkdir(o.dir, { recursive: true });
  const c = o.config;
  const ds = await readDataset(o.dataset.spec, { valFraction: c.train.valFraction, seed: c.train.seed, skipBad: o.skipBad });
  const input = {
    train: ds.train, test: ds.test.map((t) => ({ path: t.path, label: t.label })), imageSize: c.model.imageSize,
    epochs: c.train.epochs, batchSize: c.train.batchSize, evalBatchSize: c.train.evalBatchSize, seed: c.train.seed,
    coresetRatio: o.coresetRatio, speed: o.speed,
  };
  const inputFile = path.join(o.dir, 'peer-input.json');
  await writeJsonAtomic(inputFile, input);
  await runLogged(o.python, [PEER_SCRIPT, '--model', o.peer, '--input', inputFile, '--weights', o.teacher.file, '--out', o.dir], path.join(o.dir, 'log.txt'),
    `anomalib ${o.peer} on ${o.dataset.id} (rerun the same command to resume)`, { ...process.env, PYTHONWARNINGS: 'ignore' });
  const tool = JSON.parse(await readFile(path.join(o.dir, 'peer.json'), 'utf8')) as Record<string, unknown>;
  const size = c.model.imageSize, hw = size * size, n = ds.test.length;
  const scores = await readF32(path.join(o.dir, 'scores.f32'), n);
  const maps = await readF32(path.join(o.dir, 'maps.f32'), n * hw);
  const gt = await loadTestMasks(ds, size);
  const labels = ds.test.map((t) => t.label);
  const rec: PeerRunRecord = {
    kind: 'peer', dataset: o.dataset.id, name: o.peer, teacher: o.teacher.description, tool,
    metrics: mapMetrics(scores, labels, maps, gt, size),
    images: ds.test.map((t, i) => ({ file: path.relative(ds.root, t.path).split(path.sep).join('/'), label: t.label, score: scores[i]! })),
    finishedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(path.join(o.dir, 'run.json'), rec);
  return rec;
}

async function readF32(file: string, count: number): Promise<Float32Array> {
  const b = await readFile(file);
  if (b.byteLength !== count * 4) throw new Error(`${file}: expected ${count} float32 values, found ${b.byteLength / 4}`);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
