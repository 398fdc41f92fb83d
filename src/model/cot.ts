import type { Tensor1D, Tensor4D, Tensor5D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import { addBn, convTorch } from './resnet.js';

/** Options of the improved Contextual Transformer block. */
export interface CotOptions {
  /** Groups of the k x k key convolution (CoTNet uses 4). */
  groups: number;
  /** Attention heads: each head has its own k x k window weights and covers outC/heads contiguous channels. */
  heads: number;
  /** Hidden width of the attention MLP is max(outC / reduction, 8). */
  reduction: number;
}

/** Window size k of the block (paper: k = 3). */
export const COT_KERNEL = 3;

/** Hidden width of the attention MLP. */
export function cotHidden(outC: number, o: CotOptions): number {
  return Math.max(Math.floor(outC / o.reduction), 8);
}

/**
 * Adds the parameter names and TF-layout shapes of one CoT block at path `name` (PyTorch names in brackets):
 * - `name.key.conv.weight` [3, 3, inC/groups, outC]; `name.key.bn.*` [outC]
 * - `name.query.weight` [1, 1, inC, outC]
 * - `name.value.0.weight` [1, 1, inC, outC], `name.value.1.weight` [1, 1, outC, outC]
 * - `name.attn.0.weight` [1, 1, 2*outC, hidden], `name.attn.0.bias` [hidden]
 * - `name.attn.1.weight` [1, 1, hidden, heads*k*k], `name.attn.1.bias` [heads*k*k]
 */
export function cotShapes(s: Map<string, number[]>, name: string, inC: number, outC: number, o: CotOptions): void {
  const k = COT_KERNEL;
  const hidden = cotHidden(outC, o);
  s.set(`${name}.key.conv.weight`, [k, k, inC / o.groups, outC]);
  addBn(s, `${name}.key.bn`, outC);
  s.set(`${name}.query.weight`, [1, 1, inC, outC]);
  s.set(`${name}.value.0.weight`, [1, 1, inC, outC]);
  s.set(`${name}.value.1.weight`, [1, 1, outC, outC]);
  s.set(`${name}.attn.0.weight`, [1, 1, 2 * outC, hidden]);
  s.set(`${name}.attn.0.bias`, [hidden]);
  s.set(`${name}.attn.1.weight`, [1, 1, hidden, o.heads * k * k]);
  s.set(`${name}.attn.1.bias`, [o.heads * k * k]);
}

/** Grouped 3x3 convolution with PyTorch semantics (contiguous channel groups), built from per-group convolutions. */
function groupedConv(tf: Tf, x: Tensor4D, w: Tensor4D, groups: number, stride: number): Tensor4D {
  if (groups === 1) return convTorch(tf, x, w, stride, 1);
  const xs = tf.split(x, groups, 3);
  const ws = tf.split(w, groups, 3);
  return tf.concat(xs.map((xi, g) => convTorch(tf, xi as Tensor4D, ws[g] as Tensor4D, stride, 1)), 3) as Tensor4D;
}

/** Accessors the block needs from its owner (parameters and the BatchNorm mode in use). */
export interface CotContext {
  weight(name: string): Tensor4D;
  bias(name: string): Tensor4D | Tensor1D;
  norm(x: Tensor4D, name: string): Tensor4D;
}

/**
 * Softmax attention logits [B, H, W, heads*k*k] -> weights [B, H, W, heads, k*k] summing to 1 over the window.
 */
export function cotAttention(tf: Tf, logits: Tensor4D, heads: number): Tensor5D {
  const [b, h, w] = logits.shape;
  return tf.softmax(tf.reshape(logits, [b, h, w, heads, COT_KERNEL * COT_KERNEL])) as Tensor5D;
}

/**
 * Improved Contextual Transformer block (paper eq. 1-2; CoTNet, Li et al. 2021), replacing a residual-block 3x3 conv:
 * - K = ReLU(BN(conv_kxk(X)))  (static context, grouped conv, stride s)
 * - Q = conv_1x1(X)  (stride s);  V = conv_1x1(conv_1x1(X))  (stride s on the first)
 * - A = softmax over the k x k window of conv_1x1(ReLU(conv_1x1([K, Q])))  (per head)
 * - G(p) = sum over the k x k neighbourhood N(p) of A(p, j) * V(p + j)  (zero padding at the border)
 * - Y = K + G
 * @param x - [B, H, W, inC] float32. @returns [B, H/s, W/s, outC] float32.
 */
export function cotForward(tf: Tf, x: Tensor4D, name: string, outC: number, stride: number, o: CotOptions, ctx: CotContext): Tensor4D {
  const k = tf.relu(ctx.norm(groupedConv(tf, x, ctx.weight(`${name}.key.conv.weight`), o.groups, stride), `${name}.key.bn`)) as Tensor4D;
  const q = convTorch(tf, x, ctx.weight(`${name}.query.weight`), stride, 0);
  const v = convTorch(tf, convTorch(tf, x, ctx.weight(`${name}.value.0.weight`), stride, 0), ctx.weight(`${name}.value.1.weight`), 1, 0);
  let a = tf.add(tf.conv2d(tf.concat([k, q], 3), ctx.weight(`${name}.attn.0.weight`), 1, 'valid'), ctx.bias(`${name}.attn.0.bias`)) as Tensor4D;
  a = tf.add(tf.conv2d(tf.relu(a), ctx.weight(`${name}.attn.1.weight`), 1, 'valid'), ctx.bias(`${name}.attn.1.bias`)) as Tensor4D;
  const att = cotAttention(tf, a, o.heads);
  const [b, h, w] = v.shape;
  const r = Math.floor(COT_KERNEL / 2);
  const vp = tf.pad(v, [[0, 0], [r, r], [r, r], [0, 0]]);
  const attWin = tf.split(att, COT_KERNEL * COT_KERNEL, 4);
  let g: Tensor5D | undefined;
  for (let j = 0; j < COT_KERNEL * COT_KERNEL; j++) {
    const dy = Math.floor(j / COT_KERNEL), dx = j % COT_KERNEL;
    const shifted = tf.reshape(tf.slice(vp, [0, dy, dx, 0], [b, h, w, outC]), [b, h, w, o.heads, outC / o.heads]);
    const term = tf.mul(shifted, attWin[j]!) as Tensor5D;
    g = g ? (tf.add(g, term) as Tensor5D) : term;
  }
  return tf.add(k, tf.reshape(g!, [b, h, w, outC])) as Tensor4D;
}
