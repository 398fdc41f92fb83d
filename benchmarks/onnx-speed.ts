/**
 * Inference throughput of NTSNet on TF.js (tfjs-node, NTSNet.predict) vs the exported ONNX graph on onnxruntime-node,
 * on this machine's CPU. Weights are random (speed does not depend on them); the ONNX graph is checked against TF.js
 * first. Images per second, warm-up excluded, median of --runs.
 *
 *   npx tsc -p tsconfig.json && node dist/benchmarks/onnx-speed.js [--size 256] [--batches 1,32] [--runs 3]
 *     [--warmup 1] [--student cot|basic] [--threads N] [--spinning]
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { benchmarkEngines, compareWithTfjs, OnnxDetector } from '../src/engine/onnxPredict.js';
import { modelToOnnx, parityInputs } from '../src/export/index.js';
import { DEFAULT_MODEL_CONFIG } from '../src/model/config.js';
import { NTSNet } from '../src/model/ntsnet.js';

const { values: a } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    batches: { type: 'string', default: '1,32' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    student: { type: 'string', default: 'cot' },
    threads: { type: 'string' },
    spinning: { type: 'boolean', default: false },
  },
});
const size = Number(a.size);
const student = a.student === 'basic' ? 'basic' : 'cot';
const tf = loadTf();
const model = NTSNet.create(tf, { ...DEFAULT_MODEL_CONFIG, imageSize: size, studentBlock: student }, 'random', 1);
const dir = mkdtempSync(path.join(tmpdir(), 'ntsnet-onnx-speed-'));
const file = path.join(dir, 'model.onnx');
writeFileSync(file, modelToOnnx(model));
const det = await OnnxDetector.load(file, { ...(a.threads ? { intraOpThreads: Number(a.threads) } : {}), allowSpinning: a.spinning });
try {
  const d = await compareWithTfjs(tf, model, det, parityInputs(size), 2);
  console.log(`NTSNet ${student} student, ${size} px, ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}; tfjs-node ${tf.version.tfjs}, onnxruntime-node (thread spinning ${a.spinning ? 'on' : 'off'})`);
  console.log(`check: max |map diff| ${d.maps.toExponential(2)}, max |score diff| ${d.scores.toExponential(2)}`);
  await benchmarkEngines(tf, model, det, a.batches.split(',').map(Number), { runs: Number(a.runs), warmup: Number(a.warmup), log: (l) => console.log(l) });
} finally {
  await det.dispose();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
}
