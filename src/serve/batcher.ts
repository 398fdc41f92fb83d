/**
 * Dynamic micro-batching: requests for one model that arrive while the engine is busy (or within `maxWaitMs` of each
 * other) are scored in one forward pass of up to `maxBatch` images. One pass runs at a time per model.
 */
import type { EngineOutput, InferenceEngine } from './engine.js';

/** Raised for a request that waited longer than its timeout before its batch started. */
export class QueueTimeoutError extends Error {
  override readonly name = 'QueueTimeoutError';
}

/** Raised for a request whose client went away before its batch started (its pass is skipped). */
export class RequestAbortedError extends Error {
  override readonly name = 'RequestAbortedError';
}

/** Options of {@link MicroBatcher}. */
export interface BatcherOptions {
  /** Largest batch (1 = no batching). */
  maxBatch: number;
  /** Longest time the first waiting request is held back to gather a larger batch, in ms (0: start at once). */
  maxWaitMs: number;
}

/** Result for one image of a batch. */
export interface BatchedResult {
  score: number;
  /** [size, size] float32 map (its own copy). */
  map: Float32Array;
  /** Size of the forward pass this image was part of. */
  batchSize: number;
  /** Time spent waiting for the pass to start, and the pass itself, in ms. */
  queueMs: number;
  inferenceMs: number;
}

interface Item {
  input: Float32Array;
  enqueued: number;
  resolve: (r: BatchedResult) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Groups concurrent single-image requests into batched engine calls. */
export class MicroBatcher {
  private readonly waiting: Item[] = [];
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private idle: Array<() => void> = [];
  private readonly listeners: Array<(size: number, ms: number) => void> = [];

  constructor(private readonly engine: InferenceEngine, private readonly opts: BatcherOptions) {
    if (!(Number.isInteger(opts.maxBatch) && opts.maxBatch >= 1)) throw new RangeError(`maxBatch must be a positive integer (got ${opts.maxBatch})`);
    if (!(opts.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0 (got ${opts.maxWaitMs})`);
  }

  /** Largest batch. */
  get maxBatch(): number {
    return this.opts.maxBatch;
  }

  /** Longest wait for a larger batch, in ms. */
  get maxWaitMs(): number {
    return this.opts.maxWaitMs;
  }

  /** Calls `fn(size, ms)` after every forward pass (for metrics). */
  onBatch(fn: (size: number, ms: number) => void): void {
    this.listeners.push(fn);
  }

  /** Requests waiting for a forward pass (not counting the pass in progress). */
  get depth(): number {
    return this.waiting.length;
  }

  /** True while a forward pass runs. */
  get busy(): boolean {
    return this.running;
  }

  /**
   * Queues one image ([size, size, 3] normalised float32) and resolves with its score and map.
   * @param timeoutMs reject with {@link QueueTimeoutError} when the image is still waiting after this long.
   * @param signal when it aborts (the client disconnected) while the image still waits, the image leaves the queue
   *   and the promise rejects with {@link RequestAbortedError}; once its pass has started, the pass completes.
   */
  submit(input: Float32Array, timeoutMs?: number, signal?: AbortSignal): Promise<BatchedResult> {
    const s = this.engine.imageSize;
    if (input.length !== s * s * 3) return Promise.reject(new RangeError(`MicroBatcher.submit: ${input.length} values, expected ${s}x${s}x3`));
    if (signal?.aborted) return Promise.reject(new RequestAbortedError('the client disconnected before the request reached the model'));
    return new Promise<BatchedResult>((resolve, reject) => {
      const item: Item = { input, enqueued: performance.now(), resolve, reject };
      const leave = (e: Error): void => {
        const i = this.waiting.indexOf(item);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        if (item.timer) clearTimeout(item.timer);
        reject(e);
        if (!this.running && this.waiting.length === 0) for (const r of this.idle.splice(0)) r();
      };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs))
        item.timer = setTimeout(() => leave(new QueueTimeoutError(`the request waited ${Math.round(timeoutMs)} ms without reaching the model`)), timeoutMs);
      signal?.addEventListener('abort', () => leave(new RequestAbortedError('the client disconnected before the request reached the model')), { once: true });
      this.waiting.push(item);
      this.schedule();
    });
  }

  /** Resolves when nothing waits and no pass runs. */
  drain(): Promise<void> {
    if (!this.running && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private schedule(): void {
    if (this.running || this.waiting.length === 0) return;
    const oldest = this.waiting[0]!.enqueued;
    const wait = this.opts.maxWaitMs - (performance.now() - oldest);
    if (this.waiting.length >= this.opts.maxBatch || wait <= 0) {
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      void this.runBatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = undefined; this.schedule(); }, wait);
    }
  }

  private async runBatch(): Promise<void> {
    this.running = true;
    const items = this.waiting.splice(0, this.opts.maxBatch);
    const s = this.engine.imageSize, px = s * s * 3, hw = s * s;
    const n = items.length;
    const start = performance.now();
    for (const it of items) if (it.timer) clearTimeout(it.timer);
    try {
      const batch = n === 1 ? items[0]!.input : new Float32Array(n * px);
      if (n > 1) items.forEach((it, i) => batch.set(it.input, i * px));
      let out: EngineOutput;
      try {
        out = await this.engine.run(batch, n);
      } catch (e) {
        for (const it of items) it.reject(e as Error);
        return;
      }
      const ms = performance.now() - start;
      for (const l of this.listeners) l(n, ms);
      items.forEach((it, i) =>
        it.resolve({ score: out.scores[i]!, map: out.maps.slice(i * hw, (i + 1) * hw), batchSize: n, queueMs: start - it.enqueued, inferenceMs: ms }),
      );
    } finally {
      this.running = false;
      if (this.waiting.length) this.schedule();
      else for (const r of this.idle.splice(0)) r();
    }
  }
}
