/**
 * Compute ceilings of this machine for the speed benchmark (issue 11): how many GFLOP/s a dense 3x3 convolution and a
 * square matrix product reach on each engine, fp32 and int8, so that the model's achieved GFLOP/s can be given as a
 * fraction of what the same runtime can do at best on the same CPU.
 *
 * The int8 kernels are timed the way the int8 export runs: a QDQ graph (QuantizeLinear / DequantizeLinear around
 * the convolution or MatMul, int8 per-channel weights within +-63 as in src/export/quantize.ts) that onnxruntime
 * fuses into QLinearConv / QLinearMatMul.
 */
import type { Tf } from '../backend/index.js';
import { OnnxGraphBuilder } from '../export/onnx.js';
import { loadOrt } from '../engine/onnxPredict.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { INT8_WEIGHT_MAX } from '../export/quantize.js';
import { timeRuns } from '../engine/speed.js';
import { quantile } from '../engine/threshold.js';

/** One ceiling measurement. */
export interface CeilingRow {
  engine: 'tfjs-node' | 'onnxruntime-node';
  dtype: 'fp32' | 'int8';
  kernel: string;
  /** Floating-point (or integer multiply-add x 2) operations of one call. */
  gflop: number;
  /** Median milliseconds of one call over `runs` timed calls. */
  medianMs: number;
  gflopPerSecond: number;
  runs: number;
}

/** Shapes of the two kernels: a 3x3 convolution as in layer3 of ResNet18 (batch 8, 256 channels, 32 x 32) and a 1024^3 matrix product. */
const CONV = { b: 8, c: 256, h: 32, w: 32, k: 3 };
const MATMUL = 1024;
const convGflop = (2 * CONV.b * CONV.h * CONV.w * CONV.c * CONV.c * CONV.k * CONV.k) / 1e9;
const matmulGflop = (2 * MATMUL ** 3) / 1e9;

function lcg(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; a[i] = ((s / 2 ** 32) * 2 - 1) * scale; }
  return a;
}

/** Median milliseconds of one call (after 2 untimed calls). */
async function timeCalls(call: () => unknown, runs: number): Promise<number> {
  return quantile(await timeRuns(call, runs, 2), 0.5);
}

function row(engine: CeilingRow['engine'], dtype: CeilingRow['dtype'], kernel: string, gflop: number, ms: number, runs: number): CeilingRow {
  return { engine, dtype, kernel, gflop, medianMs: ms, gflopPerSecond: gflop / (ms / 1000), runs };
}

/** fp32 ceilings of tfjs-node (TensorFlow's kernels): conv2d and matMul, outputs read back. */
export async function tfjsCeilings(tf: Tf, runs: number): Promise<CeilingRow[]> {
  const out: CeilingRow[] = [];
  const x = tf.tensor4d(lcg(CONV.b * CONV.h * CONV.w * CONV.c, 1), [CONV.b, CONV.h, CONV.w, CONV.c]);
  const f = tf.tensor4d(lcg(CONV.k * CONV.k * CONV.c * CONV.c, 2, 0.05), [CONV.k, CONV.k, CONV.c, CONV.c]);
  const ms = await timeCalls(() => { const y = tf.conv2d(x, f, 1, 'same'); y.dataSync(); y.dispose(); }, runs);
  out.push(row('tfjs-node', 'fp32', `conv 3x3 ${CONV.c}->${CONV.c}, ${CONV.b}x${CONV.h}x${CONV.w}`, convGflop, ms, runs));
  x.dispose(); f.dispose();
  const a = tf.tensor2d(lcg(MATMUL * MATMUL, 3), [MATMUL, MATMUL]);
  const b = tf.tensor2d(lcg(MATMUL * MATMUL, 4), [MATMUL, MATMUL]);
  const mm = await timeCalls(() => { const y = tf.matMul(a, b); y.dataSync(); y.dispose(); }, runs);
  out.push(row('tfjs-node', 'fp32', `matmul ${MATMUL}^3`, matmulGflop, mm, runs));
  a.dispose(); b.dispose();
  return out;
}

