import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import type { SpeedRunRecord, TrainRunRecord } from './jobs.js';
import { PEER_LABELS, type PeerName, type PeerRunRecord } from './peers.js';
import { readRunJson } from './runner.js';
import { ABLATION, LAYER_SUBSETS, SIGMAS, layerKey, type AblationName } from './plan.js';
import { labelFreeSelection, type LabelFreeEntry } from './select.js';

/** Run-level facts saved as benchmark.json and printed at the top of the report. */
export interface BenchMeta {
  format: 'ntsnet-benchmark';
  version: 1;
  protocol: { name: string; description: string; layerSubsets: 'eval' | 'retrain'; speed: { imageSize: number; batches: number[]; runs: number } };
  /** The command line that started the run, with paths as typed, and those that resumed it. */
  command: string;
  resumedWith?: string[];
  /** Dataset id, layout and location (the category folder or the folder dataset's root). */
  datasets: { id: string; kind: string; path?: string }[];
  configs: AblationName[];
  peers: PeerName[];
  seed: number;
  epochsOverride: number | null;
  teacher: { imagenet: boolean; description: string; sha256?: string | null; form?: string };
  machine: { cpu: string; cores: number; memoryGiB: number; os: string };
  versions: Record<string, string>;
  startedAt: string;
}

/** Everything a report is made of, read back from a run folder. */
export interface BenchResults {
  meta: BenchMeta;
  train: Map<string, TrainRunRecord>;
  peers: Map<string, PeerRunRecord>;
  speed: Map<string, SpeedRunRecord>;
  /** Label-free figures per (dataset, config): each run.json's, else the run folder's expected-detection.json. */
  labelFree: LabelFreeEntry[];
}

/** Name of the file `benchmarks/expected-detection.ts --json` writes into a run folder (rows of dataset, config, expectedDetection). */
export const EXPECTED_DETECTION_FILE = 'expected-detection.json';

const key = (ds: string, name: string): string => `${ds}/${name}`;

async function readJson<T>(file: string): Promise<T | undefined> {
  if (!(await stat(file).catch(() => undefined))) return undefined;
  return readRunJson<T>(file);
}

/** Reads every finished run of a run folder (unfinished ones are simply absent). */
export async function collectResults(out: string, meta: BenchMeta, trainNames: string[]): Promise<BenchResults> {
  const r: BenchResults = { meta, train: new Map(), peers: new Map(), speed: new Map(), labelFree: [] };
  for (const d of meta.datasets) {
    for (const n of trainNames) {
      const rec = await readJson<TrainRunRecord>(path.join(out, d.id, n, 'run.json'));
      if (rec) r.train.set(key(d.id, n), rec);
    }
    for (const p of meta.peers) {
      const rec = await readJson<PeerRunRecord>(path.join(out, d.id, `anomalib-${p}`, 'run.json'));
      if (rec) r.peers.set(key(d.id, p), rec);
    }
  }
  for (const b of ['basic', 'cot']) {
    const rec = await readJson<SpeedRunRecord>(path.join(out, 'speed', b, 'run.json'));
    if (rec) r.speed.set(b, rec);
  }
  // Runs finished before run.json carried the figure have it in expected-detection.json (recomputed from checkpoints).
  const saved = (await readJson<{ dataset: string; config: string; expectedDetection: LabelFreeEntry['expected'] }[]>(path.join(out, EXPECTED_DETECTION_FILE))) ?? [];
  for (const t of r.train.values()) if (t.expectedDetection) r.labelFree.push({ dataset: t.dataset, config: t.name, expected: t.expectedDetection });
  for (const e of saved) {
    if (r.train.has(key(e.dataset, e.config)) && !r.labelFree.some((x) => x.dataset === e.dataset && x.config === e.config)) r.labelFree.push({ dataset: e.dataset, config: e.config, expected: e.expectedDetection });
  }
  return r;
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(1));
const num = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
const mean = (xs: (number | null | undefined)[]): number | null => (xs.length && xs.every((x) => typeof x === 'number') ? (xs as number[]).reduce((a, b) => a + b, 0) / xs.length : null);
const row = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
const head = (cells: string[]): string => `${row(cells)}\n${row(cells.map(() => '---'))}`;

/** Metrics of a trained run's own setting (its first variant). */
function own(r: TrainRunRecord | undefined): TrainRunRecord['variants'][number] | undefined {
  return r?.variants[0];
}

