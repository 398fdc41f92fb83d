import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import type { LayerId, ModelConfig } from '../model/config.js';
import type { CotOptions } from '../model/cot.js';
import { NTSNet } from '../model/ntsnet.js';
import type { ParamMap } from '../model/params.js';
import { paramsToRaw } from '../model/params.js';
import { teacherShapes, studentShapes, isRunningStat, maxLayer } from '../model/networks.js';
import type { TeacherIdentity } from '../model/weights/resolve.js';
import { parseSafetensors, serializeSafetensors, type RawStateDict } from '../model/weights/safetensors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { validateRunConfig, type RunConfig } from './config.js';
import { NTSNET_VERSION } from './paths.js';
import type { SavedSplit } from '../data/folder.js';
import { processAlive } from '../util/process.js';

/** Checkpoint format version; bumped when the layout changes so older files are refused with a message. */
export const CHECKPOINT_FORMAT = 1;
export const WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';

/** Metadata stored inside the checkpoint (and mirrored to config.json for people). Holds no absolute paths. */
export interface CheckpointMeta {
  format: number;
  ntsnetVersion: string;
  config: RunConfig;
  /** What the teacher is: file name only, SHA-256, ImageNet or not, which known form (engine/weights identifyTeacher). */
  teacher: TeacherIdentity;
  /** Epoch (1-based) with the best validation loss, and that loss. */
  bestEpoch: number;
  bestValLoss: number | null;
  /** Image-level scores of the held-out normal validation images (for thresholds and heat-map scaling). */
  valScores: number[];
  thresholds?: import('./threshold.js').Thresholds; // decision thresholds calibrated at save time (engine/threshold.ts); absent in older checkpoints
  /** Detector-health check of the saved model on the calibration images (engine/health.ts); absent in older checkpoints. */
  health?: import('./health.js').DetectorHealth;
  /** Detection of synthetic defects pasted into the calibration images (engine/synthetic.ts); absent in older checkpoints. */
  expectedDetection?: import('./synthetic.js').ExpectedDetection;
  /** The seeded split (file names relative to the dataset root), to evaluate on exactly the same test files. */
  split: SavedSplit;
  createdAt: string;
  /**
   * SHA-256 of the tensors ({@link weightsSha256}: names, shapes and float32 bytes, by name), written by
   * {@link saveCheckpoint} and checked by {@link loadCheckpoint}; also the identity an ONNX export is bound to.
   * Absent in checkpoints of older ntsnet versions.
   */
  weightsSha256?: string;
  /** Whether training finished (see {@link TrainingState}); config.json holds the latest state. Absent in older checkpoints. */
  training?: TrainingState;
}

/**
 * State of the training run that wrote a checkpoint. `complete`: all epochs ran. `running`: `epochsDone` of `epochs`
 * finished when last written, by process `pid` (if that process is gone, it was killed: the run is incomplete).
 * `interrupted`: stopped (Ctrl-C / SIGTERM) after `epochsDone` epochs; `ntsnet fit --resume` continues it.
 */
export interface TrainingState {
  status: 'complete' | 'running' | 'interrupted';
  epochsDone: number;
  epochs: number;
  pid?: number;
  updatedAt: string;
}

/**
 * SHA-256 (hex) of a state dict: for each tensor in name order, its name, its shape and its float32 bytes. Independent
 * of the file's header layout and metadata, so it identifies the weights themselves.
 */
