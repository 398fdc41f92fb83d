import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs-node';

/** The TensorFlow.js namespace as used throughout ntsnet (native Node backend). */
export type Tf = typeof TF;

const require = createRequire(import.meta.url);
let loaded: Tf | undefined;

/** Thrown when the native tfjs-node backend is not available. */
export class BackendError extends Error {}

/**
 * Loads `@tensorflow/tfjs-node` and makes sure the native `tensorflow` backend is active.
 * The pure-JS `cpu` and `wasm` backends are about 100x slower (and WASM lacks convolution filter
 * gradients), so they are refused unless `NTSNET_ALLOW_SLOW_BACKEND=1` is set explicitly.
 * @throws BackendError with the setup command to run when the native binding is missing.
 */
export function loadTf(): Tf {
  if (loaded) return loaded;
  // libtensorflow's INFO lines (oneDNN notice, CPU features) are noise for users; warnings and errors still show.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  let tf: Tf;
  try {
    tf = require('@tensorflow/tfjs-node') as Tf;
  } catch (e) {
    if (process.env.NTSNET_ALLOW_SLOW_BACKEND === '1') {
      tf = require('@tensorflow/tfjs') as Tf;
      process.emitWarning('ntsnet: native tfjs-node backend unavailable; running on the slow pure-JS backend because NTSNET_ALLOW_SLOW_BACKEND=1.');
      loaded = tf;
      return tf;
    }
    throw new BackendError(
      `The native TensorFlow backend (@tensorflow/tfjs-node) could not be loaded: ${(e as Error).message.split('\n')[0]}\n` +
        `Fix: run 'npm run setup' (scripts/setup-tfjs-node.sh builds the binding, also offline from the tensorflow-cpu PyPI wheel).\n` +
        `To run anyway on the ~100x slower pure-JS backend, set NTSNET_ALLOW_SLOW_BACKEND=1.`,
    );
  }
  if (tf.getBackend() !== 'tensorflow' && process.env.NTSNET_ALLOW_SLOW_BACKEND !== '1') {
    throw new BackendError(`Active TF.js backend is '${tf.getBackend()}', not the native 'tensorflow' backend. Set NTSNET_ALLOW_SLOW_BACKEND=1 to allow it.`);
  }
  loaded = tf;
  return tf;
}
