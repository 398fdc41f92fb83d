/**
 * Inference throughput of NTSNet on TF.js (tfjs-node, NTSNet.predict) vs the exported ONNX graph on onnxruntime-node,
 * on this machine's CPU. Weights are random (speed does not depend on them); the ONNX graph is checked against TF.js
 * first. Images per second, warm-up excluded, median of --runs.
 *
 *   npx tsc -p tsconfig.json && node dist/benchmarks/onnx-speed.js [--size 256] [--batches 1,32] [--runs 3]
 *     [--warmup 1] [--student cot|basic] [--threads N] [--spinning] [--int8] [--json OUT.json]
 *
 * --int8 also times the int8 QDQ export (src/export/quantize.ts) of the same model, calibrated on 8 synthetic images
 * (speed does not depend on the ranges); plain student only.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadTf } from '../src/backend/index.js';
import { benchmarkEngines, compareWithTfjs, measureOnnxInference, OnnxDetector, type EngineSpeed } from '../src/engine/onnxPredict.js';
import { modelToInt8Onnx } from '../src/export/int8.js';
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
    int8: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const size = Number(a.size);
const student = a.student === 'basic' ? 'basic' : 'cot';
const tf = loadTf();
const model = NTSNet.create(tf, { ...DEFAULT_MODEL_CONFIG, imageSize: size, studentBlock: student }, 'random', 1);
const dir = mkdtempSync(path.join(tmpdir(), 'ntsnet-onnx-speed-'));
const file = path.join(dir, 'model.onnx');
writeFileSync(file, modelToOnnx(model));
let det8: OnnxDetector | undefined;
const det = await OnnxDetector.load(file, { ...(a.threads ? { intraOpThreads: Number(a.threads) } : {}), allowSpinning: a.spinning });
try {
  const d = await compareWithTfjs(tf, model, det, parityInputs(size), 2);
  console.log(`NTSNet ${student} student, ${size} px, ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}; tfjs-node ${tf.version.tfjs}, onnxruntime-node (thread spinning ${a.spinning ? 'on' : 'off'})`);
  console.log(`check: max |map diff| ${d.maps.toExponential(2)}, max |score diff| ${d.scores.toExponential(2)}`);
  const batches = a.batches.split(',').map(Number);
  const rows: (Omit<EngineSpeed, 'engine'> & { engine: string })[] = await benchmarkEngines(tf, model, det, batches, { runs: Number(a.runs), warmup: Number(a.warmup), log: (l) => console.log(l) });
  if (a.int8) {
    const calib = parityInputs(size);
    const imgs = Array.from({ length: 8 }, (_, i) => calib.subarray((i % 2) * size * size * 3, ((i % 2) + 1) * size * size * 3));
    const f8 = path.join(dir, 'model-int8.onnx');
    writeFileSync(f8, (await modelToInt8Onnx(model, imgs)).bytes);
    det8 = await OnnxDetector.load(f8, { ...(a.threads ? { intraOpThreads: Number(a.threads) } : {}), allowSpinning: a.spinning });
    for (const b of batches) {
      const r = { engine: 'onnxruntime-node int8', imageSize: size, ...(await measureOnnxInference(det8, size, b, Number(a.runs), Number(a.warmup))) };
      console.log(`${r.engine.padEnd(21)} ${size} px batch ${String(b).padStart(3)}: ${r.imagesPerSecond.toFixed(2).padStart(8)} images/s (median ${r.medianMsPerBatch.toFixed(0)} ms per batch over ${r.runs} runs)`);
      rows.push(r);
    }
  }
  if (a.json) writeFileSync(a.json, `${JSON.stringify({ student, size, cpu: cpus()[0]?.model ?? '', cores: cpus().length, rows, measuredAt: new Date().toISOString() }, null, 1)}\n`);
} finally {
  await det8?.dispose();
  await det.dispose();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
}
