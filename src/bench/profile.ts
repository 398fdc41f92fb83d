/**
 * Per-op profiles of the speed benchmark (issue 11): where a training step and an inference pass spend their time,
 * grouped by kernel (TF.js: tf.profile's per-kernel wall times; onnxruntime: its session profiler's node events).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { loadOrt } from '../engine/onnxPredict.js';
import type { ModelConfig } from '../model/config.js';
import { NTSNet } from '../model/ntsnet.js';
import type { RawStateDict } from '../model/weights/safetensors.js';

/** Time of one kernel (op type) summed over a profiled pass. */
export interface OpTime {
  op: string;
  ms: number;
  /** Fraction of the pass's summed kernel time. */
  share: number;
  calls: number;
}

/** A profiled pass: its kernels by descending time. */
export interface OpProfile {
  what: string;
  engine: string;
  imageSize: number;
  batchSize: number;
  /** Sum of kernel times, ms (below wall time: dispatch and data movement between kernels are not counted). */
  kernelMs: number;
  /** Wall time of the profiled pass, ms (with the profiler's own overhead). */
  wallMs: number;
  ops: OpTime[];
}

function group(what: string, engine: string, imageSize: number, batchSize: number, wallMs: number, entries: { op: string; ms: number }[]): OpProfile {
  const by = new Map<string, { ms: number; calls: number }>();
  for (const e of entries) {
    const g = by.get(e.op) ?? { ms: 0, calls: 0 };
    g.ms += e.ms; g.calls++;
    by.set(e.op, g);
  }
  const kernelMs = [...by.values()].reduce((a, g) => a + g.ms, 0);
  const ops = [...by].map(([op, g]) => ({ op, ms: g.ms, share: kernelMs > 0 ? g.ms / kernelMs : 0, calls: g.calls })).sort((a, b) => b.ms - a.ms);
  return { what, engine, imageSize, batchSize, kernelMs, wallMs, ops };
}

async function tfProfile(tf: Tf, f: () => void): Promise<{ entries: { op: string; ms: number }[]; wallMs: number }> {
  // The profiler reads every kernel's output back to check it for NaN unless told not to; that is not the model's cost.
  const check = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  try {
    const t0 = performance.now();
    const info = await tf.profile(f);
    const wallMs = performance.now() - t0;
    return { entries: info.kernels.map((k) => ({ op: k.name, ms: typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0 })), wallMs };
  } finally {
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', check);
  }
}

/**
 * Profiles one training step of a fresh model as `fit` runs it (after one untimed step): student forward, loss,
 * gradients, SGD update, running statistics, and the teacher's forward pass unless its features are cached (a
 * `frozen_bn` teacher, engine/teacherCache.ts). @param teacher - torchvision state dict of the teacher.
 */
export async function tfjsTrainProfile(tf: Tf, cfg: ModelConfig, teacher: RawStateDict, seed: number, batchSize: number): Promise<OpProfile> {
  const model = NTSNet.create(tf, cfg, teacher, seed);
  const opt = tf.train.momentum(0.4, 0.9);
  const x = tf.randomNormal([batchSize, cfg.imageSize, cfg.imageSize, 3], 0, 1, 'float32', 3) as Tensor4D;
  try {
    const ft = cfg.teacherNorm === 'frozen_bn' ? model.teacherFeatures(x) : undefined;
    const step = (): void => void model.trainStep(x, opt, { weightDecay: 1e-4, lossReduction: 'sum' }, ft);
    try {
      step();
      const { entries, wallMs } = await tfProfile(tf, step);
      return group(`training step${ft ? ' (teacher features cached)' : ''}`, 'tfjs-node fp32', cfg.imageSize, batchSize, wallMs, entries);
    } finally {
      for (const t of ft ?? []) t.dispose();
    }
  } finally {
    x.dispose();
    opt.dispose();
    model.dispose();
  }
}

/** Profiles one NTSNet.predict pass (maps and scores read back), after one untimed pass. */
export async function tfjsInferenceProfile(tf: Tf, model: NTSNet, batchSize: number): Promise<OpProfile> {
  const S = model.config.imageSize;
  const x = tf.randomNormal([batchSize, S, S, 3], 0, 1, 'float32', 4) as Tensor4D;
  const pass = (): void => {
    const p = model.predict(x);
    p.maps.dataSync(); p.scores.dataSync();
    p.maps.dispose(); p.scores.dispose();
  };
  try {
    pass();
    const { entries, wallMs } = await tfProfile(tf, pass);
    return group('inference', 'tfjs-node fp32', S, batchSize, wallMs, entries);
  } finally {
    x.dispose();
  }
}

interface OrtEvent { cat?: string; name?: string; ts?: number; dur?: number; args?: { op_name?: string } }

/**
 * Profiles `passes` inference passes of an ONNX file with onnxruntime's session profiler (after one untimed pass);
 * times are per pass. The profiler's JSON is written under `dir` and removed after reading.
 */
export async function ortProfile(file: string, engine: string, size: number, batchSize: number, dir: string, passes = 3): Promise<OpProfile> {
  const ort = await loadOrt();
  const prefix = path.join(dir, `ort-profile-${process.pid}`);
  const session = await ort.InferenceSession.create(file, {
    graphOptimizationLevel: 'all', executionProviders: ['cpu'], enableProfiling: true, profileFilePrefix: prefix,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  const x = new Float32Array(batchSize * 3 * size * size).map((_, i) => Math.sin(i) * 2);
  const input = new ort.Tensor('float32', x, [batchSize, 3, size, size]);
  const name = session.inputNames[0]!;
  try {
    await session.run({ [name]: input });
    const t0 = performance.now();
    for (let i = 0; i < passes; i++) await session.run({ [name]: input });
    const wallMs = (performance.now() - t0) / passes;
    session.endProfiling();
    const files = (await readdir(dir)).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.json'));
    if (!files.length) throw new Error(`onnxruntime wrote no profile under ${dir}`);
    const events: OrtEvent[] = [];
    for (const f of files) {
      events.push(...(JSON.parse(await readFile(path.join(dir, f), 'utf8')) as OrtEvent[]));
      await rm(path.join(dir, f), { force: true });
    }
    // The profiler is on from loading: the warm-up pass (the first model_run) is left out.
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
    const warmEnd = runs.length > passes ? (runs[0]!.ts ?? 0) + (runs[0]!.dur ?? 0) : -Infinity;
    const entries = events
      .filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time') && e.args?.op_name && (e.ts ?? 0) > warmEnd)
      .map((e) => ({ op: e.args!.op_name!, ms: (e.dur ?? 0) / 1000 / passes }));
    const p = group('inference', engine, size, batchSize, wallMs, entries);
    return { ...p, ops: p.ops.map((o) => ({ ...o, calls: o.calls / passes })) };
  } finally {
    input.dispose();
    await session.release();
  }
}
