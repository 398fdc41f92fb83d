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
  /** Stride-2 blocks: strided convolutions (default) or average pool + stride-1 block (CoTNet). */
  downsample?: 'strided' | 'avgpool';
  /** Value path's second 1x1 convolution: Kaiming-normal (default) or zero at initialisation. */
  valueInit?: 'kaiming' | 'zero';
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
  if (stride > 1 && o.downsample === 'avgpool') {
    // CoTNet: average-pool first (3x3, stride 2, zero padding 1 counted, as torch AvgPool2d(3, 2, 1)), then a stride-1
    // block, so the 1x1 query / value convolutions see every input pixel instead of one in four.
    const pooled = tf.avgPool(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, stride, 'valid') as Tensor4D;
    return cotForward(tf, pooled, name, outC, 1, o, ctx);
  }
  const k = tf.relu(ctx.norm(groupedConv(tf, x, ctx.weight(`${name}.key.conv.weight`), o.groups, stride), `${name}.key.bn`)) as Tensor4D;
  const q = convTorch(tf, x, ctx.weight(`${name}.query.weight`), stride, 0);
  const v = convTorch(tf, convTorch(tf, x, ctx.weight(`${name}.value.0.weight`), stride, 0), ctx.weight(`${name}.value.1.weight`), 1, 0);
  let a = tf.add(tf.conv2d(tf.concat([k, q], 3), ctx.weight(`${name}.attn.0.weight`), 1, 'valid'), ctx.bias(`${name}.attn.0.bias`)) as Tensor4D;
  a = tf.add(tf.conv2d(tf.relu(a), ctx.weight(`${name}.attn.1.weight`), 1, 'valid'), ctx.bias(`${name}.attn.1.bias`)) as Tensor4D;
  const att = cotAttention(tf, a, o.heads);
  return tf.add(k, localAggregate(tf, v, att)) as Tensor4D;
}

/** Shifted views of a zero-padded [B, H+2r, W+2r, C] tensor, one per window position j = dy * k + dx, as [B, H, W, heads, C/heads]. */
function windowViews(tf: Tf, vp: Tensor4D, b: number, h: number, w: number, heads: number): Tensor5D[] {
  const c = vp.shape[3];
  const out: Tensor5D[] = [];
  for (let j = 0; j < COT_KERNEL * COT_KERNEL; j++) {
    const dy = Math.floor(j / COT_KERNEL), dx = j % COT_KERNEL;
    out.push(tf.reshape(tf.slice(vp, [0, dy, dx, 0], [b, h, w, c]), [b, h, w, heads, c / heads]) as Tensor5D);
  }
  return out;
}

/**
 * G(p) = sum_j A(p, j) * V(p + offset_j) over the k x k window (zero padding), per head.
 * A custom gradient keeps only V and A for the backward pass: the nine shifted products are rebuilt there instead of
 * being kept on the tape (they dominated training memory at 256 px).
 * @param v - [B, H, W, C]; @param att - [B, H, W, heads, k*k]. @returns [B, H, W, C].
 */
export function localAggregate(tf: Tf, v: Tensor4D, att: Tensor5D): Tensor4D {
  const r = Math.floor(COT_KERNEL / 2);
  const op = tf.customGrad((...args: unknown[]) => {
    const [vi, ai, save] = args as [Tensor4D, Tensor5D, (t: import('@tensorflow/tfjs-node').Tensor[]) => void];
    const [b, h, w, c] = vi.shape;
    const heads = ai.shape[3];
    save([vi, ai]);
    const value = tf.tidy(() => {
      const views = windowViews(tf, tf.pad(vi, [[0, 0], [r, r], [r, r], [0, 0]]), b, h, w, heads);
      const aw = tf.split(ai, COT_KERNEL * COT_KERNEL, 4);
      let g = tf.mul(views[0]!, aw[0]!);
      for (let j = 1; j < views.length; j++) g = tf.add(g, tf.mul(views[j]!, aw[j]!));
      return tf.reshape(g, [b, h, w, c]) as Tensor4D;
    });
    return {
      value,
      gradFunc: (dy: import('@tensorflow/tfjs-node').Tensor, saved: import('@tensorflow/tfjs-node').Tensor[]) => {
        const [sv, sa] = saved as [Tensor4D, Tensor5D];
        const dg = tf.reshape(dy, [b, h, w, heads, c / heads]);
        const views = windowViews(tf, tf.pad(sv, [[0, 0], [r, r], [r, r], [0, 0]]), b, h, w, heads);
        const aw = tf.split(sa, COT_KERNEL * COT_KERNEL, 4);
        // dA_j = sum over the head's channels of dG * V(p + offset_j)
        const dA = tf.concat(views.map((vj) => tf.sum(tf.mul(dg, vj), 4, true)), 4);
        // dV(q) = sum_j A(q - offset_j, j) * dG(q - offset_j): scatter each product back to its shifted position.
        let dvp: Tensor4D | undefined;
        for (let j = 0; j < aw.length; j++) {
          const dy0 = Math.floor(j / COT_KERNEL), dx0 = j % COT_KERNEL;
          const term = tf.pad(tf.reshape(tf.mul(dg, aw[j]!), [b, h, w, c]), [[0, 0], [dy0, 2 * r - dy0], [dx0, 2 * r - dx0], [0, 0]]) as Tensor4D;
          dvp = dvp ? (tf.add(dvp, term) as Tensor4D) : term;
        }
        const dv = tf.slice(dvp!, [0, r, r, 0], [b, h, w, c]);
        return [dv, dA];
      },
    };
  });
  return op(v, att) as Tensor4D;
}

