import * as path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import type { TrainRunRecord } from './jobs.js';
import type { ExpectedDetection } from '../engine/synthetic.js';
import type { LeversFile, SelectionCheck } from './levers.js';
import type { MapMetrics } from './variants.js';
import { PEER_LABELS, type PeerRunRecord } from './peers.js';
import { ABLATION, type AblationName } from './plan.js';
import type { BenchResults } from './report.js';
import { labelFreeSelection, type LabelFreeVerdict } from './select.js';

/** One row of the accuracy table (accuracy.json): a method on a dataset. */
export interface AccuracyRow {
  dataset: string;
  method: string;
  imageAuroc: number | null;
  pixelAuroc: number | null;
  aupro: number | null;
  f1Max: number | null;
  /** Wall time of training (ntsnet: fit incl. the per-epoch synthetic check; PatchCore: memory bank + coreset), s. */
  fitSeconds: number | null;
  /** Test images per second of the run's own evaluation (run's image size; decoding excluded for anomalib). */
  testImagesPerSecond: number | null;
  /** Label-free figure (synthetic defects in held-out normal images), ntsnet rows only. */
  synthetic: { imageAuroc: number | null; pixelAuroc: number | null } | null;
  /** ntsnet rows: the epoch of the row's checkpoint, of the epochs trained. */
  epoch?: string;
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(1));
const num = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
const row = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
const head = (cells: string[]): string => `${row(cells)}\n${row(cells.map(() => '---'))}`;

const synth = (e: ExpectedDetection | null | undefined): AccuracyRow['synthetic'] => (e ? { imageAuroc: e.imageAuroc, pixelAuroc: e.pixelAuroc } : null);

/**
 * The figures of the model a configuration ships with the default selection (lowest validation loss): its
 * `val-loss/` checkpoint where the job selected by synthetic defects and kept it, else its own checkpoint.
 */
function defaultChoice(t: TrainRunRecord): { epoch: number; expectedDetection: ExpectedDetection | null } & MapMetrics {
  if (t.valLossChoice) return t.valLossChoice;
  const { imageAuroc, pixelAuroc, aupro, f1Max, f1Threshold } = t.variants[0]!;
  return { epoch: t.bestEpoch, expectedDetection: t.expectedDetection ?? null, imageAuroc, pixelAuroc, aupro, f1Max, f1Threshold };
}

/** Rows of one training job: the default's val_loss choice first, then (when evaluated) the synthetic-defect choice. */
function trainRows(d: string, name: string, t: TrainRunRecord): AccuracyRow[] {
  const size = t.config.model.imageSize;
  const label = name === 'baseline' ? '**ntsnet default**' : `ntsnet ${name} (${ABLATION[name as AblationName]?.label ?? name})`;
  const def = defaultChoice(t);
  const out: AccuracyRow[] = [{
    dataset: d, method: `${label}, ${size} px`, imageAuroc: def.imageAuroc, pixelAuroc: def.pixelAuroc, aupro: def.aupro, f1Max: def.f1Max,
    fitSeconds: t.fitSeconds, testImagesPerSecond: t.test.imagesPerSecond, synthetic: synth(def.expectedDetection), epoch: `${def.epoch} of ${t.history.length}`,
  }];
  if (t.valLossChoice) {
    const own = t.variants[0]!;
    out.push({
      dataset: d, method: `${name}, epoch chosen by synthetic defects (--select-by synthetic), ${size} px`, imageAuroc: own.imageAuroc, pixelAuroc: own.pixelAuroc, aupro: own.aupro, f1Max: own.f1Max,
      fitSeconds: null, testImagesPerSecond: null, synthetic: synth(t.expectedDetection), epoch: `${t.bestEpoch} of ${t.history.length}`,
    });
  }
  return out;
}

function peerRow(d: string, p: PeerRunRecord): AccuracyRow {
  const settings = p.tool.settings as { coresetRatio?: number | null; epochs?: number; imageSize?: number } | undefined;
  const extra = p.name === 'patchcore' ? `, coreset ${settings?.coresetRatio}` : `, ${settings?.epochs} epochs`;
  return {
    dataset: d, method: `anomalib ${PEER_LABELS[p.name]}, ${settings?.imageSize} px${extra}`, imageAuroc: p.metrics.imageAuroc, pixelAuroc: p.metrics.pixelAuroc,
    aupro: p.metrics.aupro, f1Max: p.metrics.f1Max, fitSeconds: (p.tool.fitSeconds as number | undefined) ?? null,
    testImagesPerSecond: (p.tool.testImagesPerSecond as number | undefined) ?? null, synthetic: null,
  };
}

/**
 * The issue-10 results table: ntsnet's default (and each training lever) against every anomalib peer, per dataset,
 * with image / pixel AUROC, AUPRO, F1-max, fit time and test images/s; the evaluation-time levers of levers.json; and
 * the label-free verdicts (select.ts) that decide which lever would become a default. Writes accuracy.md and
 * accuracy.json into the run folder.
 */
