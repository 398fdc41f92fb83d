/**
 * Static int8 quantisation of the ONNX export in QDQ form (docs/export.md, "int8"): QuantizeLinear / DequantizeLinear
 * pairs around every trunk convolution, BatchNorm folded into the convolutions, activations uint8 per tensor with
 * scales calibrated on normal images, weights int8 symmetric per output channel, biases int32 at scale
 * s_input * s_weight[c] (the layout onnxruntime's QDQ transformer turns into QLinearConv / QLinearAdd and runs with
 * VNNI int8 kernels). The per-layer features that the anomaly map compares stay float32.
 */
import { cpuFlags } from '../backend/cpu.js';
import type { ModelConfig } from '../model/config.js';
import type { OnnxGraphBuilder } from './onnx.js';

/**
 * Refuses a model the int8 export has no form for (a CoT student's attention path).
 * @throws Error naming the way out.
 */
export function assertInt8Supported(cfg: Pick<ModelConfig, 'studentBlock'>): void {
  if (cfg.studentBlock === 'cot') throw new Error("int8 export supports the plain student (the default, --student-block basic); a CoT student's attention path has no int8 form here: export it without --quantize");
}

/** Observed value range of one quantisation point, over the calibration images. */
export interface ActRange {
  min: number;
  max: number;
}

/** What the emitter does at each activation point: record it (calibration graph) or quantise it (int8 graph). */
export type QuantMode = { mode: 'calibrate' } | { mode: 'int8'; ranges: ReadonlyMap<string, ActRange>; weightBits?: Int8WeightBits };

/** Prefix of the extra graph outputs of a calibration graph (one per activation point id). */
export const CALIB_PREFIX = 'calib:';

/** uint8 affine parameters covering [min, max] (and 0, so that zero and ReLU's clamp are exact). */
export function uint8Params(r: ActRange): { scale: number; zeroPoint: number } {
  const lo = Math.min(r.min, 0), hi = Math.max(r.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))) };
}

/**
 * Largest int8 weight magnitude in 7 bits (onnxruntime's `reduce_range`). On x86 CPUs without VNNI, onnxruntime's
 * u8 x s8 kernels sum pairs of products in 16 bits (VPMADDUBSW): 2 x 255 x 127 overflows and the results are wrong
 * (measured on such a machine: image scores 4x too large), 2 x 255 x 63 does not.
 */
export const INT8_WEIGHT_MAX = 63;

/** Weight precision of an int8 export: 8 bits (+-127; needs VNNI on x86) or 7 bits (+-63; runs correctly on every CPU). */
export type Int8WeightBits = 7 | 8;

/**
 * Whether onnxruntime's x86 u8 x s8 kernels can take full 8-bit weights on this CPU: true on x86 with AVX-512 VNNI or
 * AVX-VNNI (VPDPBUSD accumulates in 32 bits) and on non-x86 CPUs (no 16-bit pairwise sums); false on x86 without VNNI;
 * undefined when the CPU's features cannot be read (x86 outside Linux).
 */
export function cpuTakes8BitWeights(): boolean | undefined {
  if (process.arch !== 'x64' && process.arch !== 'ia32') return true;
  const flags = cpuFlags();
  if (!flags) return undefined;
  return flags.includes('avx512_vnni') || flags.includes('avx_vnni');
}

/** Default weight bits of an export made here: 8 where this CPU runs them correctly (more accurate), else 7. */
export function defaultInt8WeightBits(): Int8WeightBits {
  return cpuTakes8BitWeights() ? 8 : 7;
}

/**
 * Why an int8 file cannot run correctly on this CPU (8-bit weights on x86 without VNNI), or undefined.
 * @param weightBits - from the file's `ntsnet.quantization` metadata (absent in files of older ntsnet: 7).
 */
export function int8CpuProblem(file: string, weightBits: number | undefined): string | undefined {
  if (weightBits !== 8 || cpuTakes8BitWeights() !== false) return undefined;
  return `${file} was exported with 8-bit int8 weights, which onnxruntime computes wrongly on x86 CPUs without VNNI (this one): its 16-bit pair sums overflow. Re-export it with '--int8-weights 7' (runs correctly on every CPU).`;
}

