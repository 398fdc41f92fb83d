/**
 * ONNX export of NTSNet's evaluation-mode forward pass (docs/export.md).
 *
 * The graph computes exactly what {@link NTSNet.predict} computes, in NCHW:
 *   images [batch, 3, S, S] float32 (ImageNet-normalised RGB)
 *     -> teacher trunk and student trunk (Conv / BatchNormalization with running statistics / Relu / MaxPool / Add;
 *        CoT blocks: grouped Conv (`group`), 1x1 Convs, attention MLP, Softmax over the 9 window positions per head,
 *        windowed aggregation as Pad + 9 Slices + Mul + Add)
 *     -> per layer 0.5 * || t/||t|| - s/||s|| ||^2 over channels, Resize (linear, half_pixel) to S x S
 *     -> sum or product fusion -> reflect Pad + two Convs (separable Gaussian) -> anomaly_maps [batch, S, S]
 *     -> ReduceMax -> scores [batch]
 * Weights are converted from TF layout (HWIO) to ONNX layout (OIHW). The batch dimension is symbolic (`batch`).
 *
 * ONNX protobuf field numbers used (onnx/onnx.proto):
 *   ModelProto: ir_version 1, producer_name 2, producer_version 3, domain 4, model_version 5, doc_string 6, graph 7,
 *     opset_import 8, metadata_props 14.  OperatorSetIdProto: domain 1, version 2.  StringStringEntryProto: key 1, value 2.
 *   GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12.
 *   NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
 *   AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7).
 *   TensorProto: dims 1, data_type 2 (FLOAT 1, INT64 7), name 8, raw_data 9.
 *   ValueInfoProto: name 1, type 2.  TypeProto: tensor_type 1.  TypeProto.Tensor: elem_type 1, shape 2.
 *   TensorShapeProto: dim 1.  Dimension: dim_value 1, dim_param 2.
 */
import { gaussianKernel1d, gaussianKernelSize } from '../model/anomalyMap.js';
import { BN_EPS } from '../model/batchnorm.js';
import type { LayerId, ModelConfig } from '../model/config.js';
import { COT_KERNEL } from '../model/cot.js';
import { maxLayer } from '../model/networks.js';
import { tfToTorchLayout } from '../model/params.js';
import { RESNET_BLOCKS, STAGES } from '../model/resnet.js';
import type { RawStateDict, RawTensor } from '../model/weights/safetensors.js';
import { PbWriter, pbRead, type PbField } from './protobuf.js';
import { assertInt8Supported, Quantizer, type QuantMode } from './quantize.js';

/** Opset of the default ONNX domain the graph is written for. */
export const ONNX_OPSET = 17;
/** ONNX IR version matching {@link ONNX_OPSET} (IR 8 = ONNX 1.10+, opset up to 17 and beyond). */
export const ONNX_IR_VERSION = 8;
/** Names of the graph's input and outputs. */
export const ONNX_INPUT = 'images';
export const ONNX_SCORES = 'scores';
export const ONNX_MAPS = 'anomaly_maps';
/** Symbolic name of the batch dimension. */
export const ONNX_BATCH_DIM = 'batch';

const FLOAT = 1;
const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;
const INT64 = 7;
const TYPED = { uint8: UINT8, int8: INT8, int32: INT32 } as const;

/** Attribute values, tagged with their ONNX type. */
export type OnnxAttr =
  | { type: 'int'; v: number }
  | { type: 'float'; v: number }
  | { type: 'string'; v: string }
  | { type: 'ints'; v: number[] }
  | { type: 'floats'; v: number[] };

const int = (v: number): OnnxAttr => ({ type: 'int', v });
const float = (v: number): OnnxAttr => ({ type: 'float', v });
const str = (v: string): OnnxAttr => ({ type: 'string', v });
const ints = (v: number[]): OnnxAttr => ({ type: 'ints', v });

interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, OnnxAttr>;
}

interface Initializer {
  name: string;
  dims: number[];
  type: typeof FLOAT | typeof INT64 | typeof UINT8 | typeof INT8 | typeof INT32;
  raw: Uint8Array;
}

/** A tensor dimension: a fixed size or a symbolic name. */
export type OnnxDim = number | string;

