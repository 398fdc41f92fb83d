import type { Command } from 'commander';
import { DEFAULT_QUEUE, defaultRedisUrl } from '../queue/jobs.js';
import { startWorker } from '../queue/worker.js';
import { positiveInt } from './options.js';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run queued jobs (fit, test, chunked predict) from Redis, each in a child process; run one per machine or more (docs/deploy.md). SIGTERM/SIGINT finish the running jobs first')
    .option('--redis <url>', 'Redis URL (default $NTSNET_REDIS or redis://127.0.0.1:6379)')
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .option('--concurrency <n>', 'jobs run at the same time by this worker', positiveInt, 1)
    .option('--lock-ms <ms>', 'job lock; a job whose worker stops renewing it for this long is taken over by another worker', positiveInt, 30_000)
    .option('--stalled-interval-ms <ms>', 'how often to look for stalled jobs', positiveInt, 30_000)
    .action(async (o: { redis?: string; queue: string; concurrency: number; lockMs: number; stalledIntervalMs: number }) => {
      const log = (l: string): void => void process.stderr.write(`${new Date().toISOString()} ${l}\n`);
      const redis = o.redis ?? defaultRedisUrl();
      const w = await startWorker({ redis, queue: o.queue, concurrency: o.concurrency, lockDurationMs: o.lockMs, stalledIntervalMs: o.stalledIntervalMs, log });
      log(`ntsnet worker: pid ${process.pid}, queue '${o.queue}' on ${redis}, concurrency ${o.concurrency}: waiting for jobs`);
      let stopping = false;
      const stop = (sig: string): void => {
        if (stopping) return;
        stopping = true;
        log(`ntsnet worker: ${sig}: finishing the running job(s), then exiting`);
        w.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
