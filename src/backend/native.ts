import type { Tensor } from '@tensorflow/tfjs-node';
import type { Tf } from './index.js';

/** The parts of tfjs-node's NodeJSKernelBackend used to run a TensorFlow kernel tfjs does not expose. */
export interface NativeBackend {
  binding: { TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: Tensor[], numOutputs: number): Tensor[];
}

/** tfjs-node's native backend, or undefined on another backend (callers then use tfjs's composite ops). */
export function nativeBackend(tf: Tf): NativeBackend | undefined {
  const b = tf.backend() as unknown as Partial<NativeBackend>;
  return typeof b.executeMultipleOutputs === 'function' && b.binding ? (b as NativeBackend) : undefined;
}

/** The float32 `T` type attribute of a TensorFlow kernel. */
export function floatTypeAttr(b: NativeBackend, name = 'T'): unknown {
  return { name, type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
}