/** Builds an ONNX graph node by node and serialises it as a ModelProto. */
export class OnnxGraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly inits: Initializer[] = [];
  private readonly initNames = new Set<string>();
  private readonly inputs: { name: string; dims: OnnxDim[] }[] = [];
  private readonly outputs: { name: string; dims: OnnxDim[] | null }[] = [];
  private counter = 0;

  /** A fresh value name `prefix_N`. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Declares a float32 graph input. */
  input(name: string, dims: OnnxDim[]): string {
    this.inputs.push({ name, dims });
    return name;
  }

  /** Declares a float32 graph output (an existing value name); `null` dims = shape left to the runtime. */
  output(name: string, dims: OnnxDim[] | null): void {
    this.outputs.push({ name, dims });
  }

  /** float32 initializer (constant weight). */
  floatInit(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${data.length} values for shape [${dims}]`);
    const copy = Float32Array.from(data);
    return this.addInit(name, dims, FLOAT, new Uint8Array(copy.buffer));
  }

  /** uint8 / int8 / int32 initializer (quantised weights, zero points, biases). */
  typedInit(name: string, dims: number[], type: keyof typeof TYPED, data: Uint8Array | Int8Array | Int32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${data.length} values for shape [${dims}]`);
    return this.addInit(name, dims, TYPED[type], new Uint8Array(data.slice().buffer));
  }

  /** int64 initializer (shapes, pads, axes). */
  int64Init(name: string, values: number[], dims: number[] = [values.length]): string {
    const a = BigInt64Array.from(values.map((v) => BigInt(v)));
    return this.addInit(name, dims, INT64, new Uint8Array(a.buffer));
  }

  private addInit(name: string, dims: number[], type: Initializer['type'], raw: Uint8Array): string {
    if (this.initNames.has(name)) throw new Error(`duplicate initializer ${name}`);
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('ONNX export needs a little-endian host');
    this.initNames.add(name);
    this.inits.push({ name, dims, type, raw });
    return name;
  }

  /**
   * Adds a node with one output. @param out - output value name (default: a fresh name). @returns the output name.
   */
  op(op: string, inputs: string[], attrs: Record<string, OnnxAttr> = {}, out?: string): string {
    const o = out ?? this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [o], name: `${op}_${this.nodes.length}`, attrs });
    return o;
  }

  /** Adds a node with several outputs. @returns their names. */
  opMulti(op: string, inputs: string[], nOut: number, attrs: Record<string, OnnxAttr> = {}): string[] {
    const outs = Array.from({ length: nOut }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, name: `${op}_${this.nodes.length}`, attrs });
    return outs;
  }

  /** Number of nodes so far. */
  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Serialises the graph as an ONNX ModelProto. */
  serialize(opts: { graphName: string; producerVersion: string; docString?: string; metadata?: Record<string, string>; opset?: number }): Uint8Array {
    const g = new PbWriter();
    for (const n of this.nodes) {
      const w = new PbWriter();
      for (const i of n.inputs) w.string(1, i);
      for (const o of n.outputs) w.string(2, o);
      w.string(3, n.name).string(4, n.op);
      for (const [name, a] of Object.entries(n.attrs)) w.message(5, encodeAttr(name, a));
      g.message(1, w);
    }
    g.string(2, opts.graphName);
    for (const t of this.inits) {
      const w = new PbWriter();
      for (const d of t.dims) w.varint(1, d);
      w.varint(2, t.type).string(8, t.name).bytes(9, t.raw);
      g.message(5, w);
    }
    if (opts.docString) g.string(10, opts.docString);
    for (const v of this.inputs) g.message(11, valueInfo(v.name, v.dims));
    for (const v of this.outputs) g.message(12, valueInfo(v.name, v.dims));

    const m = new PbWriter();
    m.varint(1, ONNX_IR_VERSION).string(2, 'ntsnet').string(3, opts.producerVersion).string(4, 'ntsnet').varint(5, 1);
    if (opts.docString) m.string(6, opts.docString);
    m.message(7, g);
    m.message(8, new PbWriter().string(1, '').varint(2, opts.opset ?? ONNX_OPSET));
    for (const [k, v] of Object.entries(opts.metadata ?? {})) m.message(14, new PbWriter().string(1, k).string(2, v));
    return m.finish();
  }
}

