#!/usr/bin/env node
import { Command } from 'commander';
import { loadTf } from '../backend/index.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { registerBenchmark } from './benchmark.js';
import { registerData } from './data.js';
import { registerExport } from './export.js';
import { registerFit } from './fit.js';
import { registerInfo } from './info.js';
import { registerPredict } from './predict.js';
import { registerReport } from './report.js';
import { registerServe } from './serve.js';
import { registerSubmit } from './submit.js';
import { registerJobs } from './jobs.js';
import { registerWorker } from './worker.js';
import { registerTest } from './test.js';
import { registerWeights } from './weights.js';

const program = new Command()
  .name('ntsnet')
  .description('Unsupervised industrial image anomaly detection: NTSNet asymmetric teacher-student network on TensorFlow.js')
  .version(NTSNET_VERSION)
  .showHelpAfterError();
registerFit(program, loadTf);
registerTest(program, loadTf);
registerPredict(program, loadTf);
registerReport(program, loadTf);
registerInfo(program, loadTf);
registerWeights(program);
registerData(program);
registerExport(program, loadTf);
registerBenchmark(program, loadTf);
registerServe(program, loadTf);
registerWorker(program);
registerSubmit(program);
registerJobs(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`ntsnet: error: ${e instanceof Error ? e.message : String(e)}\n`);
  if (process.env.NTSNET_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
