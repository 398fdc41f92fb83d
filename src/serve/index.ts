/**
 * `ntsnet serve` as a library: load checkpoints, build the Fastify app, listen on 127.0.0.1 (by default) and shut
 * down gracefully (finish in-flight requests, then release the models).
 */
import type { AddressInfo } from 'node:net';
import type { Tf } from '../backend/index.js';
import { buildApp, type ServeApp, type ServeLimits } from './app.js';
import type { EngineChoice } from './engine.js';
import { loadModels, modelSpecs } from './models.js';

export { buildApp } from './app.js';
export type { ServeLimits, AppOptions, ServeApp } from './app.js';
export { MicroBatcher, QueueTimeoutError } from './batcher.js';
export { openEngine, type InferenceEngine, type EngineChoice, type EngineName } from './engine.js';
export { ThreadedEngine } from './threadedEngine.js';
export { loadModels, modelSpecs, type ServedModel, type ModelSpec } from './models.js';

/** Options of {@link startServer}. */
export interface ServeOptions extends Partial<ServeLimits> {
  /** Checkpoint folders, each served under its folder name. */
  checkpoints?: string[];
  /** A folder holding one checkpoint folder per model. */
  modelsDir?: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 8080; 0 = any free port). */
  port?: number;
  engine?: EngineChoice;
  /** Micro-batching: largest batch (default 8; 1 = off) and longest wait for more requests (default 2 ms). */
  maxBatch?: number;
  maxWaitMs?: number;
  threads?: number;
  /** Run each engine in a worker thread (default true; see ThreadedEngine). */
  thread?: boolean;
  log?: (line: string) => void;
}

/** Defaults of the limits (docs/deploy.md). */
export const SERVE_DEFAULTS: ServeLimits & { maxBatch: number; maxWaitMs: number } = {
  bodyLimit: 32 * 2 ** 20, maxPixels: 40_000_000, maxQueue: 64, timeoutMs: 30_000, maxBatch: 8, maxWaitMs: 2,
};

/** A running service. */
export interface RunningServer extends ServeApp {
  /** `http://HOST:PORT`. */
  url: string;
  /**
   * Graceful shutdown: /readyz turns 503 and new requests get 503 for `drainMs` (default 0) while the port stays open,
   * then the listener closes, in-flight requests are answered and the models released.
   */
  close(drainMs?: number): Promise<void>;
}

/**
 * Loads the models and starts listening.
 * @throws Error when a checkpoint cannot be loaded or the port is taken.
 */
export async function startServer(tf: Tf, o: ServeOptions): Promise<RunningServer> {
  const specs = modelSpecs(o.checkpoints ?? [], o.modelsDir);
  const models = await loadModels(tf, specs, {
    engine: o.engine ?? 'auto', threads: o.threads, thread: o.thread, log: o.log,
    batching: { maxBatch: o.maxBatch ?? SERVE_DEFAULTS.maxBatch, maxWaitMs: o.maxWaitMs ?? SERVE_DEFAULTS.maxWaitMs },
  });
  const served = await buildApp({
    tf, models,
    bodyLimit: o.bodyLimit ?? SERVE_DEFAULTS.bodyLimit, maxPixels: o.maxPixels ?? SERVE_DEFAULTS.maxPixels,
    maxQueue: o.maxQueue ?? SERVE_DEFAULTS.maxQueue, timeoutMs: o.timeoutMs ?? SERVE_DEFAULTS.timeoutMs, apiKey: o.apiKey, log: o.log,
  });
  try {
    await served.app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8080 });
  } catch (e) {
    await served.app.close();
    throw new Error(`Cannot listen on ${o.host ?? "127.0.0.1"}:${o.port ?? 8080}: ${(e as Error).message.replace(/\.+$/, "")}. Choose another --port.`);
  }
  const addr = served.app.server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    ...served,
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: (drainMs = 0) => (closing ??= (async () => {
      served.startDraining();
      // Still listening while draining: /readyz answers 503 and new requests get 503 shutting_down, so a load
      // balancer sees the instance leave instead of connection errors.
      if (drainMs > 0) await new Promise((r) => setTimeout(r, drainMs));
      await served.app.close();
    })()),
  };
}