function encodeAttr(name: string, a: OnnxAttr): PbWriter {
  const w = new PbWriter().string(1, name);
  switch (a.type) {
    case 'float': return w.float(2, a.v).varint(20, 1);
    case 'int': return w.varint(3, a.v).varint(20, 2);
    case 'string': return w.string(4, a.v).varint(20, 3);
    case 'floats': for (const v of a.v) w.float(7, v); return w.varint(20, 6);
    case 'ints': for (const v of a.v) w.varint(8, v); return w.varint(20, 7);
  }
}

function valueInfo(name: string, dims: OnnxDim[] | null): PbWriter {
  const tensor = new PbWriter().varint(1, FLOAT);
  if (dims) {
    const shape = new PbWriter();
    for (const d of dims) shape.message(1, typeof d === 'number' ? new PbWriter().varint(1, d) : new PbWriter().string(2, d));
    tensor.message(2, shape);
  }
  return new PbWriter().string(1, name).message(2, new PbWriter().message(1, tensor));
}

/** TF-layout filter [kh, kw, in, out] (HWIO) -> ONNX layout [out, in, kh, kw] (OIHW). */
export function hwioToOihw(t: RawTensor): { dims: number[]; data: Float32Array } {
  if (t.shape.length !== 4) throw new Error(`hwioToOihw: expected a 4-D filter, got shape [${t.shape}]`);
  const { shape, data } = tfToTorchLayout(t);
  return { dims: shape, data };
}

/** Writes the graph of one network (teacher or student) into a builder, reading weights from a TF-layout state dict. */
class NetEmitter {
  constructor(
    private readonly g: OnnxGraphBuilder,
    private readonly state: RawStateDict,
    /** Initializer name prefix, `teacher` or `student`. */
    private readonly prefix: string,
    /** Set for the folded / quantised graphs of `--quantize int8` (calibration and int8). */
    readonly q?: Quantizer,
  ) {}

  /** Activation point `<prefix>.<id>` (identity without a quantizer). */
  act(id: string, x: string, rangeOf?: string): string {
    return this.q ? this.q.act(`${this.prefix}.${id}`, x, rangeOf && `${this.prefix}.${rangeOf}`) : x;
  }

  /**
   * Convolution followed by evaluation-mode BatchNorm. Without a quantizer: Conv + BatchNormalization (as exported
   * always). With one: the BatchNorm folded into the filter and a bias, w' = w g / sqrt(v + eps),
   * b' = beta - mu g / sqrt(v + eps), and in int8 graphs the filter and bias as DequantizeLinear of int8 / int32.
   */
  convBn(x: string, conv: string, bn: string, stride: number, pad: number): string {
    if (!this.q) return this.norm(this.conv(x, conv, stride, pad), bn);
    const { dims, data } = hwioToOihw(this.raw(`${conv}.weight`));
    const [gm, bt, mu, vr] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => this.raw(`${bn}.${k}`).data);
    const outC = dims[0]!, per = data.length / outC;
    const w = new Float32Array(data.length), b = new Float32Array(outC);
    for (let c = 0; c < outC; c++) {
      const f = gm![c]! / Math.sqrt(vr![c]! + BN_EPS);
      for (let i = c * per; i < (c + 1) * per; i++) w[i] = data[i]! * f;
      b[c] = bt![c]! - mu![c]! * f;
    }
    const attrs: Record<string, OnnxAttr> = { kernel_shape: ints([dims[2]!, dims[3]!]), strides: ints([stride, stride]), pads: ints([pad, pad, pad, pad]), dilations: ints([1, 1]), group: int(1) };
    const n = `${this.prefix}.${conv}`;
    const p = this.q.int8 ? this.q.convParams(n, dims, w, b, x) : { w: this.g.floatInit(`${n}.weight_folded`, dims, w), b: this.g.floatInit(`${n}.bias_folded`, [outC], b) };
    return this.g.op('Conv', [x, p.w, p.b], attrs);
  }

  private raw(name: string): RawTensor {
    const t = this.state.get(name);
    if (!t) throw new Error(`ONNX export: missing ${this.prefix} parameter '${name}'`);
    return t;
  }

  /** Initializer of a TF-layout conv filter, converted to OIHW. */
  filter(name: string): string {
    const { dims, data } = hwioToOihw(this.raw(name));
    return this.g.floatInit(`${this.prefix}.${name}`, dims, data);
  }

  vector(name: string): string {
    const t = this.raw(name);
    return this.g.floatInit(`${this.prefix}.${name}`, [...t.shape], t.data);
  }

  /** Convolution with PyTorch's symmetric zero padding (the `convTorch` of src/model/resnet.ts). */
  conv(x: string, name: string, stride: number, pad: number, extra: { group?: number; bias?: string } = {}): string {
    const w = this.filter(`${name}.weight`);
    const t = this.raw(`${name}.weight`);
    const attrs: Record<string, OnnxAttr> = {
      kernel_shape: ints([t.shape[0]!, t.shape[1]!]),
      strides: ints([stride, stride]),
      pads: ints([pad, pad, pad, pad]),
      dilations: ints([1, 1]),
      group: int(extra.group ?? 1),
    };
    return this.g.op('Conv', extra.bias ? [x, w, this.vector(extra.bias)] : [x, w], attrs);
  }

  /** Evaluation-mode BatchNorm with the stored running statistics (EMAN statistics for the teacher). */
  norm(x: string, name: string): string {
    const ins = ['weight', 'bias', 'running_mean', 'running_var'].map((s) => this.vector(`${name}.${s}`));
    return this.g.op('BatchNormalization', [x, ...ins], { epsilon: float(BN_EPS) });
  }
}

