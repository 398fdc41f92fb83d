import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Tf } from '../backend/index.js';
import { NTSNet } from '../model/ntsnet.js';
import type { ParamMap } from '../model/params.js';
import { paramsToRaw } from '../model/params.js';
import { teacherShapes, studentShapes, isRunningStat } from '../model/networks.js';
import { parseSafetensors, serializeSafetensors, type RawStateDict } from '../model/weights/safetensors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { validateRunConfig, type RunConfig } from './config.js';
import type { SavedSplit } from '../data/folder.js';

/** Checkpoint format version; bumped when the layout changes so older files are refused with a message. */
export const CHECKPOINT_FORMAT = 1;
export const WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';

/** Metadata stored inside the checkpoint (and mirrored to config.json for people). Holds no absolute paths. */
export interface CheckpointMeta {
  format: number;
  ntsnetVersion: string;
  config: RunConfig;
  /** Where the teacher weights came from (file name only) and whether they are the ImageNet checkpoint. */
  teacher: { source: string; sha256: string | null; imagenet: boolean };
  /** Epoch (1-based) with the best validation loss, and that loss. */
  bestEpoch: number;
  bestValLoss: number | null;
  /** Image-level scores of the held-out normal validation images (for thresholds and heat-map scaling). */
  valScores: number[];
  /** The seeded split (file names relative to the dataset root), to evaluate on exactly the same test files. */
  split: SavedSplit;
  createdAt: string;
}

function stateWithPrefix(prefix: string, p: ParamMap, into: RawStateDict): void {
  for (const [k, v] of paramsToRaw(p)) into.set(`${prefix}.${k}`, v);
}

/**
 * Writes a checkpoint folder: `model.safetensors` (teacher.* and student.* tensors in TF layout, metadata embedded)
 * and `config.json` (the same metadata, for people). Each file is written atomically (temp file + rename), so an
 * interrupted save leaves the previous good checkpoint in place.
 */
export async function saveCheckpoint(dir: string, model: NTSNet, meta: CheckpointMeta): Promise<void> {
  const state: RawStateDict = new Map();
  stateWithPrefix('teacher', model.teacher, state);
  stateWithPrefix('student', model.student, state);
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), serializeSafetensors(state, { ntsnet: JSON.stringify(meta) }));
  await writeJsonAtomic(path.join(dir, CONFIG_FILE), meta);
}

function readMeta(buf: Buffer, file: string): CheckpointMeta {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as { __metadata__?: { ntsnet?: string } };
  const raw = header.__metadata__?.ntsnet;
  if (!raw) throw new Error(`${file} is not an ntsnet checkpoint (no 'ntsnet' metadata). Pass the folder written by 'ntsnet fit'.`);
  const meta = JSON.parse(raw) as CheckpointMeta;
  if (meta.format !== CHECKPOINT_FORMAT)
    throw new Error(`${file} has checkpoint format ${meta.format}; this ntsnet reads format ${CHECKPOINT_FORMAT}. Retrain with this version or use the ntsnet version that wrote it (${meta.ntsnetVersion}).`);
  validateRunConfig(meta.config);
  return meta;
}

function toParams(tf: Tf, state: RawStateDict, prefix: string, shapes: Map<string, number[]>, file: string): ParamMap {
  const p: ParamMap = new Map();
  const problems: string[] = [];
  for (const [name, shape] of shapes) {
    const t = state.get(`${prefix}.${name}`);
    if (!t) problems.push(`missing ${prefix}.${name}`);
    else if (t.shape.join(',') !== shape.join(',')) problems.push(`${prefix}.${name} has shape [${t.shape}], config expects [${shape}]`);
    else p.set(name, tf.variable(tf.tensor(t.data, t.shape, 'float32'), prefix === 'student' && !isRunningStat(name)));
  }
  if (problems.length) {
    for (const v of p.values()) v.dispose();
    throw new Error(`${file} does not match its own config (${problems.length} problems):\n  - ${problems.slice(0, 8).join('\n  - ')}`);
  }
  return p;
}

/**
 * Loads a checkpoint folder (or its model.safetensors file) written by {@link saveCheckpoint}.
 * @throws Error naming the file if it is missing, not an ntsnet checkpoint, of another format version, or its
 *   tensors do not match its config.
 */
export async function loadCheckpoint(tf: Tf, location: string): Promise<{ model: NTSNet; meta: CheckpointMeta; file: string }> {
  const file = location.endsWith('.safetensors') ? location : path.join(location, WEIGHTS_FILE);
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    throw new Error(`Checkpoint not found: ${file}. Pass the output folder of 'ntsnet fit' (it contains ${WEIGHTS_FILE}).`);
  }
  const meta = readMeta(buf, file);
  const state = parseSafetensors(buf, file);
  const teacher = toParams(tf, state, 'teacher', teacherShapes(meta.config.model), file);
  const student = toParams(tf, state, 'student', studentShapes(meta.config.model), file);
  return { model: new NTSNet(tf, meta.config.model, teacher, student), meta, file };
}

/** Reads only the metadata of a checkpoint. */
export async function readCheckpointMeta(location: string): Promise<CheckpointMeta> {
  const file = location.endsWith('.safetensors') ? location : path.join(location, WEIGHTS_FILE);
  return readMeta(await readFile(file), file);
}