function variant(r: TrainRunRecord | undefined, name: string): TrainRunRecord['variants'][number] | undefined {
  return r?.variants.find((v) => v.name === name);
}

function speedOf(s: SpeedRunRecord | undefined, b: number): number | null {
  return s?.speed.find((x) => x.batchSize === b)?.imagesPerSecond ?? null;
}

function peerSpeed(p: PeerRunRecord | undefined, b: number): number | null {
  const sp = (p?.tool.speed as { batchSize: number; imagesPerSecond: number }[] | undefined) ?? [];
  return sp.find((x) => x.batchSize === b)?.imagesPerSecond ?? null;
}

/** A peer is timed once (on the first dataset): the record of that peer that holds the timing. */
function timedPeer(r: BenchResults, name: PeerName): PeerRunRecord | undefined {
  return [...r.peers.values()].find((p) => p.name === name && ((p.tool.speed as unknown[] | undefined)?.length ?? 0) > 0);
}

/** Machine-readable headline figures (summary.json). */
export interface BenchSummary {
  protocol: string;
  teacher: BenchMeta['teacher'];
  datasets: Record<string, Record<string, { imageAuroc: number | null; pixelAuroc: number | null; aupro: number | null; f1Max: number | null }>>;
  speed256: Record<string, { batch1: number | null; batch32: number | null }>;
}

/**
 * Builds the Markdown report (paper Tables 1-5, fusion / sigma, AUPRO, F1-max, anomalib side by side) and
 * summary.json from a run folder's results. Missing runs show as "not run" rather than failing.
 */