/** Spatial size after a convolution. */
const convOut = (n: number, k: number, s: number, p: number): number => Math.floor((n + 2 * p - k) / s) + 1;

/**
 * CoT block (src/model/cot.ts `cotForward`) in NCHW. @param size - spatial size of x (square).
 * @returns the output value name and its spatial size.
 */
function emitCot(g: OnnxGraphBuilder, e: NetEmitter, x: string, size: number, name: string, outC: number, stride: number, cfg: ModelConfig): { y: string; size: number } {
  const { groups, heads } = cfg.cot;
  const k9 = COT_KERNEL * COT_KERNEL;
  const r = Math.floor(COT_KERNEL / 2);
  const h = convOut(size, COT_KERNEL, stride, 1);
  const key = g.op('Relu', [e.norm(e.conv(x, `${name}.key.conv`, stride, 1, { group: groups }), `${name}.key.bn`)]);
  const q = e.conv(x, `${name}.query`, stride, 0);
  const v = e.conv(e.conv(x, `${name}.value.0`, stride, 0), `${name}.value.1`, 1, 0);
  let a = e.conv(g.op('Concat', [key, q], { axis: int(1) }), `${name}.attn.0`, 1, 0, { bias: `${name}.attn.0.bias` });
  a = e.conv(g.op('Relu', [a]), `${name}.attn.1`, 1, 0, { bias: `${name}.attn.1.bias` });
  // logits channel index = head * 9 + j (as the NHWC reshape [.., heads, 9] of cotAttention) -> softmax over j.
  const att = g.op('Softmax', [g.op('Reshape', [a, g.int64Init(g.fresh('shape'), [0, heads, k9, h, h])])], { axis: int(2) });
  const attJ = g.opMulti('Split', [att], k9, { axis: int(2) }); // 9 x [B, heads, 1, h, h]
  // Zero-padded V viewed per head: [B, heads, C/heads, h+2r, h+2r]; channel c = head * C/heads + cc.
  const vp = g.op('Pad', [v, g.int64Init(g.fresh('pads'), [0, 0, r, r, 0, 0, r, r])], { mode: str('constant') });
  const vp5 = g.op('Reshape', [vp, g.int64Init(g.fresh('shape'), [0, heads, outC / heads, h + 2 * r, h + 2 * r])]);
  const axes = g.int64Init(g.fresh('axes'), [3, 4]);
  let acc: string | undefined;
  for (let j = 0; j < k9; j++) {
    const dy = Math.floor(j / COT_KERNEL), dx = j % COT_KERNEL;
    const view = g.op('Slice', [vp5, g.int64Init(g.fresh('starts'), [dy, dx]), g.int64Init(g.fresh('ends'), [dy + h, dx + h]), axes]);
    const prod = g.op('Mul', [view, attJ[j]!]);
    acc = acc ? g.op('Add', [acc, prod]) : prod;
  }
  const agg = g.op('Reshape', [acc!, g.int64Init(g.fresh('shape'), [0, outC, h, h])]);
  return { y: g.op('Add', [key, agg]), size: h };
}

