import type { Command } from 'commander';
import { DEFAULT_QUEUE, connectRedis, defaultRedisUrl } from '../queue/jobs.js';
import { JobQueue, jobsTable, type JobInfo } from '../queue/submit.js';
import { positive } from './options.js';

const UNFINISHED = new Set(['active', 'waiting', 'waiting-children', 'prioritized', 'delayed']);

export function registerJobs(program: Command): void {
  program
    .command('jobs')
    .description('list queued, running, finished and failed jobs with their progress')
    .option('--redis <url>', 'Redis URL (default $NTSNET_REDIS or redis://127.0.0.1:6379)')
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .option('--watch', 'refresh until interrupted')
    .option('--until-done', 'with --watch: exit when no job is waiting or running (exit code 1 when one failed)')
    .option('--interval <s>', 'refresh interval of --watch in seconds', positive, 2)
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { redis?: string; queue: string; watch?: boolean; untilDone?: boolean; interval: number; json?: boolean }) => {
      const conn = await connectRedis(o.redis ?? defaultRedisUrl());
      const q = new JobQueue(conn, o.queue);
      const show = (jobs: JobInfo[]): void => {
        if (o.json) process.stdout.write(`${JSON.stringify(jobs)}\n`);
        else process.stdout.write(`${o.watch && process.stdout.isTTY ? '\x1b[2J\x1b[H' : ''}${jobs.length ? jobsTable(jobs) : '(no jobs)'}\n`);
      };
      try {
        for (;;) {
          const jobs = await q.list();
          show(jobs);
          if (!o.watch) break;
          if (o.untilDone && !jobs.some((j) => UNFINISHED.has(j.state))) {
            process.exitCode = jobs.some((j) => j.state === 'failed') ? 1 : 0;
            break;
          }
          await new Promise((r) => setTimeout(r, o.interval * 1000));
        }
      } finally {
        await q.close();
        conn.disconnect();
      }
    });
}