export function renderReport(r: BenchResults): { markdown: string; summary: BenchSummary } {
  const m = r.meta;
  const ds = m.datasets.map((d) => d.id);
  const L: string[] = [];
  const bs = m.protocol.speed.batches;
  const b1 = bs[0] ?? 1, bN = bs[bs.length - 1] ?? 32;
  L.push(`# ntsnet benchmark: protocol \`${m.protocol.name}\``, '');
  L.push(`- Protocol: **${m.protocol.name}**: ${m.protocol.description}${m.epochsOverride ? ` (epochs overridden: ${m.epochsOverride})` : ''}; seed ${m.seed}.`);
  L.push(`- Datasets: ${m.datasets.map((d) => `\`${d.id}\` (${d.kind})`).join('; ')}.`);
  L.push(`- Teacher (ntsnet and anomalib alike): ${m.teacher.description}.`);
  if (!m.teacher.imagenet) {
    L.push('', '> **Random teacher.** Both tools used the same *seeded random* ResNet18 as teacher / backbone, not the ImageNet weights. These figures compare the methods under that handicap; they are **not** the paper\'s setting and must not be read as ImageNet-teacher accuracy.', '');
  }
  L.push(`- Machine: ${m.machine.cpu}, ${m.machine.cores} cores, ${m.machine.memoryGiB} GiB, ${m.machine.os}.`);
  L.push(`- Software: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}${peerVersions(r)}.`);
  L.push(`- Command: \`${m.command}\`${m.resumedWith?.length ? `; resumed with ${m.resumedWith.map((c) => `\`${c}\``).join(', ')}` : ''}`, `- Started ${m.startedAt}; all metrics computed by ntsnet's metric code (src/metrics) on the same masks for every tool.`, '');

  // Headline.
  L.push('## Headline', '');
  L.push(head(['Dataset', 'Method', 'Image AUROC', 'Pixel AUROC', 'AUPRO', 'F1-max', `img/s @${m.protocol.speed.imageSize}px b${b1}`, `img/s b${bN}`]));
  const methods: { label: string; get: (d: string) => { mm?: { imageAuroc: number | null; pixelAuroc: number | null; aupro: number | null; f1Max: number | null }; s1: number | null; sN: number | null } }[] = [
    ...(m.configs.includes('ntsnet') ? [{ label: `ntsnet NTSNet ${ABLATION.ntsnet.label.replace(/^\+ both = NTSNet /, '')}`, get: (d: string) => ({ mm: own(r.train.get(key(d, 'ntsnet'))), s1: speedOf(r.speed.get('cot'), b1), sN: speedOf(r.speed.get('cot'), bN) }) }] : []),
    ...(m.configs.includes('baseline') ? [{ label: 'ntsnet symmetric baseline', get: (d: string) => ({ mm: own(r.train.get(key(d, 'baseline'))), s1: speedOf(r.speed.get('basic'), b1), sN: speedOf(r.speed.get('basic'), bN) }) }] : []),
    ...m.peers.map((p) => ({ label: `anomalib ${PEER_LABELS[p]}`, get: (d: string) => { const pr = r.peers.get(key(d, p)); const tp = timedPeer(r, p); return { mm: pr?.metrics, s1: peerSpeed(tp, b1), sN: peerSpeed(tp, bN) }; } })),
  ];
  const summary: BenchSummary = { protocol: m.protocol.name, teacher: m.teacher, datasets: {}, speed256: {} };
  for (const d of ds) {
    summary.datasets[d] = {};
    for (const me of methods) {
      const g = me.get(d);
      L.push(row([d, me.label, pct(g.mm?.imageAuroc), pct(g.mm?.pixelAuroc), pct(g.mm?.aupro), pct(g.mm?.f1Max), num(g.s1, 2), num(g.sN, 2)]));
      summary.datasets[d]![me.label] = { imageAuroc: g.mm?.imageAuroc ?? null, pixelAuroc: g.mm?.pixelAuroc ?? null, aupro: g.mm?.aupro ?? null, f1Max: g.mm?.f1Max ?? null };
      summary.speed256[me.label] = { batch1: g.s1, batch32: g.sN };
    }
  }
  L.push('', ...ratioLines(r, ds, b1, bN), '');
  L.push('### Where NTSNet loses', '', ...losses(r, ds), '');

  // Table 1.
  L.push('## Table 1: NTSNet per dataset', '');
  if (!m.configs.includes('ntsnet')) L.push('Not run: the `ntsnet` configuration is not in --configs.', '');
  L.push(head(['Dataset', 'Image AUROC', 'Pixel AUROC', 'AUPRO', 'F1-max', 'epochs (best)', 'fit s', 'test img/s']));
  for (const d of ds) {
    const t = r.train.get(key(d, 'ntsnet'));
    const v = own(t);
    L.push(row([d, pct(v?.imageAuroc), pct(v?.pixelAuroc), pct(v?.aupro), pct(v?.f1Max), t ? `${t.epochs} (${t.bestEpoch})` : 'not run', num(t?.fitSeconds, 0), num(t?.test.imagesPerSecond, 1)]));
  }
  if (ds.length > 1) {
    const vs = ds.map((d) => own(r.train.get(key(d, 'ntsnet'))));
    L.push(row(['**mean**', pct(mean(vs.map((v) => v?.imageAuroc))), pct(mean(vs.map((v) => v?.pixelAuroc))), pct(mean(vs.map((v) => v?.aupro))), pct(mean(vs.map((v) => v?.f1Max))), '', '', '']));
  }
  L.push('', 'Paper (MVTec AD mean of 15 categories, ImageNet teacher, 256 px, 200 epochs): image AUROC 95.7, pixel AUROC 97.4.', '');

  // Table 2.
  L.push('## Table 2: size, speed, memory, training time', '');
  L.push(`Inference: images/s at ${m.protocol.speed.imageSize} px, full pipeline (features, anomaly map, smoothing, score; read back), median of ${m.protocol.speed.runs} timed runs after warm-up, on this machine. Training: per epoch at the protocol's image size and batch size; peak RSS of the whole training + evaluation process.`, '');
  L.push(head(['Model', 'Student params (M)', 'Teacher params (M)', 'Size (MB, float32, both nets)', `img/s b${b1}`, `img/s b${bN}`, ...ds.flatMap((d) => [`${d}: s/epoch`, `${d}: peak RSS (MiB)`])]));
  for (const [label, arch, cfgs] of [['NTSNet (CoT student)', 'cot', ['ntsnet', 'cot', 'ntsnet_literal']], ['Symmetric baseline (basic student)', 'basic', ['baseline', 'self_ema', 'eman']]] as const) {
    const s = r.speed.get(arch);
    const params = s?.parameters ?? ds.flatMap((d) => cfgs.map((c) => r.train.get(key(d, c))?.parameters)).find((x) => !!x);
    const per = ds.flatMap((d) => {
      const runs = cfgs.map((c) => r.train.get(key(d, c))).filter((x): x is TrainRunRecord => !!x);
      return [runs.map((x) => `${num(x.secondsPerEpoch, 1)} (${x.name})`).join(', ') || 'n/a', runs.map((x) => `${num(x.peakRssMiB, 0)} (${x.name})`).join(', ') || 'n/a'];
    });
    L.push(row([label, num(params ? params.student / 1e6 : null, 2), num(params ? params.teacher / 1e6 : null, 2), num(params ? ((params.student + params.teacher) * 4) / 2 ** 20 : null, 1), num(speedOf(s, b1), 2), num(speedOf(s, bN), 2), ...per]));
  }
  for (const p of m.peers) {
    const any = ds.map((d) => r.peers.get(key(d, p))).find((x) => !!x);
    const per = ds.flatMap((d) => {
      const pr = r.peers.get(key(d, p));
      const h = (pr?.tool.history as { seconds: number }[] | undefined) ?? [];
      return [h.length ? num(h.reduce((a, x) => a + x.seconds, 0) / h.length, 1) : 'n/a', num(pr?.tool.peakRssMiB as number | undefined, 0)];
    });
    const params = any?.tool.parameters as { student: number; teacher: number } | undefined;
    const bank = any?.tool.memoryBank as number[] | null | undefined;
    L.push(row([`anomalib ${PEER_LABELS[p]}${p === 'patchcore' ? ' (no training: memory bank)' : ''}`, num(params ? params.student / 1e6 : null, 2), num(params ? params.teacher / 1e6 : null, 2), `${num(params ? ((params.student + params.teacher) * 4) / 2 ** 20 : null, 1)}${bank ? ` + bank ${bank.join(' x ')} (${num((bank[0]! * bank[1]! * 4) / 2 ** 20, 1)} MB, ${any!.dataset})` : ''}`, num(peerSpeed(any, b1), 2), num(peerSpeed(any, bN), 2), ...per]));
  }
  L.push('', `Parameter counts exclude BatchNorm running statistics.${m.peers.includes('patchcore') ? ' PatchCore speed is timed with a memory bank of the size a training at the speed resolution would give (filled from the real bank), because its nearest-neighbour search grows with the bank.' : ''}`, '');

  // Table 3.
  L.push('## Table 3: ablation', '');
  L.push(head(['Dataset', 'Configuration', 'Image AUROC', 'Pixel AUROC', 'AUPRO', 'F1-max', 'best epoch / epochs']));
  for (const d of ds) {
    for (const c of m.configs) {
      const t = r.train.get(key(d, c));
      const v = own(t);
      L.push(row([d, `${c}: ${ABLATION[c].label}`, pct(v?.imageAuroc), pct(v?.pixelAuroc), pct(v?.aupro), pct(v?.f1Max), t ? `${t.bestEpoch} / ${t.epochs}` : 'not run']));
    }
  }
  L.push('');

  // Label-free selection.
  if (r.labelFree.length) {
    L.push('## Label-free selection (synthetic defects; no test labels)', '');
    L.push('Expected detection of each checkpoint: synthetic defects (cut-paste, smooth-noise blobs) pasted into its held-out normal validation images, clean vs defective copies (image AUROC) and the synthetic masks (pixel AUROC). Rule (docs/method.md, "Defaults"): a change to the baseline is kept only where it raises both figures on every dataset.', '');
    L.push(head(['Dataset', 'Configuration', 'Synthetic image AUROC', 'Synthetic pixel AUROC', 'Validation images']));
    for (const d of ds) for (const c of m.configs) {
      const e = r.labelFree.find((x) => x.dataset === d && x.config === c)?.expected;
      if (e) L.push(row([d, c, pct(e.imageAuroc), pct(e.pixelAuroc), e.images]));
    }
    L.push('');
    if (r.labelFree.some((e) => e.config === 'baseline')) {
      for (const v of labelFreeSelection(r.labelFree, 'baseline')) L.push(`- **${v.config}: ${v.verdict}** (${v.reasons.join('; ')})`);
      L.push('');
    }
  }

  // Table 4.
  L.push('## Table 4: teacher / student depth', '');
  L.push(head(['Teacher', 'Student', 'Status']));
  L.push(row(['ResNet18', 'ResNet18', !m.configs.includes('ntsnet') ? 'not run (ntsnet not in --configs)' : m.teacher.imagenet ? 'see Table 1' : 'see Table 1 (random teacher, not the paper setting)']));
  for (const [t, s] of [['ResNet34', 'ResNet18'], ['ResNet18', 'ResNet34'], ['ResNet34', 'ResNet34']]) {
    L.push(row([t!, s!, 'not run: ImageNet ResNet34 weights (torchvision IMAGENET1K_V1) cannot be obtained offline here, and a random-teacher number would not be the paper\'s setting']));
  }
  L.push('');

  // Table 5.
  const retrain = m.protocol.layerSubsets === 'retrain';
  L.push('## Table 5: layer subsets', '');
  L.push(retrain
    ? 'One NTSNet model trained per layer subset (paper protocol).'
    : 'Evaluation-time subsets: each trained model (all three layers) scored with only the listed layers\' distance maps (sum fusion, sigma as configured). Under the `paper` protocol one model is trained per subset instead.', '');
  const subsetCfgs = retrain ? ['ntsnet'] : m.configs;
  L.push(head(['Dataset', 'Model', ...LAYER_SUBSETS.map((l) => `{${l.join(',')}} image / pixel`)]));
  for (const d of ds) {
    for (const c of subsetCfgs) {
      const cells = LAYER_SUBSETS.map((l) => {
        const v = retrain
          ? own(r.train.get(key(d, l.length === 3 ? 'ntsnet' : `ntsnet-${layerKey(l)}`)))
          : r.train.get(key(d, c))?.variants.find((x) => x.name.startsWith(`${layerKey(l)}-`) && x.fusion === own(r.train.get(key(d, c)))?.fusion && x.sigma === own(r.train.get(key(d, c)))?.sigma);
        return `${pct(v?.imageAuroc)} / ${pct(v?.pixelAuroc)}`;
      });
      L.push(row([d, c, ...cells]));
    }
  }
  L.push('');

  // Fusion and smoothing.
  L.push('## Fusion (sum, paper eq. 12, vs product, STFPM) and Gaussian sigma', '');
  L.push(head(['Dataset', 'Model', 'sum image / pixel / AUPRO', 'product image / pixel / AUPRO', ...SIGMAS.map((s) => `sigma ${s} image / pixel`)]));
  for (const d of ds) {
    for (const c of m.configs) {
      const t = r.train.get(key(d, c));
      const o = own(t);
      const lk = o ? layerKey(o.layers) : 'L123';
      const f = (fu: string): string => { const v = variant(t, `${lk}-${fu}-s${o?.sigma ?? 4}`); return `${pct(v?.imageAuroc)} / ${pct(v?.pixelAuroc)} / ${pct(v?.aupro)}`; };
      L.push(row([d, c, f('sum'), f('product'), ...SIGMAS.map((s) => { const v = variant(t, `${lk}-${o?.fusion ?? 'sum'}-s${s}`); return `${pct(v?.imageAuroc)} / ${pct(v?.pixelAuroc)}`; })]));
    }
  }
  L.push('', 'AUPRO: per-region overlap integrated up to 30 % false-positive rate, normalised (MVTec AD definition; src/metrics/aupro.ts). F1-max: best image-level F1 over thresholds (src/metrics/f1.ts). Both are checked against independent Python references in test/aupro_f1.test.ts.', '');

  // Notes of the evaluations (undefined metrics and why).
  const notes = [...r.train.values()].flatMap((t) => t.test.notes.map((n) => `- ${t.dataset}/${t.name}: ${n}`));
  if (notes.length) L.push('## Notes', '', ...notes, '');

  // Runs.
  L.push('## Runs', '');
  L.push(head(['Dataset', 'Run', 'Epochs', 'Best epoch', 'Fit (s)', 's/epoch', 'Test (s)', 'Peak RSS (MiB)', 'Teacher']));
  for (const d of ds) {
    for (const t of [...r.train.values()].filter((x) => x.dataset === d)) {
      L.push(row([d, t.name, t.epochs, t.bestEpoch, num(t.fitSeconds, 0), num(t.secondsPerEpoch, 1), num(t.test.seconds, 1), num(t.peakRssMiB, 0), t.teacher.imagenet ? 'ImageNet' : t.teacher.source]));
    }
    for (const p of [...r.peers.values()].filter((x) => x.dataset === d)) {
      const h = (p.tool.history as { seconds: number }[] | undefined) ?? [];
      L.push(row([d, `anomalib-${p.name}`, String((p.tool.settings as { epochs?: number } | undefined)?.epochs ?? ''), 'last', num(p.tool.fitSeconds as number, 0), h.length ? num(h.reduce((a, x) => a + x.seconds, 0) / h.length, 1) : 'n/a', num(p.tool.testSeconds as number, 1), num(p.tool.peakRssMiB as number, 0), p.teacher]));
    }
  }
  L.push('');
  return { markdown: `${L.join('\n')}\n`, summary };
}