/**
 * Trunk (src/model/resnet.ts `trunkForward`) of one network in NCHW.
 * @returns the features of the requested layers, ascending, with their spatial sizes.
 */
function emitTrunk(g: OnnxGraphBuilder, e: NetEmitter, x: string, imageSize: number, depth: 18 | 34, layers: readonly LayerId[], block: 'plain' | 'cot', cfg: ModelConfig): { name: string; size: number; channels: number }[] {
  const want = [...layers].sort();
  const last = want[want.length - 1]!;
  if (e.q) assertInt8Supported({ studentBlock: block === 'cot' ? 'cot' : 'basic' });
  let h = e.act('stem', g.op('Relu', [e.convBn(x, 'conv1', 'bn1', 2, 3)]));
  let size = convOut(imageSize, 7, 2, 3);
  // MaxPool pads with -inf; the TF code pads with zeros, equal here because the input is post-ReLU (>= 0).
  h = e.act('pool', g.op('MaxPool', [h], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }), 'stem');
  size = convOut(size, 3, 2, 1);
  const out: { name: string; size: number; channels: number }[] = [];
  let inC = 64;
  for (let l = 1; l <= last; l++) {
    const { channels, stride } = STAGES[l - 1]!;
    for (let i = 0; i < RESNET_BLOCKS[depth][l - 1]!; i++) {
      const p = `layer${l}.${i}`;
      const s = i === 0 ? stride : 1;
      const blockConv = (v: string, name: string, sz: number, st: number): { y: string; size: number } =>
        block === 'cot' ? emitCot(g, e, v, sz, name, channels, st, cfg) : { y: e.conv(v, name, st, 1), size: convOut(sz, 3, st, 1) };
      let y: string, c2size: number;
      if (e.q) {
        y = e.act(`${p}.relu1`, g.op('Relu', [e.convBn(h, `${p}.conv1`, `${p}.bn1`, s, 1)]));
        c2size = convOut(convOut(size, 3, s, 1), 3, 1, 1);
        y = e.act(`${p}.bn2`, e.convBn(y, `${p}.conv2`, `${p}.bn2`, 1, 1));
      } else {
        const c1 = blockConv(h, `${p}.conv1`, size, s);
        y = g.op('Relu', [e.norm(c1.y, `${p}.bn1`)]);
        const c2 = blockConv(y, `${p}.conv2`, c1.size, 1);
        y = e.norm(c2.y, `${p}.bn2`);
        c2size = c2.size;
      }
      const shortcut = s !== 1 || inC !== channels ? e.act(`${p}.downsample`, e.convBn(h, `${p}.downsample.0`, `${p}.downsample.1`, s, 0)) : h;
      const hf = g.op('Relu', [g.op('Add', [y, shortcut])]);
      size = c2size;
      inC = channels;
      const last = i === RESNET_BLOCKS[depth][l - 1]! - 1;
      // The compared features stay float32; what the next block reads is quantised.
      if (last && want.includes(l as LayerId)) out.push({ name: hf, size, channels: inC });
      h = last && l === want[want.length - 1] ? hf : e.act(`${p}.out`, hf);
    }
  }
  return out;
}

/** f / max(||f||_2 over channels, 1e-12) (src/model/loss.ts `l2NormalizeChannels`). */
function emitL2Normalize(g: OnnxGraphBuilder, f: string, axes1: string, eps: string): string {
  const n = g.op('Max', [g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [f, f]), axes1], { keepdims: int(1) })]), eps]);
  return g.op('Div', [f, n]);
}

/** Options of {@link buildNtsnetOnnx}. */
export interface OnnxBuildOptions {
  /** Written as the model's producer_version (ntsnet version). */
  producerVersion: string;
  /** Free-text description stored in the model (doc_string). */
  docString?: string;
  /** metadata_props key/value pairs (e.g. the config as JSON). */
  metadata?: Record<string, string>;
  /**
   * Also output the per-layer features (`teacher_layerL`, `student_layerL`, NCHW) and distance maps before upsampling
   * (`distance_layerL`), for diagnosing differences between runtimes.
   */
  debugOutputs?: boolean;
  /**
   * `--quantize int8` (src/export/quantize.ts): `calibrate` builds the BatchNorm-folded float32 graph with every
   * activation point as an extra output `calib:<id>`; `int8` the QDQ graph with the calibrated ranges.
   */
  quant?: QuantMode;
}

