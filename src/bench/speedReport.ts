/** speed.md of `ntsnet benchmark --speed` (see bench/speedBench.ts): tables, target ratios, ceilings, profiles. */
import { quantile } from '../engine/threshold.js';
import type { SpeedResult } from '../engine/speed.js';
import type { CeilingRow } from './ceiling.js';
import type { OpProfile } from './profile.js';
import type { EngineSpeedRecord, FitSpeedRecord } from './speedJobs.js';

/** What one anomalib speed task writes (benchmarks/peers/anomalib_peer.py, `--task infer|train|memory`). */
export interface PeerSpeed {
  task: 'infer' | 'train' | 'memory';
  anomalibVersion: string;
  torchVersion: string;
  torchThreads: number;
  rows?: (SpeedResult & { engine: string })[];
  openvinoVersion?: string;
  openvinoConfig?: Record<string, string>;
  openvinoThreads?: number;
  imageSize?: number;
  batchSize?: number;
  trainImages?: number;
  history?: { epoch: number; seconds: number; images: number }[];
  trainSecondsPerEpoch?: number;
  peakRssMiB: number;
}

/** speed.json. */
export interface SpeedSummary {
  format: 'ntsnet-speed-benchmark';
  version: 1;
  command: string;
  dataset: { id: string; kind: string; trainImages: number };
  teacher: { description: string; sha256: string | null };
  seed: number;
  machine: { cpu: string; cores: number; memoryGiB: number; flags: string[] };
  versions: { ntsnet: string; node: string; tfjs: string };
  engines: EngineSpeedRecord;
  /** One per training round (alternating with anomalib's `train-r<k>` tasks). */
  train: FitSpeedRecord[];
  memory: FitSpeedRecord;
  peers: PeerSpeed[];
  finishedAt: string;
}

/** Targets of issue 11 (ratios in one run). */
export const SPEED_TARGETS = { vsPytorch: 1.5, vsOpenvino: 1.0, memoryBytes: 6e9 } as const;

