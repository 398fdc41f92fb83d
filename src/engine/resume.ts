/**
 * The resume state of a training run (`resume.safetensors` in the output folder), written atomically after every
 * epoch: the CURRENT teacher and student tensors (not the best checkpoint's), the optimiser's state (iterations and
 * slots, in the optimiser's own order) and the loop state (epochs done, best epoch and loss, history, the best
 * checkpoint's metadata). `ntsnet fit --resume` restores it and continues with the next epoch; with the same data
 * and seed the result equals the uninterrupted run's (epoch shuffles are seeded per epoch).
 */
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { Optimizer } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { NTSNet } from '../model/ntsnet.js';
import { paramsToRaw, type ParamMap } from '../model/params.js';
import { parseSafetensors, serializeSafetensors, type RawStateDict } from '../model/weights/safetensors.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { CheckpointMeta } from './checkpoint.js';
import type { RunConfig } from './config.js';
import type { EpochRecord } from './fit.js';

export const RESUME_FILE = 'resume.safetensors';
const RESUME_FORMAT = 1;

/** The loop state stored with the tensors. */
export interface ResumeInfo {
  format: number;
  config: RunConfig;
  epochsDone: number;
  best?: { epoch: number; loss: number; synthetic?: number | null };
  history: EpochRecord[];
  /** Metadata of the best checkpoint written so far (model.safetensors). */
  bestMeta?: CheckpointMeta;
  thresholdWarned: boolean;
  /** Names of the optimiser's weights, in its order (the tensors are `optimizer.<index>`). */
  optimizerWeights: string[];
}

/** Writes the resume state after an epoch (atomically). */
export async function saveResumeState(dir: string, model: NTSNet, optimizer: Optimizer, info: Omit<ResumeInfo, 'format' | 'optimizerWeights'>): Promise<void> {
  const state: RawStateDict = new Map();
  const add = (prefix: string, p: ParamMap): void => { for (const [k, v] of paramsToRaw(p)) state.set(`${prefix}.${k}`, v); };
  add('teacher', model.teacher);
  add('student', model.student);
  const weights = await optimizer.getWeights();
  weights.forEach((w, i) => state.set(`optimizer.${String(i).padStart(5, '0')}`, { shape: [...w.tensor.shape], data: Float32Array.from(w.tensor.dataSync()) }));
  const full: ResumeInfo = { ...info, format: RESUME_FORMAT, optimizerWeights: weights.map((w) => w.name) };
  // getWeights() makes a new scalar for the iteration count (the slots are the optimiser's own variables).
  for (const w of weights) if (w.name === 'iter') w.tensor.dispose();
  await writeFileAtomic(path.join(dir, RESUME_FILE), serializeSafetensors(state, { ntsnet_resume: JSON.stringify(full) }));
}

/** Reads the resume state of `dir`, or undefined when there is none. @throws Error naming the file when it is damaged. */
export async function readResumeState(dir: string): Promise<{ info: ResumeInfo; state: RawStateDict } | undefined> {
  const file = path.join(dir, RESUME_FILE);
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return undefined;
  }
  try {
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as { __metadata__?: Record<string, string> };
    const info = JSON.parse(header.__metadata__?.ntsnet_resume ?? 'null') as ResumeInfo | null;
    if (!info || info.format !== RESUME_FORMAT) throw new Error('not a resume file of this ntsnet version');
    return { info, state: parseSafetensors(buf, file) };
  } catch (e) {
    throw new Error(`${file} cannot be read (${(e as Error).message}): the resume state is damaged. Start over with --force (the checkpoint of the best epoch so far is replaced).`, { cause: e });
  }
}

/** Restores the model tensors and the optimiser state saved by {@link saveResumeState}. */
export async function restoreResumeState(tf: Tf, model: NTSNet, optimizer: Optimizer, saved: { info: ResumeInfo; state: RawStateDict }): Promise<void> {
  for (const [prefix, p] of [['teacher', model.teacher], ['student', model.student]] as const)
    for (const [name, v] of p) {
      const t = saved.state.get(`${prefix}.${name}`);
      if (!t) throw new Error(`the resume state has no ${prefix}.${name}: it is from another model; start over with --force.`);
      const value = tf.tensor(t.data, t.shape, 'float32');
      v.assign(value);
      value.dispose();
    }
  const weights = saved.info.optimizerWeights.map((name, i) => {
    const t = saved.state.get(`optimizer.${String(i).padStart(5, '0')}`)!;
    return { name, tensor: tf.tensor(t.data, t.shape, 'float32') };
  });
  await optimizer.setWeights(weights);
  for (const w of weights) w.tensor.dispose();
}

/** Removes the resume state (after a complete run). */
export async function removeResumeState(dir: string): Promise<void> {
  await rm(path.join(dir, RESUME_FILE), { force: true });
}
