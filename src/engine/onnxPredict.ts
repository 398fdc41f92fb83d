/**
 * Inference of an exported NTSNet ONNX model (src/export/onnx.ts) with onnxruntime-node (CPU), and a throughput
 * comparison with TF.js. onnxruntime-node is loaded lazily, so the rest of ntsnet never loads its native library.
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { ONNX_INPUT, ONNX_MAPS, ONNX_SCORES, readOnnxSummary } from '../export/onnx.js';
import { int8CpuProblem } from '../export/quantize.js';
import { readFile } from 'node:fs/promises';
import type { NTSNet } from '../model/ntsnet.js';
import { measureInference, speedOf, timeRuns, type SpeedResult } from './speed.js';

type Ort = typeof import('onnxruntime-node');
let ortModule: Ort | undefined;

/** Loads onnxruntime-node (once). @throws Error with the install command when it is missing or its binary does not load. */
export async function loadOrt(): Promise<Ort> {
  if (ortModule) return ortModule;
  try {
    const m = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    ortModule = m.InferenceSession ? m : m.default!;
    return ortModule;
  } catch (e) {
    throw new Error(
      `onnxruntime-node could not be loaded: ${(e as Error).message.split('\n')[0]}\n` +
        `Fix: 'npm ci --ignore-scripts' installs it with its bundled CPU binaries (its install script only adds CUDA libraries).`,
    );
  }
}

/** RGB images [b, h, w, 3] (ntsnet's layout) -> [b, 3, h, w] (the ONNX graph's), float32. */
export function nhwcToNchw(x: Float32Array, b: number, h: number, w: number): Float32Array {
  const plane = h * w;
  const nchw = new Float32Array(x.length);
  for (let i = 0; i < b; i++) {
    const at = i * plane * 3;
    for (let p = 0; p < plane; p++) {
      nchw[at + p] = x[at + 3 * p]!;
      nchw[at + plane + p] = x[at + 3 * p + 1]!;
      nchw[at + 2 * plane + p] = x[at + 3 * p + 2]!;
    }
  }
  return nchw;
}

/** Weight bits recorded in an int8 export's `ntsnet.quantization` metadata (7 for older int8 files; undefined for float32 or unreadable files). */
function int8WeightBitsOf(bytes: Uint8Array): number | undefined {
  try {
    const q = readOnnxSummary(bytes).metadata['ntsnet.quantization'];
    return q === undefined ? undefined : ((JSON.parse(q) as { weightBits?: number }).weightBits ?? 7);
  } catch {
    return undefined; // onnxruntime's own load error says what is wrong with the file
  }
}

/** Options of {@link OnnxDetector.load}. */
export interface OnnxDetectorOptions {
  /** Threads of one operator (default: onnxruntime's choice, the number of physical cores). */
  intraOpThreads?: number;
  /**
   * Let idle onnxruntime worker threads spin (busy-wait) for work (onnxruntime's default). Off by default here: on a
   * CPU shared with other work (e.g. a training run) spinning threads took cores from each other and were 2-3x slower
   * at 256 px (docs/export.md).
   */
  allowSpinning?: boolean;
}

/** Output of {@link OnnxDetector.run}: scores [b] and maps [b, h, w] (row-major), float32. */
export interface OnnxResult {
  scores: Float32Array;
  maps: Float32Array;
}

/**
 * An exported NTSNet (`ntsnet export --format onnx`) run by onnxruntime-node on the CPU. Same inputs and outputs as
 * NTSNet.predict: ImageNet-normalised RGB images at the model's size, maps at input resolution, score = map maximum.
 */
export class OnnxDetector {
  private constructor(
    private readonly session: InferenceSession,
    private readonly ort: Ort,
    /** Input shape declared by the graph: numbers for fixed dimensions, names for symbolic ones (e.g. `batch`). */
    readonly inputShape: readonly (number | string)[],
  ) {}

  /** Fixed input height declared by the graph (undefined when symbolic). */
  get height(): number | undefined {
    const d = this.inputShape[2];
    return typeof d === 'number' && d > 0 ? d : undefined;
  }

  /** Fixed input width declared by the graph (undefined when symbolic). */
  get width(): number | undefined {
    const d = this.inputShape[3];
    return typeof d === 'number' && d > 0 ? d : undefined;
  }

