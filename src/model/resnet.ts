import type { Tensor4D } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { LayerId } from './config.js';

/** Blocks per stage for torchvision's ResNet18 / ResNet34 (BasicBlock). */
export const RESNET_BLOCKS: Record<18 | 34, [number, number, number]> = { 18: [2, 2, 2], 34: [3, 4, 6] };
/** Output channels and first-block stride of layer1..layer3. */
export const STAGES: ReadonlyArray<{ channels: number; stride: number }> = [
  { channels: 64, stride: 1 },
  { channels: 128, stride: 2 },
  { channels: 256, stride: 2 },
];

/** Operations a trunk is built from; the teacher and the student plug in different ones. */
export interface TrunkOps {
  /** Plain convolution with PyTorch padding semantics; `name` is the weight path without `.weight`. */
  conv(x: Tensor4D, name: string, stride: number, pad: number): Tensor4D;
  /** The residual-block 3x3 convolution (`layerL.i.conv1|conv2`): plain for the teacher, CoT or plain for the student. */
  blockConv(x: Tensor4D, name: string, inC: number, outC: number, stride: number): Tensor4D;
  /** BatchNorm at path `name` (e.g. `layer1.0.bn1`). */
  norm(x: Tensor4D, name: string): Tensor4D;
  /** ReLU (default tf.relu; the training student's has a fused gradient, model/relu.ts). */
  relu?(x: Tensor4D): Tensor4D;
}

/**
 * Convolution with PyTorch's symmetric zero padding. TF's 'same' padding puts the odd extra row/column after the
 * image for stride 2, which shifts the sampling grid against torchvision's, so those cases pad explicitly.
 * @param x - [B, H, W, Cin]; @param w - [k, k, Cin, Cout] (HWIO). @returns [B, H', W', Cout].
 */
export function convTorch(tf: Tf, x: Tensor4D, w: Tensor4D, stride: number, pad: number): Tensor4D {
  const k = w.shape[0];
  if (pad === 0) return tf.conv2d(x, w, stride, 'valid');
  if (stride === 1 && k === 2 * pad + 1) return tf.conv2d(x, w, 1, 'same');
  return tf.conv2d(tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), w, stride, 'valid');
}

/**
 * Forward pass of a torchvision ResNet trunk (stem, layer1..layer3 of BasicBlocks) returning the features after the
 * requested layers (paper section 3.1). Stops after the deepest requested layer.
 * @param x - normalised images [B, H, W, 3] float32 (H, W multiples of 16).
 * @returns one [B, H/2^(l+1), W/2^(l+1), C_l] float32 tensor per requested layer l, in ascending layer order
 *   (C = 64, 128, 256).
 */
export function trunkForward(tf: Tf, x: Tensor4D, ops: TrunkOps, depth: 18 | 34, layers: readonly LayerId[]): Tensor4D[] {
  const relu = ops.relu ?? ((t: Tensor4D): Tensor4D => tf.relu(t));
  const want = [...layers].sort();
  const last = want[want.length - 1]!;
  let h = relu(ops.norm(ops.conv(x, 'conv1', 2, 3), 'bn1'));
  // Zero padding equals PyTorch's -inf padding here because the input is post-ReLU (>= 0).
  h = tf.maxPool(tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, 'valid');
  const out: Tensor4D[] = [];
  let inC = 64;
  for (let l = 1; l <= last; l++) {
    const { channels, stride } = STAGES[l - 1]!;
    for (let i = 0; i < RESNET_BLOCKS[depth][l - 1]!; i++) {
      const p = `layer${l}.${i}`;
      const s = i === 0 ? stride : 1;
      let y = relu(ops.norm(ops.blockConv(h, `${p}.conv1`, inC, channels, s), `${p}.bn1`));
      y = ops.norm(ops.blockConv(y, `${p}.conv2`, channels, channels, 1), `${p}.bn2`);
      const shortcut = s !== 1 || inC !== channels ? ops.norm(ops.conv(h, `${p}.downsample.0`, s, 0), `${p}.downsample.1`) : h;
      h = relu(tf.add(y, shortcut) as Tensor4D);
      inC = channels;
    }
    if (want.includes(l as LayerId)) out.push(h);
  }
  return out;
}

/** Adds the four BatchNorm entries of a torchvision BatchNorm2d to a shape map. */
export function addBn(shapes: Map<string, number[]>, name: string, c: number): void {
  for (const s of ['weight', 'bias', 'running_mean', 'running_var']) shapes.set(`${name}.${s}`, [c]);
}

/**
 * Parameter names and TF-layout shapes of a plain ResNet trunk up to layer `upTo`, with torchvision's names
 * (e.g. `layer2.0.downsample.0.weight` [1, 1, 64, 128]). `blockConv` adds the shapes of a residual-block 3x3
 * convolution (default: a plain 3x3 conv).
 */
export function trunkShapes(
  depth: 18 | 34,
  upTo: LayerId,
  blockConv: (shapes: Map<string, number[]>, name: string, inC: number, outC: number) => void = (s, n, i, o) => s.set(`${n}.weight`, [3, 3, i, o]),
): Map<string, number[]> {
  const s = new Map<string, number[]>();
  s.set('conv1.weight', [7, 7, 3, 64]);
  addBn(s, 'bn1', 64);
  let inC = 64;
  for (let l = 1; l <= upTo; l++) {
    const { channels, stride } = STAGES[l - 1]!;
    for (let i = 0; i < RESNET_BLOCKS[depth][l - 1]!; i++) {
      const p = `layer${l}.${i}`;
      blockConv(s, `${p}.conv1`, inC, channels);
      addBn(s, `${p}.bn1`, channels);
      blockConv(s, `${p}.conv2`, channels, channels);
      addBn(s, `${p}.bn2`, channels);
      if (i === 0 && (stride !== 1 || inC !== channels)) {
        s.set(`${p}.downsample.0.weight`, [1, 1, inC, channels]);
        addBn(s, `${p}.downsample.1`, channels);
      }
      inC = channels;
    }
  }
  return s;
}
