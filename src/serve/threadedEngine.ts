/**
 * An {@link InferenceEngine} that runs in its own worker thread. tfjs-node executes every op synchronously on the
 * calling thread, so a forward pass on the HTTP thread stops the event loop for its whole duration: no request is
 * read, no upload's decode completes, and the micro-batcher sees requests trickle in one stage per pass. With the
 * engine in a worker, uploads are received and decoded while the model runs, and the next batch is ready when the
 * pass ends.
 */
import { Worker } from 'node:worker_threads';
import type { EngineChoice, EngineName, EngineOutput, InferenceEngine } from './engine.js';

/** What the worker is started with. */
export interface EngineWorkerInit {
  checkpointDir: string;
  choice: EngineChoice;
  threads?: number;
}

/** Messages from the main thread to the worker. */
export type ToEngineWorker =
  | { type: 'run'; id: number; batch: Float32Array; n: number }
  | { type: 'tensors'; id: number }
  | { type: 'dispose'; id: number };

/** Messages from the worker to the main thread. */
export type FromEngineWorker =
  | { type: 'ready'; name: EngineName; imageSize: number }
  | { type: 'failed'; message: string }
  | { type: 'log'; line: string }
  | { type: 'result'; id: number; scores: Float32Array; maps: Float32Array }
  | { type: 'count'; id: number; tensors: number }
  | { type: 'disposed'; id: number }
  | { type: 'error'; id: number; message: string };

interface Pending {
  resolve: (m: FromEngineWorker) => void;
  reject: (e: Error) => void;
}

/** An engine living in a worker thread; {@link tensors} reports the worker's live TF.js tensors. */
export class ThreadedEngine implements InferenceEngine {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;

  private constructor(private readonly worker: Worker, readonly name: EngineName, readonly imageSize: number) {
    worker.on('message', (m: FromEngineWorker) => {
      if (!('id' in m)) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.type === 'error') p.reject(new Error(m.message));
      else p.resolve(m);
    });
    const fail = (e: Error): void => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', (e) => fail(new Error(`the ${name} inference thread failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`the ${name} inference thread exited (code ${code})`)));
  }

  /**
   * Starts a worker thread that loads the checkpoint and opens the chosen engine in it (see `openEngine`).
   * @throws Error with the worker's message when the checkpoint or its engine cannot be loaded.
   */
  static async open(init: EngineWorkerInit, log?: (line: string) => void): Promise<ThreadedEngine> {
    const worker = new Worker(new URL('./engineWorker.js', import.meta.url), { workerData: init });
    return new Promise<ThreadedEngine>((resolve, reject) => {
      const onMessage = (m: FromEngineWorker): void => {
        if (m.type === 'log') log?.(m.line);
        else if (m.type === 'ready') {
          worker.off('error', onError);
          worker.off('exit', onExit);
          resolve(new ThreadedEngine(worker, m.name, m.imageSize));
        } else if (m.type === 'failed') {
          worker.off('message', onMessage);
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      const onError = (e: Error): void => reject(new Error(`${init.checkpointDir}: the inference thread failed to start: ${e.message}`));
      const onExit = (code: number): void => reject(new Error(`${init.checkpointDir}: the inference thread exited while loading (code ${code})`));
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  }

  private call(msg: ToEngineWorker, transfer: ArrayBuffer[] = []): Promise<FromEngineWorker> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  /** Why the thread can no longer score (it failed or exited), or undefined while it can. */
  get failure(): string | undefined {
    return this.dead?.message;
  }

  /** Scores a batch in the worker. `batch` is copied (the caller keeps it usable). */
  async run(batch: Float32Array, n: number): Promise<EngineOutput> {
    const copy = batch.slice(0, n * this.imageSize * this.imageSize * 3);
    const r = await this.call({ type: 'run', id: this.nextId++, batch: copy, n }, [copy.buffer as ArrayBuffer]);
    if (r.type !== 'result') throw new Error(`unexpected reply '${r.type}' from the inference thread`);
    return { scores: r.scores, maps: r.maps };
  }

  /** Live TF.js tensors in the worker (constant between requests when nothing leaks). */
  async tensors(): Promise<number> {
    const r = await this.call({ type: 'tensors', id: this.nextId++ });
    return r.type === 'count' ? r.tensors : NaN;
  }

  /** Disposes the model in the worker, then ends the thread. */
  async dispose(): Promise<void> {
    if (!this.dead) {
      try {
        await this.call({ type: 'dispose', id: this.nextId++ });
      } catch {
        // the thread is gone already: nothing left to free
      }
    }
    await this.worker.terminate();
  }
}