function peerVersions(r: BenchResults): string {
  const p = [...r.peers.values()][0];
  if (!p) return '';
  const t = p.tool as { anomalibVersion?: string; torchVersion?: string; timmVersion?: string; python?: string; torchThreads?: number };
  return `; peer: anomalib ${t.anomalibVersion}, torch ${t.torchVersion} (${t.torchThreads} threads), timm ${t.timmVersion}, Python ${t.python}`;
}

function ratioLines(r: BenchResults, ds: string[], b1: number, bN: number): string[] {
  const out: string[] = [];
  for (const p of r.meta.peers) {
    const name = `anomalib ${PEER_LABELS[p]}`;
    for (const d of ds) {
      const n = own(r.train.get(key(d, 'ntsnet'))), pr = r.peers.get(key(d, p));
      if (!n || !pr) continue;
      const diff = (a: number | null, b: number | null): string => (a === null || b === null ? 'n/a' : `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(1)}`);
      const ratio = (a: number | null, b: number | null): string => (a === null || b === null || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`);
      const tp = timedPeer(r, p);
      out.push(`- ${d}: NTSNet vs ${name}: image AUROC ${diff(n.imageAuroc, pr.metrics.imageAuroc)} points, pixel AUROC ${diff(n.pixelAuroc, pr.metrics.pixelAuroc)} points; speed ratio (NTSNet / ${name}) ${ratio(speedOf(r.speed.get('cot'), b1), peerSpeed(tp, b1))} at batch ${b1}, ${ratio(speedOf(r.speed.get('cot'), bN), peerSpeed(tp, bN))} at batch ${bN}.`);
    }
  }
  return out;
}

/** Plain statements of every comparison NTSNet loses (image or pixel AUROC, speed). */
function losses(r: BenchResults, ds: string[]): string[] {
  const out: string[] = [];
  for (const d of ds) {
    const n = own(r.train.get(key(d, 'ntsnet')));
    if (!n) { out.push(`- ${d}: NTSNet ${r.meta.configs.includes('ntsnet') ? 'not run yet' : 'not in --configs'}.`); continue; }
    const others: [string, { imageAuroc: number | null; pixelAuroc: number | null } | undefined][] = [
      ['the symmetric baseline', own(r.train.get(key(d, 'baseline')))],
      ['+ CoT only', own(r.train.get(key(d, 'cot')))],
      ['+ EMAN only', own(r.train.get(key(d, 'eman')))],
      ...r.meta.peers.map((p) => [`anomalib ${PEER_LABELS[p]}`, r.peers.get(key(d, p))?.metrics] as [string, { imageAuroc: number | null; pixelAuroc: number | null } | undefined]),
    ];
    for (const [name, o] of others) {
      if (!o) continue;
      for (const k of ['imageAuroc', 'pixelAuroc'] as const) {
        const a = n[k], b = o[k];
        if (a !== null && b !== null && a < b) out.push(`- ${d}: NTSNet ${k === 'imageAuroc' ? 'image' : 'pixel'} AUROC ${pct(a)} < ${name} ${pct(b)} (${(100 * (a - b)).toFixed(1)} points).`);
      }
    }
  }
  const c = r.speed.get('cot'), b = r.speed.get('basic');
  if (c && b) for (const s of c.speed) {
    const bs = b.speed.find((x) => x.batchSize === s.batchSize);
    if (bs && s.imagesPerSecond < bs.imagesPerSecond) out.push(`- Speed: the CoT student makes NTSNet ${(bs.imagesPerSecond / s.imagesPerSecond).toFixed(2)}x slower than the symmetric baseline at batch ${s.batchSize} (${s.imagesPerSecond.toFixed(2)} vs ${bs.imagesPerSecond.toFixed(2)} img/s).`);
  }
  return out.length ? out : ['- Nowhere in this run.'];
}

/** Writes report.md and summary.json into the run folder (atomically). */
export async function writeReport(out: string, r: BenchResults): Promise<{ md: string; json: string }> {
  const { markdown, summary } = renderReport(r);
  const md = path.join(out, 'report.md'), json = path.join(out, 'summary.json');
  await writeFileAtomic(md, markdown);
  await writeJsonAtomic(json, summary);
  return { md, json };
}