export function weightsSha256(state: RawStateDict): string {
  const h = createHash('sha256');
  for (const name of [...state.keys()].sort()) {
    const t = state.get(name)!;
    h.update(`${name}\u0000${t.shape.join(',')}\u0000`);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

/**
 * A warning for a checkpoint whose training did not finish (or undefined when it did, or when the state is unknown):
 * says at which epoch it stopped and how to continue. Used by `test`, `predict` and `report`.
 */
export function incompleteTrainingWarning(meta: CheckpointMeta, location: string): string | undefined {
  const t = meta.training;
  if (!t || t.status === 'complete') return undefined;
  const alive = t.status === 'running' && t.pid !== undefined && t.pid !== process.pid && processAlive(t.pid);
  const what = alive ? `is still being trained (process ${t.pid}, epoch ${t.epochsDone} of ${t.epochs} done)` : `is INCOMPLETE: training ${t.status === 'interrupted' ? 'was interrupted' : 'stopped (the process was killed)'} after epoch ${t.epochsDone} of ${t.epochs}`;
  return `checkpoint ${location} ${what}; it holds the best epoch so far (${meta.bestEpoch}). ${alive ? 'Wait for it to finish' : `Continue it with 'ntsnet fit --resume --out ${location}' (same data flags)`}, or use it knowingly.`;
}

function stateWithPrefix(prefix: string, p: ParamMap, into: RawStateDict): void {
  for (const [k, v] of paramsToRaw(p)) into.set(`${prefix}.${k}`, v);
}

/**
 * Writes a checkpoint folder: `model.safetensors` (teacher.* and student.* tensors in TF layout, metadata embedded)
 * and `config.json` (the same metadata, for people). Each file is written atomically (temp file + rename), so an
 * interrupted save leaves the previous good checkpoint in place. Temporary files left in `dir` by an earlier save
 * that was killed mid-write (their process is gone) are removed first.
 */
export async function saveCheckpoint(dir: string, model: NTSNet, meta: CheckpointMeta): Promise<CheckpointMeta> {
  const state: RawStateDict = new Map();
  stateWithPrefix('teacher', model.teacher, state);
  stateWithPrefix('student', model.student, state);
  const full: CheckpointMeta = { ...meta, weightsSha256: weightsSha256(state) };
  await removeStaleTempFiles(dir);
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), serializeSafetensors(state, { ntsnet: JSON.stringify(full) }));
  await writeJsonAtomic(path.join(dir, CONFIG_FILE), full);
  return full;
}

/**
 * Records the training state in the checkpoint's config.json (atomically; model.safetensors is not rewritten, its
 * embedded state is the one of its own save). Readers take config.json's state when its `weightsSha256` is the
 * checkpoint's (see {@link loadCheckpoint}).
 */
export async function writeTrainingState(dir: string, meta: CheckpointMeta, training: TrainingState): Promise<void> {
  await writeJsonAtomic(path.join(dir, CONFIG_FILE), { ...meta, training });
}

/**
 * Sets the training state of the checkpoint in `dir` in both files (model.safetensors is rewritten with the same
 * tensors, so its SHA-256 is unchanged), e.g. `complete` at the end of fit. @returns the updated metadata.
 */
export async function markTrainingState(dir: string, training: TrainingState): Promise<CheckpointMeta> {
  const { file, buf } = await readCheckpointFile(dir);
  const meta: CheckpointMeta = { ...readMeta(buf, file), training };
  await writeFileAtomic(file, serializeSafetensors(parseSafetensors(buf, file), { ntsnet: JSON.stringify(meta) }));
  await writeJsonAtomic(path.join(dir, CONFIG_FILE), meta);
  return meta;
}

/** The latest training state: config.json's when it belongs to the same weights, else the embedded one. */
async function latestTrainingState(file: string, meta: CheckpointMeta): Promise<TrainingState | undefined> {
  try {
    const cfg = JSON.parse(await readFile(path.join(path.dirname(file), CONFIG_FILE), 'utf8')) as Partial<CheckpointMeta>;
    if (cfg.weightsSha256 && cfg.weightsSha256 === meta.weightsSha256 && cfg.training) return cfg.training;
  } catch {
    /* no or unreadable config.json: the embedded state */
  }
  return meta.training;
}

const escapeRe = (t: string): string => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Names of writeFileAtomic's temporary files for the checkpoint files: `.tmp-<name>-<pid>-<hex>`. */
const TEMP_FILE_RE = new RegExp(`^\\.tmp-(?:${escapeRe(WEIGHTS_FILE)}|${escapeRe(CONFIG_FILE)})-(\\d+)-[0-9a-f]+$`);


