import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { Tf } from '../backend/index.js';
import { SERVE_DEFAULTS, startServer } from '../serve/index.js';
import type { EngineChoice } from '../serve/engine.js';
import { int, positive, positiveInt } from './options.js';

interface ServeFlags {
  checkpoint?: string[]; models?: string; host: string; port: number; engine: EngineChoice; maxBatch: number; maxWaitMs: number;
  maxQueue: number; timeoutMs: number; bodyLimitMb: number; maxPixels: number; apiKey?: string; threads?: number; inferenceThread: boolean; drainMs: number;
}

export function registerServe(program: Command, tfLoader: () => Tf): void {
  program
    .command('serve')
    .description('HTTP inspection service: POST /v1/models/{name}/predict, GET /v1/models, /healthz, /readyz, /metrics, /openapi.json and a page at / (docs/deploy.md)')
    .option('--checkpoint <dirs...>', "checkpoint folders written by 'ntsnet fit', each served under its folder name")
    .option('--models <dir>', 'a folder holding one checkpoint folder per model (served under the sub-folder names)')
    .option('--host <addr>', 'address to listen on (keep 127.0.0.1 unless a load balancer must reach it)', '127.0.0.1')
    .option('--port <n>', 'port (0 = any free port; the address is printed)', (v) => { const n = int(v); if (n < 0 || n > 65535) throw new InvalidArgumentError(`--port ${v}: a TCP port is 0-65535 (0 = any free port).`); return n; }, 8080)
    .addOption(new Option('--engine <name>', 'auto: onnxruntime-node (model.onnx in the checkpoint folder, exported when missing or stale), tfjs-node when that cannot be written or loaded; tfjs gives bit-identical results at every batch size').choices(['auto', 'tfjs', 'onnxruntime']).default('auto'))
    .option('--max-batch <n>', 'micro-batching: largest forward pass (1 = off)', positiveInt, SERVE_DEFAULTS.maxBatch)
    .option('--max-wait-ms <ms>', 'micro-batching: longest time a request waits for others to join its batch', (v) => (v === '0' ? 0 : positive(v)), SERVE_DEFAULTS.maxWaitMs)
    .option('--max-queue <n>', 'predict requests admitted per model and not yet answered; beyond: 503 + Retry-After', positiveInt, SERVE_DEFAULTS.maxQueue)
    .option('--timeout-ms <ms>', 'per-request time limit (504 after it)', positiveInt, SERVE_DEFAULTS.timeoutMs)
    .option('--body-limit-mb <mb>', 'largest request body (413 above)', positive, SERVE_DEFAULTS.bodyLimit / 2 ** 20)
    .option('--max-pixels <n>', 'largest image, width x height from its header (413 above)', positiveInt, SERVE_DEFAULTS.maxPixels)
    .option('--api-key <key>', 'require this key on /v1/* (Authorization: Bearer KEY or X-API-Key); default $NTSNET_API_KEY')
    .option('--threads <n>', 'onnxruntime intra-op threads', positiveInt)
    .option('--drain-ms <ms>', 'on SIGTERM/SIGINT, keep listening this long with /readyz and new requests answering 503 (so a load balancer takes the instance out), then finish in-flight requests and exit', (v) => (v === '0' ? 0 : positive(v)), 2000)
    .option('--no-inference-thread', 'run the model on the HTTP thread (by default each model runs in its own worker thread, so requests are received and decoded during a forward pass)')
    .action(async (o: ServeFlags) => {
      const tf = tfLoader();
      const log = (l: string): void => void process.stderr.write(`${l}\n`);
      const apiKey = o.apiKey ?? (process.env.NTSNET_API_KEY || undefined);
      const s = await startServer(tf, {
        checkpoints: o.checkpoint, modelsDir: o.models, host: o.host, port: o.port, engine: o.engine, maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs,
        maxQueue: o.maxQueue, timeoutMs: o.timeoutMs, bodyLimit: Math.round(o.bodyLimitMb * 2 ** 20), maxPixels: o.maxPixels, apiKey, threads: o.threads, thread: o.inferenceThread, log,
      });
      log(`ntsnet serve: listening on ${s.url} (micro-batching: max batch ${o.maxBatch}, max wait ${o.maxWaitMs} ms; queue ${o.maxQueue} per model; API key ${apiKey ? 'required' : 'off'})`);
      let stopping = false;
      const stop = (sig: string): void => {
        if (stopping) return;
        stopping = true;
        log(`ntsnet serve: ${sig}: draining for ${o.drainMs} ms (/readyz 503), finishing in-flight requests, then exiting`);
        s.close(o.drainMs).then(() => { log('ntsnet serve: stopped'); process.exit(0); }, (e: unknown) => { log(`ntsnet serve: error while stopping: ${String(e)}`); process.exit(1); });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