export async function writeAccuracyReport(out: string, r: BenchResults, leversFile: LeversFile): Promise<string> {
  const levers = leversFile.rows;
  const rows: AccuracyRow[] = [];
  const L: string[] = ['# Accuracy: ntsnet default against anomalib peers', ''];
  L.push(`Protocol: ${r.meta.protocol.name} (${r.meta.protocol.description})${r.meta.epochsOverride ? `, epochs overridden: ${r.meta.epochsOverride} (--epochs)` : ''}; seed ${r.meta.seed}; teacher ${r.meta.teacher.description} (every peer loads the same file).`);
  L.push(`Machine: ${r.meta.machine.cpu}, ${r.meta.machine.cores} cores. Command: \`${r.meta.command}\`${r.meta.resumedWith?.length ? ` (resumed ${r.meta.resumedWith.length} time(s), every command in benchmark.json)` : ''}.`, '');
  L.push('Figures in %. Fit time is wall time on the 2 cores (other jobs may have shared them); test images/s is each tool\'s own scoring of the test set at the run\'s image size.', '');
  const configs = [...new Set([...r.train.values()].map((t) => t.name))];
  for (const d of r.meta.datasets.map((x) => x.id)) {
    const dr: AccuracyRow[] = [];
    for (const c of ['baseline', ...configs.filter((c) => c !== 'baseline')]) {
      const t = r.train.get(`${d}/${c}`);
      if (t) dr.push(...trainRows(d, c, t));
    }
    for (const p of r.meta.peers) {
      const pr = r.peers.get(`${d}/${p}`);
      if (pr) dr.push(peerRow(d, pr));
    }
    if (!dr.length) continue;
    rows.push(...dr);
    L.push(`## ${d}`, '', head(['method', 'image AUROC', 'pixel AUROC', 'AUPRO', 'F1-max', 'fit s', 'test img/s', 'epoch', 'synthetic image / pixel']));
    for (const x of dr) L.push(row([x.method, pct(x.imageAuroc), pct(x.pixelAuroc), pct(x.aupro), pct(x.f1Max), num(x.fitSeconds, 0), num(x.testImagesPerSecond, 1), x.epoch ?? '', x.synthetic ? `${pct(x.synthetic.imageAuroc)} / ${pct(x.synthetic.pixelAuroc)}` : '']));
    L.push('');
  }
  // Training levers: each configuration's default model against the baseline's, by the label-free rule.
  const trainVerdicts = labelFreeSelection([...r.train.values()].flatMap((t) => {
    const e = defaultChoice(t).expectedDetection;
    return e ? [{ dataset: t.dataset, config: t.name, expected: e }] : [];
  }), 'baseline');
  // Evaluation-time levers on the default model (and the ensemble), against its own setting.
  const evalEntries = levers.filter((l) => l.config === 'baseline' || l.config === 'ens').map((l) => ({
    dataset: l.dataset, config: l.config === 'ens' ? 'ens' : l.variant === 'own' ? 'baseline' : l.variant,
    expected: { images: 0, imageAuroc: l.synthetic.imageAuroc, pixelAuroc: l.synthetic.pixelAuroc, kinds: [] },
  }));
  const evalVerdicts = labelFreeSelection(evalEntries, 'baseline');
  if (levers.length) {
    L.push('## Evaluation-time levers (levers.json)', '', 'Computed on each trained model without retraining; `own` is the model as shipped. `ens` = the default and `seed2` students, standardised and averaged.', '');
    L.push(head(['dataset', 'model', 'lever', 'synthetic image / pixel', 'test image AUROC', 'pixel AUROC', 'AUPRO', 'F1-max']));
    for (const l of levers) L.push(row([l.dataset, l.config, l.variant, `${pct(l.synthetic.imageAuroc)} / ${pct(l.synthetic.pixelAuroc)}`, pct(l.test.imageAuroc), pct(l.test.pixelAuroc), pct(l.test.aupro), pct(l.test.f1Max)]));
    L.push('');
  }
  const verdictLines = (vs: LabelFreeVerdict[]): string[] => vs.map((v) => `- \`${v.config}\`: **${v.verdict}** (${v.reasons.join('; ')})`);
  L.push('## Label-free verdicts (src/bench/select.ts: kept only where both synthetic AUROCs rise on every dataset)', '');
  // A verdict covers only the datasets of this run: a lever kept here is a default only once it holds on all of them.
  L.push(`Datasets of this run: ${r.meta.datasets.map((x) => x.id).join(', ')}.`, '');
  const none = (vs: LabelFreeVerdict[]): string[] => (vs.length ? verdictLines(vs) : ['- (no other configuration in this run)']);
  L.push('Training levers against `baseline`:', '', ...none(trainVerdicts), '', 'Evaluation-time levers against the default model\'s own setting:', '', ...none(evalVerdicts), '');
  if (leversFile.selection.length) {
    L.push('## Epoch selection checked on fresh synthetic defects', '', 'The epoch chosen by synthetic defects and the default\'s (lowest validation loss) of the same training run, each scored on synthetic defects of seeds the selection never saw (means over the seeds); selection by synthetic defects would be the default only where both figures are higher on every dataset.', '');
    L.push(head(['dataset', 'synthetic choice: fresh image / pixel', 'val_loss choice: fresh image / pixel', 'synthetic better on both']));
    const better = (c: SelectionCheck): boolean => c.selected.imageAuroc > c.valLoss.imageAuroc && c.selected.pixelAuroc > c.valLoss.pixelAuroc;
    for (const c of leversFile.selection) L.push(row([c.dataset, `epoch ${c.selected.epoch}: ${pct(c.selected.imageAuroc)} / ${pct(c.selected.pixelAuroc)}`, `epoch ${c.valLoss.epoch}: ${pct(c.valLoss.imageAuroc)} / ${pct(c.valLoss.pixelAuroc)}`, better(c) ? 'yes' : 'no']));
    const keep = leversFile.selection.every(better);
    L.push('', `Verdict: selection by synthetic defects **${keep ? 'kept' : 'rejected'}** as the default (label-free).`, '');
  }
  const md = path.join(out, 'accuracy.md');
  await writeFileAtomic(md, `${L.join('\n')}\n`);
  await writeJsonAtomic(path.join(out, 'accuracy.json'), { protocol: r.meta.protocol, teacher: r.meta.teacher, rows, levers, selection: leversFile.selection, verdicts: { training: trainVerdicts, evaluation: evalVerdicts } });
  return md;
}