/**
 * Removes the temporary checkpoint files of saves that were interrupted (process killed mid-write) from `dir`; files
 * of a live process (possibly still writing) are kept. @returns the removed file names.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TEMP_FILE_RE.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    await rm(path.join(dir, n), { force: true }).catch(() => undefined);
    removed.push(n);
  }
  return removed;
}

type SafetensorsHeader = Record<string, unknown> & { __metadata__?: Record<string, string> };

/** Reads and checks the header and the embedded metadata; refuses truncated files with a message saying so. */
function readMeta(buf: Buffer, file: string): CheckpointMeta {
  const retrain = `Restore the file written by 'ntsnet fit' or retrain.`;
  if (buf.length < 8) throw new Error(`${file} is truncated (${buf.length} bytes): probably an interrupted copy or download. ${retrain}`);
  const n = Number(buf.readBigUInt64LE(0));
  if (!(n > 1 && n < 1 << 30)) throw new Error(`${file} is not a safetensors file (header length ${n}). Pass the folder written by 'ntsnet fit'.`);
  if (8 + n > buf.length) throw new Error(`${file} is truncated (${buf.length} bytes, its header alone needs ${8 + n}): probably an interrupted copy or download. ${retrain}`);
  let header: SafetensorsHeader;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as SafetensorsHeader;
  } catch {
    throw new Error(`${file} is not a safetensors file (its header is not JSON). Pass the folder written by 'ntsnet fit'.`);
  }
  let end = 0;
  for (const [k, v] of Object.entries(header)) {
    const off = k === '__metadata__' ? undefined : (v as { data_offsets?: unknown }).data_offsets;
    if (Array.isArray(off) && typeof off[1] === 'number') end = Math.max(end, off[1]);
  }
  if (8 + n + end > buf.length)
    throw new Error(`${file} is truncated (${buf.length} bytes of ${8 + n + end}): probably an interrupted copy or download. ${retrain}`);
  const raw = header.__metadata__?.ntsnet;
  if (!raw) throw new Error(`${file} is not an ntsnet checkpoint (no 'ntsnet' metadata). Pass the folder written by 'ntsnet fit'.`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(raw) as CheckpointMeta;
  } catch {
    throw new Error(`${file}: the embedded ntsnet metadata is not valid JSON. ${retrain}`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT)
    throw new Error(`${file} has checkpoint format ${meta?.format ?? '(none)'}; this ntsnet (${NTSNET_VERSION}) reads format ${CHECKPOINT_FORMAT}. Retrain with this version or use the ntsnet version that wrote it (${meta?.ntsnetVersion ?? 'unknown'}).`);
  try {
    validateRunConfig(meta.config);
  } catch (e) {
    throw new Error(`${file}: the config stored in the checkpoint is invalid. ${(e as Error).message}`);
  }
  return meta;
}

type Shapes = Map<string, number[]>;

/** Names (without the `teacher.` / `student.` prefix) and shapes of one network's tensors in a checkpoint. */
function storedShapes(state: RawStateDict, prefix: string): Shapes {
  const out: Shapes = new Map();
  for (const [k, t] of state) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), t.shape);
  return out;
}

function sameShapes(a: Shapes, b: Shapes): boolean {
  if (a.size !== b.size) return false;
  for (const [k, s] of a) if (b.get(k)?.join(',') !== s.join(',')) return false;
  return true;
}

/** Missing, mis-shaped and unexpected tensors of one network, one line each. */
function shapeProblems(stored: Shapes, expected: Shapes, prefix: string): string[] {
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const s = stored.get(name);
    if (!s) problems.push(`missing ${prefix}.${name}`);
    else if (s.join(',') !== shape.join(',')) problems.push(`${prefix}.${name} has shape [${s}], config expects [${shape}]`);
  }
  for (const name of stored.keys()) if (!expected.has(name)) problems.push(`unexpected ${prefix}.${name}`);
  return problems;
}