const f = (v: number | null | undefined, d = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const median = (v: readonly number[]): number => quantile(v, 0.5);
const verdict = (ok: boolean): string => (ok ? 'met' : '**not met**');


/** Best ceiling (GFLOP/s) of an engine and dtype; ntsnet's engine names carry the dtype ("onnxruntime-node int8"). */
function ceilingFor(ceilings: CeilingRow[], engine: string): number | undefined {
  const [runtime, dtype] = engine.split(' ') as [string, string];
  const xs = ceilings.filter((c) => c.engine === runtime && c.dtype === dtype).map((c) => c.gflopPerSecond);
  return xs.length ? Math.max(...xs) : undefined;
}

function profileTable(p: OpProfile, top = 8): string[] {
  const lines = [
    `**${p.what}, ${p.engine}, ${p.imageSize} px, batch ${p.batchSize}**: kernels ${f(p.kernelMs, 1)} ms of ${f(p.wallMs, 1)} ms wall (the rest is dispatch, memory and the profiler)`,
    '', '| op | ms | share | calls |', '|---|---:|---:|---:|',
  ];
  for (const o of p.ops.slice(0, top)) lines.push(`| ${o.op} | ${f(o.ms, 1)} | ${f(100 * o.share, 1)} % | ${f(o.calls, 0)} |`);
  const rest = p.ops.slice(top);
  if (rest.length) lines.push(`| (${rest.length} others) | ${f(rest.reduce((a, o) => a + o.ms, 0), 1)} | ${f(100 * rest.reduce((a, o) => a + o.share, 0), 1)} % | |`);
  return [...lines, ''];
}

/** The markdown report of a speed run. */
export function speedReport(s: SpeedSummary): string {
  const e = s.engines;
  const infer = s.peers.find((p) => p.task === 'infer');
  const ptrains = s.peers.filter((p) => p.task === 'train');
  const pmem = s.peers.find((p) => p.task === 'memory');
  const rows = [...e.rows.map((r) => ({ ...r, tool: 'ntsnet' })), ...(infer?.rows ?? []).map((r) => ({ ...r, tool: 'anomalib', gflopPerSecond: null as number | null }))];
  const batches = [...new Set(rows.map((r) => r.batchSize))].sort((a, b) => a - b);
  const out: string[] = [
    `# Speed: ntsnet against anomalib STFPM-R18, one run`, '',
    `Command: \`${s.command}\`  `,
    `Machine: ${s.machine.cpu}, ${s.machine.cores} cores, ${s.machine.memoryGiB} GiB; SIMD ${s.machine.flags.join(', ') || 'unknown'}. ntsnet ${s.versions.ntsnet}, Node ${s.versions.node}, tfjs-node ${s.versions.tfjs}` +
      (infer ? `; anomalib ${infer.anomalibVersion}, PyTorch ${infer.torchVersion} (${infer.torchThreads} threads), OpenVINO ${infer.openvinoVersion ?? 'n/a'} (${infer.openvinoThreads ?? '?'} threads, ${JSON.stringify(infer.openvinoConfig ?? {})})` : '') + '.  ',
    `Teacher: ${s.teacher.description}. Dataset for training and int8 calibration: ${s.dataset.id} (${s.dataset.kind}, ${s.dataset.trainImages} training images). Finished ${s.finishedAt}.`, '',
    `## Inference, ${e.model.imageSize} px (the default detector: ${e.model.studentBlock} student, ${e.model.teacherNorm} teacher)`, '',
    'Random inputs (speed does not depend on the weights or the pixels); ntsnet reads maps and scores back, anomalib its anomaly map and score. ' +
      'An image\'s latency is its batch\'s time (p50 / p99 over the timed runs, warm-up excluded). ' +
      `GFLOP/s: convolution work of teacher + student (${f(e.gflopPerImage, 2)} GFLOP per image) times images/s, and its share of the best ceiling of the same runtime and precision (below).`, '',
    '| tool | engine | batch | images/s | p50 ms / batch | p99 ms / batch | GFLOP/s | % of ceiling |', '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const b of batches) {
    for (const r of rows.filter((x) => x.batchSize === b)) {
      const ceil = r.tool === 'ntsnet' ? ceilingFor(e.ceilings, r.engine) : undefined;
      out.push(`| ${r.tool} | ${r.engine} | ${b} | ${f(r.imagesPerSecond)} | ${f(r.medianMsPerBatch, 1)} | ${f(r.p99MsPerBatch, 1)} | ${f(r.gflopPerSecond, 0)} | ${ceil && r.gflopPerSecond ? `${f((100 * r.gflopPerSecond) / ceil, 0)} %` : 'n/a'} |`);
    }
  }
  out.push('', `int8 calibrated on ${e.calibrationImages} training images; against fp32 TF.js on ${e.int8Parity.images} of them: scores within ${f(100 * e.int8Parity.scoreRel, 2)} % of the score, maps within ${f(100 * e.int8Parity.mapRel, 2)} % of the image's score (mean difference ${f(100 * e.int8Parity.mapMeanRel, 2)} % of the mean map value). AUROC of int8 against fp32 on both datasets: docs/results (the accuracy benchmark).`, '');

  out.push('## Targets', '', '| target | measured | |', '|---|---|---|');
  for (const b of batches) {
    const ours = e.rows.filter((r) => r.batchSize === b).sort((x, y) => y.imagesPerSecond - x.imagesPerSecond)[0];
    const pt = infer?.rows?.find((r) => r.batchSize === b && r.engine.includes('PyTorch'));
    const ov = infer?.rows?.find((r) => r.batchSize === b && r.engine.includes('OpenVINO'));
    if (!ours) continue;
    if (pt) { const k = ours.imagesPerSecond / pt.imagesPerSecond; out.push(`| batch ${b}: fastest ntsnet engine >= ${SPEED_TARGETS.vsPytorch}x anomalib PyTorch | ${ours.engine} ${f(ours.imagesPerSecond)} / ${f(pt.imagesPerSecond)} images/s = **${f(k)}x** | ${verdict(k >= SPEED_TARGETS.vsPytorch)} |`); }
    if (ov) { const k = ours.imagesPerSecond / ov.imagesPerSecond; out.push(`| batch ${b}: fastest ntsnet engine >= ${SPEED_TARGETS.vsOpenvino}x anomalib OpenVINO | ${ours.engine} ${f(ours.imagesPerSecond)} / ${f(ov.imagesPerSecond)} images/s = **${f(k)}x** | ${verdict(k >= SPEED_TARGETS.vsOpenvino)} |`); }
  }
  const t0 = s.train[0]!;
  const ratios = s.train.flatMap((t, r) => (ptrains[r]?.trainSecondsPerEpoch ? [t.trainSecondsPerEpoch / ptrains[r]!.trainSecondsPerEpoch] : []));
  if (ratios.length) {
    const k = median(ratios);
    out.push(`| training seconds per epoch <= anomalib STFPM's (${t0.imageSize} px, batch ${t0.batchSize}, ${t0.trainImages} images; median of ${ratios.length} alternating round(s)) | ${ratios.map((x) => `${f(x)}x`).join(', ')}: **${f(k)}x** | ${verdict(k <= 1)} |`);
  }
  const memBytes = s.memory.peakRssMiB * 2 ** 20;
  const asked = s.memory.maxBatchesPerEpoch;
  const few = asked !== null && s.memory.imagesPerEpoch < asked * s.memory.batchSize ? `; only ${s.memory.imagesPerEpoch} training images, fewer than the ${asked} batches asked for` : '';
  out.push(`| training peak memory at ${s.memory.imageSize} px, batch ${s.memory.batchSize} <= 6 GB | ${f(memBytes / 1e9)} GB (peak RSS of the fit process${few}) | ${verdict(memBytes <= SPEED_TARGETS.memoryBytes)} |`, '');

  out.push('## Training', '', '| tool | size | batch | images | seconds / epoch (median, training loop) | epochs timed | peak RSS |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const [r, t] of s.train.entries()) {
    out.push(`| round ${r + 1}: ntsnet \`fit\` | ${t.imageSize} | ${t.batchSize} | ${t.imagesPerEpoch} | ${f(t.trainSecondsPerEpoch)} | ${t.history.length} | ${f(t.peakRssMiB, 0)} MiB |`);
    const p = ptrains[r];
    if (p) out.push(`| round ${r + 1}: anomalib STFPM | ${p.imageSize} | ${p.batchSize} | ${p.trainImages} | ${f(p.trainSecondsPerEpoch)} | ${p.history?.length ?? 0} | ${f(p.peakRssMiB, 0)} MiB |`);
  }
  out.push(`| ntsnet \`fit\`, memory run | ${s.memory.imageSize} | ${s.memory.batchSize} | ${s.memory.imagesPerEpoch} | ${f(s.memory.trainSecondsPerEpoch)} | ${s.memory.history.length} | ${f(s.memory.peakRssMiB, 0)} MiB |`);
  if (pmem) out.push(`| anomalib STFPM, memory run | ${pmem.imageSize} | ${pmem.batchSize} | ${pmem.trainImages} | ${f(pmem.trainSecondsPerEpoch)} | ${pmem.history?.length ?? 0} | ${f(pmem.peakRssMiB, 0)} MiB |`);
  out.push('', 'ntsnet\'s seconds per epoch are the training loop of `fit` (batches read from its decoded-image cache, steps), without the validation pass; anomalib\'s are its loop over preloaded tensors.', '');

  out.push('## Compute ceilings of this machine', '', 'One kernel per call, inputs in memory, median of the timed calls. int8 as the int8 export runs it (QDQ graph fused by onnxruntime into QLinearConv / QLinearMatMul).', '',
    '| runtime | precision | kernel | GFLOP | ms | GFLOP/s |', '|---|---|---|---:|---:|---:|');
  for (const c of e.ceilings) out.push(`| ${c.engine} | ${c.dtype} | ${c.kernel} | ${f(c.gflop, 2)} | ${f(c.medianMs, 1)} | ${f(c.gflopPerSecond, 0)} |`);
  out.push('', '## Per-op profiles', '');
  for (const p of e.profiles) out.push(...profileTable(p));
  return `${out.join('\n')}\n`;
}
