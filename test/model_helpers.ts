/**
 * Shared helpers of the model tests (teacher, CoT, EMAN, loss/map, leak). Fixtures are written by
 * scripts/tools/make_model_fixtures.py (independent PyTorch reference); see its header for how to regenerate.
 */
import { readFileSync } from 'node:fs';
import type { Tensor } from '@tensorflow/tfjs-node';
import { parseSafetensors, type RawStateDict, type RawTensor } from '../src/model/weights/safetensors.js';
import { fixturePath } from './helpers.js';

/** Absolute path of a file in test/fixtures. */
export const modelFixturePath = fixturePath;

/** Reads a safetensors fixture (float32, stored layout). */
export function loadFixture(name: string): RawStateDict {
  const path = modelFixturePath(name);
  return parseSafetensors(readFileSync(path), path);
}

/** Reads a JSON fixture. */
export function loadJson<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(modelFixturePath(name), 'utf8')) as T;
}

/** Gets a tensor from a fixture, failing with its name. */
export function fx(d: RawStateDict, name: string): RawTensor {
  const t = d.get(name);
  if (!t) throw new Error(`fixture tensor '${name}' missing (regenerate with scripts/tools/make_model_fixtures.py)`);
  return t;
}

type Numeric = ArrayLike<number>;

function values(a: Numeric | Tensor): Numeric {
  return 'dataSync' in a && typeof (a as Tensor).dataSync === 'function' ? ((a as Tensor).dataSync() as Numeric) : (a as Numeric);
}

/** Largest |a_i - b_i|; throws when the lengths differ. */
export function maxAbsDiff(a: Numeric | Tensor, b: Numeric | Tensor): number {
  const x = values(a), y = values(b);
  if (x.length !== y.length) throw new Error(`length mismatch: ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - y[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Largest |a_i|. */
export function maxAbs(a: Numeric | Tensor): number {
  const x = values(a);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** PyTorch layout of a TF-layout shape: 4-D HWIO -> OIHW, others unchanged. */
export function torchShape(tfShape: readonly number[]): number[] {
  if (tfShape.length !== 4) return [...tfShape];
  const [h, w, i, o] = tfShape as [number, number, number, number];
  return [o, i, h, w];
}

/**
 * Deterministic trunk weights in PyTorch layout, the scheme of make_model_fixtures.py:
 * k = index of the name in the sorted names, i = flat index (OIHW), s = sin(0.37 i + 1.3 k) (float64);
 * conv weight sqrt(6 / fan_in) * s, BN weight 1 + 0.1 s, bias 0.1 s, running_mean 0.1 s, running_var 1 + 0.5 |s|;
 * rounded to float32.
 * @param tfShapes - names and TF-layout shapes (e.g. teacherShapes(cfg)).
 */
export function deterministicTrunk(tfShapes: Map<string, number[]>): RawStateDict {
  const sorted = [...tfShapes.keys()].sort();
  const out: RawStateDict = new Map();
  for (const [name, tfShape] of tfShapes) {
    const k = sorted.indexOf(name);
    const shape = torchShape(tfShape);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    let f: (s: number) => number;
    if (shape.length === 4) {
      const scale = Math.sqrt(6 / (shape[1]! * shape[2]! * shape[3]!));
      f = (s) => scale * s;
    } else if (name.endsWith('.running_var')) f = (s) => 1 + 0.5 * Math.abs(s);
    else if (name.endsWith('.running_mean') || name.endsWith('.bias')) f = (s) => 0.1 * s;
    else if (name.endsWith('.weight')) f = (s) => 1 + 0.1 * s;
    else throw new Error(`unexpected parameter ${name}`);
    for (let i = 0; i < n; i++) data[i] = f(Math.sin(0.37 * i + 1.3 * k));
    out.set(name, { shape, data });
  }
  return out;
}
