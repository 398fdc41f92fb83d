import type { Tensor, Variable } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { RawStateDict, RawTensor } from './weights/safetensors.js';

/** Named parameters in TF.js layout: convolution filters [kh, kw, in, out] (HWIO), BatchNorm vectors [C]. */
export type ParamMap = Map<string, Variable>;

/** Reads a parameter, throwing an Error that names the missing key (a config / checkpoint mismatch). */
export function param<T extends Tensor = Tensor>(p: ParamMap, name: string): T {
  const t = p.get(name);
  if (!t) throw new Error(`Missing parameter '${name}' (the weights do not match the model configuration).`);
  return t as unknown as T;
}

/** Converts a PyTorch-layout tensor to TF.js layout: 4-D OIHW -> HWIO; others unchanged. @returns a new shape and data. */
export function torchToTfLayout(t: RawTensor): RawTensor {
  if (t.shape.length !== 4) return { shape: [...t.shape], data: t.data };
  const [o, i, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let oo = 0; oo < o; oo++)
    for (let ii = 0; ii < i; ii++)
      for (let hh = 0; hh < h; hh++)
        for (let ww = 0; ww < w; ww++) out[((hh * w + ww) * i + ii) * o + oo] = t.data[((oo * i + ii) * h + hh) * w + ww]!;
  return { shape: [h, w, i, o], data: out };
}

/** Converts a TF.js-layout tensor back to PyTorch layout: 4-D HWIO -> OIHW; others unchanged (inverse of {@link torchToTfLayout}). */
export function tfToTorchLayout(t: RawTensor): RawTensor {
  if (t.shape.length !== 4) return { shape: [...t.shape], data: t.data };
  const [h, w, i, o] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let hh = 0; hh < h; hh++)
    for (let ww = 0; ww < w; ww++)
      for (let ii = 0; ii < i; ii++)
        for (let oo = 0; oo < o; oo++) out[((oo * i + ii) * h + hh) * w + ww] = t.data[((hh * w + ww) * i + ii) * o + oo]!;
  return { shape: [o, i, h, w], data: out };
}

/**
 * Creates TF variables from a raw state dict (PyTorch layout), keeping only names accepted by `keep`.
 * `num_batches_tracked` entries are dropped. Variables are created non-trainable; callers choose what trains.
 * @throws Error naming the key when a shape differs from `expected`.
 */
export function paramsFromTorch(tf: Tf, raw: RawStateDict, expected: Map<string, number[]>, source: string): ParamMap {
  const out: ParamMap = new Map();
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const t = raw.get(name);
    if (!t) { problems.push(`missing ${name}`); continue; }
    const conv = torchToTfLayout(t);
    if (conv.shape.join(',') !== shape.join(',')) { problems.push(`${name} has shape [${t.shape}] (TF layout [${conv.shape}]), expected TF layout [${shape}]`); continue; }
    out.set(name, tf.variable(tf.tensor(conv.data, conv.shape, 'float32'), false, undefined, 'float32'));
  }
  if (problems.length) {
    for (const v of out.values()) v.dispose();
    throw new Error(`${source}: weights do not fit a torchvision ResNet trunk:\n  - ${problems.slice(0, 10).join('\n  - ')}${problems.length > 10 ? `\n  - ... ${problems.length - 10} more` : ''}`);
  }
  return out;
}

/** Reads every variable back to host memory in TF layout (for checkpoints). */
export function paramsToRaw(p: ParamMap): RawStateDict {
  const out: RawStateDict = new Map();
  for (const [name, v] of p) out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}

/** Total number of scalar values in the parameters whose names pass `filter`. */
export function countParams(p: ParamMap, filter: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const [name, v] of p) if (filter(name)) n += v.size;
  return n;
}

/** Disposes every variable of a parameter map. */
export function disposeParams(p: ParamMap): void {
  for (const v of p.values()) v.dispose();
  p.clear();
}