/**
 * Builds the ONNX model (opset {@link ONNX_OPSET}) of NTSNet's evaluation-mode predict.
 * @param cfg - the model config (image size, layers, fusion, sigma, student block, CoT options).
 * @param teacher - teacher parameters in TF layout (paramsToRaw of NTSNet.teacher), with running statistics.
 * @param student - student parameters in TF layout.
 * @returns the serialised ModelProto. Input `images` [batch, 3, S, S]; outputs `scores` [batch], `anomaly_maps` [batch, S, S].
 */
export function buildNtsnetOnnx(cfg: ModelConfig, teacher: RawStateDict, student: RawStateDict, opts: OnnxBuildOptions): Uint8Array {
  const g = new OnnxGraphBuilder();
  const S = cfg.imageSize;
  const x = g.input(ONNX_INPUT, [ONNX_BATCH_DIM, 3, S, S]);
  const layers = [...cfg.layers].sort() as LayerId[];
  if (maxLayer(layers) > 3) throw new Error('ONNX export: layers must be within 1..3');
  const q = opts.quant ? new Quantizer(g, opts.quant) : undefined;
  const xin = q ? q.act('input', x) : x;
  const ft = emitTrunk(g, new NetEmitter(g, teacher, 'teacher', q), xin, S, cfg.teacherDepth, layers, 'plain', cfg);
  const fs = emitTrunk(g, new NetEmitter(g, student, 'student', q), xin, S, cfg.studentDepth, layers, cfg.studentBlock === 'cot' ? 'cot' : 'plain', cfg);

  const axes1 = g.int64Init('const.axes_c', [1]);
  const eps = g.floatInit('const.l2_eps', [], Float32Array.of(1e-12));
  const half = g.floatInit('const.half', [], Float32Array.of(0.5));
  let fused: string | undefined;
  for (let l = 0; l < ft.length; l++) {
    const t = ft[l]!, s = fs[l]!;
    if (t.size !== s.size || t.channels !== s.channels) throw new Error(`ONNX export: teacher/student layer ${layers[l]} shapes differ`);
    const diff = g.op('Sub', [emitL2Normalize(g, t.name, axes1, eps), emitL2Normalize(g, s.name, axes1, eps)]);
    const d = g.op('Mul', [half, g.op('ReduceSum', [g.op('Mul', [diff, diff]), axes1], { keepdims: int(1) })]); // [B, 1, h, h]
    if (opts.debugOutputs) {
      const L = layers[l]!;
      g.output(g.op('Identity', [t.name], {}, `teacher_layer${L}`), [ONNX_BATCH_DIM, t.channels, t.size, t.size]);
      g.output(g.op('Identity', [s.name], {}, `student_layer${L}`), [ONNX_BATCH_DIM, s.channels, s.size, s.size]);
      g.output(g.op('Identity', [d], {}, `distance_layer${L}`), [ONNX_BATCH_DIM, 1, t.size, t.size]);
    }
    const scale = S / t.size;
    const up = g.op('Resize', [d, '', g.floatInit(g.fresh('const.scales'), [4], Float32Array.of(1, 1, scale, scale))], {
      mode: str('linear'), coordinate_transformation_mode: str('half_pixel'),
    });
    fused = !fused ? up : g.op(cfg.fusion === 'sum' ? 'Add' : 'Mul', [fused, up]);
  }
  let smooth = fused!;
  if (cfg.sigma > 0) {
    const radius = Math.min((gaussianKernelSize(cfg.sigma) - 1) / 2, S - 1);
    const k = gaussianKernel1d(cfg.sigma, 2 * radius + 1);
    const padded = g.op('Pad', [fused!, g.int64Init('const.blur_pads', [0, 0, radius, radius, 0, 0, radius, radius])], { mode: str('reflect') });
    const ky = g.floatInit('const.gauss_y', [1, 1, k.length, 1], k);
    const kx = g.floatInit('const.gauss_x', [1, 1, 1, k.length], k);
    const convAttrs = (kh: number, kw: number): Record<string, OnnxAttr> => ({ kernel_shape: ints([kh, kw]), strides: ints([1, 1]), pads: ints([0, 0, 0, 0]) });
    smooth = g.op('Conv', [g.op('Conv', [padded, ky], convAttrs(k.length, 1)), kx], convAttrs(1, k.length));
  }
  const maps = g.op('Reshape', [smooth, g.int64Init('const.map_shape', [0, S, S])], {}, ONNX_MAPS);
  g.op('ReduceMax', [maps], { axes: ints([1, 2]), keepdims: int(0) }, ONNX_SCORES);
  g.output(ONNX_SCORES, [ONNX_BATCH_DIM]);
  g.output(ONNX_MAPS, [ONNX_BATCH_DIM, S, S]);
  return g.serialize({ graphName: 'ntsnet', producerVersion: opts.producerVersion, docString: opts.docString, metadata: opts.metadata });
}