/** The structure the tensors of a checkpoint have, found by matching them against candidate model configs. */
export interface TensorStructure {
  teacher?: { teacherDepth: 18 | 34; upTo: LayerId };
  student?: { studentBlock: 'cot' | 'basic'; studentDepth: 18 | 34; upTo: LayerId; cot?: CotOptions };
}

const DEPTHS = [18, 34] as const;
const UP_TO: readonly LayerId[] = [1, 2, 3];

/**
 * Finds which teacher depth / deepest layer and which student block / depth / deepest layer (and CoT options) give
 * exactly the tensor names and shapes stored in `state`, by comparing them with {@link teacherShapes} and
 * {@link studentShapes} of candidate configs derived from `base`. A part is left out when no candidate matches.
 */
export function inferTensorStructure(state: RawStateDict, base: ModelConfig): TensorStructure {
  const t = storedShapes(state, 'teacher');
  const s = storedShapes(state, 'student');
  const out: TensorStructure = {};
  for (const teacherDepth of DEPTHS)
    for (const upTo of UP_TO)
      if (!out.teacher && sameShapes(t, teacherShapes({ ...base, teacherDepth, layers: [upTo] }))) out.teacher = { teacherDepth, upTo };
  // CoT options: the config's own first, then groups and heads read from the first block and every usual reduction.
  const cots: CotOptions[] = [base.cot];
  const key = s.get('layer1.0.conv1.key.conv.weight'), attn = s.get('layer1.0.conv1.attn.1.weight');
  if (key?.length === 4 && attn?.length === 4 && key[2]! > 0) {
    const groups = 64 / key[2]!, heads = attn[3]! / 9;
    if (Number.isInteger(groups) && Number.isInteger(heads) && heads > 0)
      for (const reduction of [1, 2, 4, 8, 16, 32, 64]) cots.push({ groups, heads, reduction });
  }
  search: for (const studentBlock of ['cot', 'basic'] as const)
    for (const studentDepth of DEPTHS)
      for (const upTo of UP_TO)
        for (const cot of studentBlock === 'cot' ? cots : [base.cot])
          if (sameShapes(s, studentShapes({ ...base, studentBlock, studentDepth, layers: [upTo], cot }))) {
            out.student = { studentBlock, studentDepth, upTo, ...(studentBlock === 'cot' ? { cot } : {}) };
            break search;
          }
  return out;
}

/**
 * Says which config fields disagree with the tensors, e.g. "config says studentBlock=basic but the tensors are
 * those of studentBlock=cot"; undefined when the tensors match no candidate config (or the same one).
 */
export function describeConfigMismatch(cfg: ModelConfig, st: TensorStructure): string | undefined {
  if (!st.teacher || !st.student) return undefined;
  const said: string[] = [], found: string[] = [];
  const diff = (name: string, a: unknown, b: unknown): void => {
    if (String(a) !== String(b)) { said.push(`${name}=${String(a)}`); found.push(`${name}=${String(b)}`); }
  };
  diff('studentBlock', cfg.studentBlock, st.student.studentBlock);
  diff('studentDepth', cfg.studentDepth, st.student.studentDepth);
  diff('teacherDepth', cfg.teacherDepth, st.teacher.teacherDepth);
  const deepest = maxLayer(cfg.layers);
  if (deepest !== st.student.upTo || deepest !== st.teacher.upTo) {
    said.push(`layers=${cfg.layers.join(',')} (deepest layer${deepest})`);
    found.push(st.student.upTo === st.teacher.upTo
      ? `layers up to layer${st.student.upTo}`
      : `student layers up to layer${st.student.upTo} and teacher layers up to layer${st.teacher.upTo}`);
  }
  if (cfg.studentBlock === 'cot' && st.student.cot)
    for (const k of ['groups', 'heads', 'reduction'] as const) diff(`cot.${k}`, cfg.cot[k], st.student.cot[k]);
  return said.length ? `config says ${said.join(', ')} but the tensors are those of ${found.join(', ')}` : undefined;
}