  /** Creates an onnxruntime session for the model file. @throws Error naming the file when it cannot be loaded. */
  static async load(onnxPath: string, opts: OnnxDetectorOptions = {}): Promise<OnnxDetector> {
    const ort = await loadOrt();
    let bytes: Uint8Array;
    try {
      bytes = await readFile(onnxPath);
    } catch (e) {
      throw new Error(`Cannot load ONNX model ${onnxPath}: ${(e as Error).message.split('\n')[0]}`);
    }
    // An int8 file with 8-bit weights gives wrong results on x86 without VNNI: refused here rather than scored wrongly.
    const problem = int8CpuProblem(onnxPath, int8WeightBitsOf(bytes));
    if (problem) throw new Error(problem);
    let session: InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        graphOptimizationLevel: 'all',
        executionProviders: ['cpu'],
        ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
        extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' }, inter_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } },
      });
    } catch (e) {
      throw new Error(`Cannot load ONNX model ${onnxPath}: ${(e as Error).message.split('\n')[0]}`);
    }
    for (const n of [ONNX_SCORES, ONNX_MAPS])
      if (!session.outputNames.includes(n)) throw new Error(`${onnxPath} is not an ntsnet export: it has no '${n}' output (outputs: ${session.outputNames.join(', ')}).`);
    if (!session.inputNames.includes(ONNX_INPUT)) throw new Error(`${onnxPath} is not an ntsnet export: it has no '${ONNX_INPUT}' input.`);
    const meta = session.inputMetadata?.find((m) => m.name === ONNX_INPUT);
    return new OnnxDetector(session, ort, meta && meta.isTensor ? [...meta.shape] : []);
  }

  /**
   * Runs a batch.
   * @param batchNHWC - b images [b, h, w, 3] row-major (the layout of ntsnet's data pipeline), ImageNet-normalised.
   * @returns scores [b] and maps [b, h, w].
   * @throws Error when the sizes do not match the data or the graph.
   */
  async run(batchNHWC: Float32Array, b: number, h: number, w: number): Promise<OnnxResult> {
    if (batchNHWC.length !== b * h * w * 3) throw new Error(`OnnxDetector.run: ${batchNHWC.length} values for a [${b}, ${h}, ${w}, 3] batch`);
    if ((this.height && this.height !== h) || (this.width && this.width !== w))
      throw new Error(`OnnxDetector.run: the model takes ${this.height}x${this.width} images, got ${h}x${w} (resize to the model's size first)`);
    const input = new this.ort.Tensor('float32', nhwcToNchw(batchNHWC, b, h, w), [b, 3, h, w]);
    const out = await this.session.run({ [ONNX_INPUT]: input });
    const res = { scores: Float32Array.from(out[ONNX_SCORES]!.data as Float32Array), maps: Float32Array.from(out[ONNX_MAPS]!.data as Float32Array) };
    input.dispose();
    for (const t of Object.values(out)) t.dispose();
    return res;
  }

  /** Releases the session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Images per second of {@link OnnxDetector.run} (NHWC input incl. the transpose, outputs read back) on random inputs,
 * warm-up excluded, median of `runs`, in the same style as {@link measureInference}.
 */
export async function measureOnnxInference(det: OnnxDetector, size: number, batchSize: number, runs = 5, warmup = 2): Promise<SpeedResult> {
  const x = new Float32Array(batchSize * size * size * 3);
  let s = 12345;
  for (let i = 0; i < x.length; i++) { s = (s * 1103515245 + 12345) >>> 0; x[i] = (s / 2 ** 32) * 4 - 2; }
  const times = await timeRuns(() => det.run(x, batchSize, size, size), runs, warmup);
  return speedOf(batchSize, times);
}

/** One line of {@link benchmarkEngines}. */
export interface EngineSpeed extends SpeedResult {
  engine: 'tfjs-node' | 'onnxruntime-node';
  imageSize: number;
}

/**
 * Throughput of the same model on TF.js (NTSNet.predict, maps + scores read back) and onnxruntime-node (the exported
 * graph) for each batch size; warm-up excluded, median of `runs`. `log` receives one line per measurement.
 */
export async function benchmarkEngines(
  tf: Tf, model: NTSNet, det: OnnxDetector, batches: number[], opts: { runs?: number; warmup?: number; log?: (line: string) => void } = {},
): Promise<EngineSpeed[]> {
  const size = model.config.imageSize;
  const runs = opts.runs ?? 5, warmup = opts.warmup ?? 2;
  const out: EngineSpeed[] = [];
  const say = (r: EngineSpeed): void =>
    opts.log?.(`${r.engine.padEnd(16)} ${size} px batch ${String(r.batchSize).padStart(3)}: ${r.imagesPerSecond.toFixed(2).padStart(8)} images/s (median ${r.medianMsPerBatch.toFixed(0)} ms per batch over ${r.runs} runs, ${warmup} warm-up)`);
  for (const b of batches) {
    const t: EngineSpeed = { engine: 'tfjs-node', imageSize: size, ...measureInference(tf, model, b, runs, warmup) };
    say(t);
    out.push(t);
    const o: EngineSpeed = { engine: 'onnxruntime-node', imageSize: size, ...(await measureOnnxInference(det, size, b, runs, warmup)) };
    say(o);
    out.push(o);
  }
  return out;
}

/** Max abs differences between NTSNet.predict and the ONNX graph on one NHWC batch. */
export async function compareWithTfjs(tf: Tf, model: NTSNet, det: OnnxDetector, x: Float32Array, b: number): Promise<{ maps: number; scores: number; mapScale: number }> {
  const s = model.config.imageSize;
  const xt = tf.tensor4d(x, [b, s, s, 3]) as Tensor4D;
  const p = model.predict(xt);
  const refMaps = p.maps.dataSync() as Float32Array, refScores = p.scores.dataSync() as Float32Array;
  p.maps.dispose(); p.scores.dispose(); xt.dispose();
  const o = await det.run(x, b, s, s);
  if (o.maps.length !== refMaps.length || o.scores.length !== refScores.length) throw new Error('ONNX and TF.js outputs differ in size');
  let dm = 0, ds = 0, scale = 0;
  for (let i = 0; i < refMaps.length; i++) { dm = Math.max(dm, Math.abs(refMaps[i]! - o.maps[i]!)); scale = Math.max(scale, Math.abs(refMaps[i]!)); }
  for (let i = 0; i < refScores.length; i++) ds = Math.max(ds, Math.abs(refScores[i]! - o.scores[i]!));
  return { maps: dm, scores: ds, mapScale: scale };
}