/** What {@link readOnnxSummary} finds in a serialised model. */
export interface OnnxSummary {
  irVersion: number;
  /** Opset of the default domain. */
  opset: number | undefined;
  producer: string;
  inputs: { name: string; dims: OnnxDim[] }[];
  outputs: { name: string; dims: OnnxDim[] }[];
  /** Node count per op type. */
  ops: Record<string, number>;
  /** String attributes per op type (e.g. Pad modes, Resize modes), deduplicated, as `name=value`. */
  stringAttrs: Record<string, string[]>;
  initializers: number;
  metadata: Record<string, string>;
}

const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array());
const fields = (buf: Uint8Array | undefined, n: number): PbField[] => pbRead(buf ?? new Uint8Array()).filter((f) => f.field === n);

function readValueInfo(buf: Uint8Array): { name: string; dims: OnnxDim[] } {
  const name = text(fields(buf, 1)[0]?.bytes);
  const tensor = fields(fields(buf, 2)[0]?.bytes, 1)[0]?.bytes;
  const shape = fields(tensor, 2)[0]?.bytes;
  const dims = fields(shape, 1).map((d): OnnxDim => {
    const fs = pbRead(d.bytes!);
    const v = fs.find((f) => f.field === 1);
    return v ? Number(v.varint) : text(fs.find((f) => f.field === 2)?.bytes);
  });
  return { name, dims };
}

/** Decodes the parts of a serialised ONNX model that describe its interface and ops (for checks and `ntsnet export`). */
export function readOnnxSummary(model: Uint8Array): OnnxSummary {
  const top = pbRead(model);
  const graph = top.find((f) => f.field === 7)?.bytes;
  if (!graph) throw new Error('not an ONNX model (no graph)');
  const ops: Record<string, number> = {};
  const stringAttrs: Record<string, string[]> = {};
  for (const n of fields(graph, 1)) {
    const nf = pbRead(n.bytes!);
    const op = text(nf.find((f) => f.field === 4)?.bytes);
    ops[op] = (ops[op] ?? 0) + 1;
    for (const a of nf.filter((f) => f.field === 5)) {
      const af = pbRead(a.bytes!);
      const s = af.find((f) => f.field === 4);
      if (!s) continue;
      const entry = `${text(af.find((f) => f.field === 1)?.bytes)}=${text(s.bytes)}`;
      const list = (stringAttrs[op] ??= []);
      if (!list.includes(entry)) list.push(entry);
    }
  }
  const opsetEntry = fields(model, 8).map((f) => pbRead(f.bytes!)).find((fs) => text(fs.find((f) => f.field === 1)?.bytes) === '');
  const metadata: Record<string, string> = {};
  for (const m of fields(model, 14)) metadata[text(fields(m.bytes, 1)[0]?.bytes)] = text(fields(m.bytes, 2)[0]?.bytes);
  return {
    irVersion: Number(top.find((f) => f.field === 1)?.varint ?? 0n),
    opset: opsetEntry ? Number(opsetEntry.find((f) => f.field === 2)?.varint ?? 0n) : undefined,
    producer: `${text(top.find((f) => f.field === 2)?.bytes)} ${text(top.find((f) => f.field === 3)?.bytes)}`.trim(),
    inputs: fields(graph, 11).map((f) => readValueInfo(f.bytes!)),
    outputs: fields(graph, 12).map((f) => readValueInfo(f.bytes!)),
    ops,
    stringAttrs,
    initializers: fields(graph, 5).length,
    metadata,
  };
}