/** Symmetric per-output-channel weights in [-{@link INT8_WEIGHT_MAX}, +]: scale_c = max |w_c| / max. @param w - OIHW, dims[0] = output channels. */
export function int8PerChannel(w: Float32Array, outC: number, qmax = INT8_WEIGHT_MAX): { q: Int8Array; scales: Float32Array } {
  const per = w.length / outC, q = new Int8Array(w.length), scales = new Float32Array(outC);
  for (let c = 0; c < outC; c++) {
    let m = 0;
    for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]!));
    const s = m > 0 ? m / qmax : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(w[i]! / s)));
  }
  return { q, scales };
}

/**
 * Inserts the QDQ nodes while the trunks are emitted. Tracks the scale of every dequantised value so that a
 * convolution's bias can be quantised at s_input * s_weight.
 */
export class Quantizer {
  private readonly scales = new Map<string, number>();

  constructor(private readonly g: OnnxGraphBuilder, readonly mode: QuantMode) {}

  /** Largest weight magnitude of this graph's int8 weights. */
  private get weightMax(): number {
    return this.mode.mode === 'int8' && this.mode.weightBits === 8 ? 127 : INT8_WEIGHT_MAX;
  }

  /**
   * An activation point: in a calibration graph `x` is also exposed as output `calib:<id>`; in an int8 graph it is
   * replaced by DequantizeLinear(QuantizeLinear(x)) with the calibrated uint8 parameters (those of point `rangeOf`
   * when given: an op such as MaxPool whose output range lies in its input's keeps its input's, so that onnxruntime
   * runs it on uint8 between the two identical quantisations instead of dequantising around it).
   * @returns the value to use from here on.
   * @throws Error when an int8 graph has no calibrated range for `id`.
   */
  act(id: string, x: string, rangeOf?: string): string {
    if (this.mode.mode === 'calibrate') {
      // Every activation point is NCHW; distinct symbolic names, so that the runtime infers the sizes itself.
      this.g.output(this.g.op('Identity', [x], {}, `${CALIB_PREFIX}${id}`), ['batch', `${id}.C`, `${id}.H`, `${id}.W`]);
      return x;
    }
    const r = this.mode.ranges.get(rangeOf ?? id);
    if (!r) throw new Error(`int8 export: no calibrated range for activation '${rangeOf ?? id}'`);
    const { scale, zeroPoint } = uint8Params(r);
    const s = this.g.floatInit(`q.${id}.scale`, [], Float32Array.of(scale));
    const z = this.g.typedInit(`q.${id}.zero_point`, [], 'uint8', Uint8Array.of(zeroPoint));
    const y = this.g.op('DequantizeLinear', [this.g.op('QuantizeLinear', [x, s, z]), s, z]);
    this.scales.set(y, scale);
    return y;
  }

  /** True in an int8 graph (convolutions take DQ weights and biases). */
  get int8(): boolean {
    return this.mode.mode === 'int8';
  }

  /**
   * Weight and bias of a convolution as DequantizeLinear of int8 / int32 initializers (int8 graphs only).
   * @param w - OIHW float32 (BatchNorm already folded), @param bias - [outC] float32, @param input - the conv's input
   * value (must come from {@link act}). @returns the weight and bias value names.
   */
  convParams(name: string, dims: number[], w: Float32Array, bias: Float32Array, input: string): { w: string; b: string } {
    const sx = this.scales.get(input);
    if (sx === undefined) throw new Error(`int8 export: the input of ${name} is not quantised`);
    const outC = dims[0]!;
    const { q, scales } = int8PerChannel(w, outC, this.weightMax);
    const g = this.g;
    const ws = g.floatInit(`${name}.w_scale`, [outC], scales);
    const wz = g.typedInit(`${name}.w_zero_point`, [outC], 'int8', new Int8Array(outC));
    const wq = g.typedInit(`${name}.w_int8`, dims, 'int8', q);
    const bScales = scales.map((s) => s * sx);
    const bq = Int32Array.from(bias, (b, c) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(b / bScales[c]!))));
    const bs = g.floatInit(`${name}.b_scale`, [outC], bScales);
    const bz = g.typedInit(`${name}.b_zero_point`, [outC], 'int32', new Int32Array(outC));
    const bi = g.typedInit(`${name}.b_int32`, [outC], 'int32', bq);
    return {
      w: g.op('DequantizeLinear', [wq, ws, wz], { axis: { type: 'int', v: 0 } }),
      b: g.op('DequantizeLinear', [bi, bs, bz], { axis: { type: 'int', v: 0 } }),
    };
  }
}
