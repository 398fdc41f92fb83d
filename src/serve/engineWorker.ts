/**
 * Worker-thread entry of {@link ThreadedEngine}: loads one checkpoint, opens its engine and answers run / tensors /
 * dispose messages. Output arrays are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTf } from '../backend/index.js';
import { loadCheckpoint } from '../engine/checkpoint.js';
import { openEngine } from './engine.js';
import type { EngineWorkerInit, FromEngineWorker, ToEngineWorker } from './threadedEngine.js';

const port = parentPort!;
const post = (m: FromEngineWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
/** An array that owns its whole buffer can be transferred; a view into a larger one is copied first. */
const own = (a: Float32Array): Float32Array => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice());

const init = workerData as EngineWorkerInit;
try {
  const tf = loadTf();
  const { model } = await loadCheckpoint(tf, init.checkpointDir);
  const engine = await openEngine(tf, model, init.checkpointDir, init.choice, { threads: init.threads, log: (line) => post({ type: 'log', line }) });
  port.on('message', (m: ToEngineWorker) => {
    if (m.type === 'run') {
      engine.run(m.batch, m.n).then(
        (r) => {
          const scores = own(r.scores), maps = own(r.maps);
          post({ type: 'result', id: m.id, scores, maps }, [scores.buffer as ArrayBuffer, maps.buffer as ArrayBuffer]);
        },
        (e: unknown) => post({ type: 'error', id: m.id, message: (e as Error).message ?? String(e) }),
      );
    } else if (m.type === 'tensors') {
      post({ type: 'count', id: m.id, tensors: tf.memory().numTensors });
    } else if (m.type === 'dispose') {
      void engine.dispose().finally(() => {
        post({ type: 'disposed', id: m.id });
        port.close();
      });
    }
  });
  post({ type: 'ready', name: engine.name, imageSize: engine.imageSize });
} catch (e) {
  post({ type: 'failed', message: (e as Error).message ?? String(e) });
}