function toParams(tf: Tf, state: RawStateDict, prefix: string, shapes: Shapes): ParamMap {
  const p: ParamMap = new Map();
  for (const [name, shape] of shapes) {
    const init = tf.tensor(state.get(`${prefix}.${name}`)!.data, shape, 'float32');
    p.set(name, tf.variable(init, prefix === 'student' && !isRunningStat(name)));
    init.dispose(); // the variable keeps its own reference to the data
  }
  return p;
}

/**
 * Loads a checkpoint folder (or its model.safetensors file) written by {@link saveCheckpoint}.
 * @throws Error naming the file if it is missing, truncated, not an ntsnet checkpoint, of another format version, or
 *   its tensors do not match its config (the message names the config fields that differ when it can tell).
 */
export async function loadCheckpoint(tf: Tf, location: string): Promise<{ model: NTSNet; meta: CheckpointMeta; file: string }> {
  const { file, buf } = await readCheckpointFile(location);
  const meta = readMeta(buf, file);
  const state = parseSafetensors(buf, file);
  const cfg = meta.config.model;
  const tShapes = teacherShapes(cfg), sShapes = studentShapes(cfg);
  const problems = [
    ...shapeProblems(storedShapes(state, 'teacher'), tShapes, 'teacher'),
    ...shapeProblems(storedShapes(state, 'student'), sShapes, 'student'),
    ...[...state.keys()].filter((k) => !k.startsWith('teacher.') && !k.startsWith('student.')).map((k) => `unexpected ${k}`),
  ];
  if (problems.length) {
    const why = describeConfigMismatch(cfg, inferTensorStructure(state, cfg));
    throw new Error(
      `${file} does not match its own config: ${why ?? `${problems.length} tensor problem(s)`}. ` +
        `The embedded config was edited or the file mixes two runs; use the checkpoint as written by 'ntsnet fit', or retrain.\n` +
        `  - ${problems.slice(0, 8).join('\n  - ')}${problems.length > 8 ? `\n  - ... (${problems.length - 8} more)` : ''}`,
    );
  }
  if (meta.weightsSha256 !== undefined) {
    const got = weightsSha256(state);
    if (got !== meta.weightsSha256)
      throw new Error(`${file} is corrupt: its tensors have SHA-256 ${got.slice(0, 16)}..., but the checkpoint recorded ${meta.weightsSha256.slice(0, 16)}... when it was written (damaged or partly overwritten copy). Restore the file written by 'ntsnet fit' (copy it again) or retrain.`);
  }
  meta.training = await latestTrainingState(file, meta);
  const teacher = toParams(tf, state, 'teacher', tShapes);
  const student = toParams(tf, state, 'student', sShapes);
  return { model: new NTSNet(tf, cfg, teacher, student), meta, file };
}

/** The weights file of a checkpoint given as its folder (`<folder>/model.safetensors`) or as the `.safetensors` file itself. */
export function checkpointWeightsFile(location: string): string {
  return location.endsWith('.safetensors') ? location : path.join(location, WEIGHTS_FILE);
}

/** Reads a checkpoint's model.safetensors (given the folder or the file). @throws Error saying what to pass when missing. */
async function readCheckpointFile(location: string): Promise<{ file: string; buf: Buffer }> {
  const file = checkpointWeightsFile(location);
  try {
    return { file, buf: await readFile(file) };
  } catch {
    throw new Error(`Checkpoint not found: ${file}. Pass the output folder of 'ntsnet fit' (it contains ${WEIGHTS_FILE}).`);
  }
}

/** Reads only the metadata of a checkpoint. */
export async function readCheckpointMeta(location: string): Promise<CheckpointMeta> {
  const { file, buf } = await readCheckpointFile(location);
  const meta = readMeta(buf, file);
  meta.training = await latestTrainingState(file, meta);
  return meta;
}