/** A one-kernel ONNX graph: fp32 (Conv / MatMul) or its QDQ int8 form. */
function kernelGraph(kind: 'conv' | 'matmul', dtype: 'fp32' | 'int8'): { bytes: Uint8Array; dims: number[] } {
  const g = new OnnxGraphBuilder();
  const dims = kind === 'conv' ? [CONV.b, CONV.c, CONV.h, CONV.w] : [MATMUL, MATMUL];
  let x = g.input('x', dims);
  const wDims = kind === 'conv' ? [CONV.c, CONV.c, CONV.k, CONV.k] : [MATMUL, MATMUL];
  const outC = wDims[0]!;
  const nW = wDims.reduce((p, q) => p * q, 1);
  let w: string;
  if (dtype === 'fp32') {
    w = g.floatInit('w', wDims, lcg(nW, 5, 0.05));
  } else {
    const s = g.floatInit('x.scale', [], Float32Array.of(4 / 255));
    const z = g.typedInit('x.zp', [], 'uint8', Uint8Array.of(128));
    x = g.op('DequantizeLinear', [g.op('QuantizeLinear', [x, s, z]), s, z]);
    const q = Int8Array.from(lcg(nW, 5), (v) => Math.round(v * INT8_WEIGHT_MAX));
    // Per output channel: axis 0 for Conv (OIHW); MatMul's B is [K, N], so its output channel is axis 1.
    const axis = kind === 'conv' ? 0 : 1;
    const ws = g.floatInit('w.scale', [outC], new Float32Array(outC).fill(0.05 / INT8_WEIGHT_MAX));
    const wz = g.typedInit('w.zp', [outC], 'int8', new Int8Array(outC));
    w = g.op('DequantizeLinear', [g.typedInit('w.q', wDims, 'int8', q), ws, wz], { axis: { type: 'int', v: axis } });
  }
  let y = kind === 'conv'
    ? g.op('Conv', [x, w], { kernel_shape: { type: 'ints', v: [CONV.k, CONV.k] }, pads: { type: 'ints', v: [1, 1, 1, 1] } })
    : g.op('MatMul', [x, w]);
  if (dtype === 'int8') {
    const s = g.floatInit('y.scale', [], Float32Array.of(0.1));
    const z = g.typedInit('y.zp', [], 'uint8', Uint8Array.of(128));
    y = g.op('DequantizeLinear', [g.op('QuantizeLinear', [y, s, z]), s, z]);
  }
  g.output(g.op('Identity', [y], {}, 'y'), null);
  return { bytes: g.serialize({ graphName: `ceiling-${kind}-${dtype}`, producerVersion: NTSNET_VERSION }), dims };
}

/** fp32 and int8 ceilings of onnxruntime-node (CPU execution provider, thread spinning off as in OnnxDetector). */
export async function ortCeilings(runs: number): Promise<CeilingRow[]> {
  const ort = await loadOrt();
  const out: CeilingRow[] = [];
  for (const dtype of ['fp32', 'int8'] as const) {
    for (const kind of ['conv', 'matmul'] as const) {
      const { bytes, dims } = kernelGraph(kind, dtype);
      const session = await ort.InferenceSession.create(bytes, {
        graphOptimizationLevel: 'all', executionProviders: ['cpu'],
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      const input = new ort.Tensor('float32', lcg(dims.reduce((p, q) => p * q, 1), 6), dims);
      const ms = await timeCalls(async () => { const r = await session.run({ x: input }); for (const t of Object.values(r)) t.dispose(); }, runs);
      input.dispose();
      await session.release();
      out.push(row('onnxruntime-node', dtype, kind === 'conv' ? `conv 3x3 ${CONV.c}->${CONV.c}, ${CONV.b}x${CONV.h}x${CONV.w}` : `matmul ${MATMUL}^3`, kind === 'conv' ? convGflop : matmulGflop, ms, runs));
    }
  }
  return out;
}
