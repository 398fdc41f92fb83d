import * as path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import type { TrainRunRecord } from './jobs.js';
import type { LeversFile } from './levers.js';
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
  /** ntsnet rows: the chosen epoch of epochs trained. */
  epoch?: string;
}

const pct = (v: number | null | undefined): string => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(1));
const num = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
const row = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
const head = (cells: string[]): string => `${row(cells)}\n${row(cells.map(() => '---'))}`;

/** Epoch of the lowest validation loss in a training history (what `selectBy: 'val_loss'`, the default, keeps). */
function valLossEpoch(t: TrainRunRecord): number | null {
  let best: { epoch: number; v: number } | null = null;
  for (const h of t.history) if (h.valLoss !== null && (!best || h.valLoss < best.v)) best = { epoch: h.epoch, v: h.valLoss };
  return best?.epoch ?? null;
}

function trainRows(d: string, name: string, t: TrainRunRecord): AccuracyRow[] {
  const own = t.variants[0]!;
  const vl = valLossEpoch(t);
  const bySynth = t.config.train.selectBy === 'synthetic';
  const lastIsDefault = name === 'baseline' && t.last && vl === t.last.epoch;
  const label = name === 'baseline' ? (bySynth ? 'ntsnet, epoch chosen by synthetic defects (--select-by synthetic)' : 'ntsnet default') : `ntsnet ${name} (${ABLATION[name as AblationName]?.label ?? name})`;
  const size = t.config.model.imageSize;
  const out: AccuracyRow[] = [{
    dataset: d, method: `${label}, ${size} px`, imageAuroc: own.imageAuroc, pixelAuroc: own.pixelAuroc, aupro: own.aupro, f1Max: own.f1Max,
    fitSeconds: t.fitSeconds, testImagesPerSecond: t.test.imagesPerSecond,
    synthetic: t.expectedDetection ? { imageAuroc: t.expectedDetection.imageAuroc, pixelAuroc: t.expectedDetection.pixelAuroc } : null,
    epoch: `${t.bestEpoch} of ${t.history.length}`,
  }];
  if (t.last && name === 'baseline') {
    out.push({
      dataset: d, method: lastIsDefault ? `**ntsnet default** (lowest validation loss = last epoch), ${size} px` : `ntsnet, last epoch (the lowest validation loss was at epoch ${vl}), ${size} px`, imageAuroc: t.last.imageAuroc, pixelAuroc: t.last.pixelAuroc, aupro: t.last.aupro, f1Max: t.last.f1Max,
      fitSeconds: null, testImagesPerSecond: null,
      synthetic: t.last.expectedDetection ? { imageAuroc: t.last.expectedDetection.imageAuroc, pixelAuroc: t.last.expectedDetection.pixelAuroc } : null,
      epoch: `${t.last.epoch} of ${t.history.length}`,
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
  L.push(`Protocol: ${r.meta.protocol.name} (${r.meta.protocol.description}); seed ${r.meta.seed}; teacher ${r.meta.teacher.description} (every peer loads the same file).`);
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
  // Training levers: each configuration against the baseline, by the label-free rule.
  const trainVerdicts = labelFreeSelection([...r.train.values()].filter((t) => t.expectedDetection).map((t) => ({ dataset: t.dataset, config: t.name, expected: t.expectedDetection! })), 'baseline');
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
  L.push('Training levers against `baseline`:', '', ...verdictLines(trainVerdicts), '', 'Evaluation-time levers against the default model\'s own setting:', '', ...verdictLines(evalVerdicts), '');
  if (leversFile.selection.length) {
    L.push('## Epoch selection checked on fresh synthetic defects', '', 'The epoch chosen by synthetic defects and the last epoch, each scored on synthetic defects of seeds the selection never saw (means over the seeds); selection by synthetic defects would be the default only where both figures are higher on every dataset.', '');
    L.push(head(['dataset', 'selected epoch: fresh image / pixel', 'last epoch: fresh image / pixel', 'selection better on both']));
    for (const c of leversFile.selection) L.push(row([c.dataset, `${c.selected.epoch}: ${pct(c.selected.imageAuroc)} / ${pct(c.selected.pixelAuroc)}`, `${c.last.epoch}: ${pct(c.last.imageAuroc)} / ${pct(c.last.pixelAuroc)}`, c.selected.imageAuroc > c.last.imageAuroc && c.selected.pixelAuroc > c.last.pixelAuroc ? 'yes' : 'no']));
    const keep = leversFile.selection.every((c) => c.selected.imageAuroc > c.last.imageAuroc && c.selected.pixelAuroc > c.last.pixelAuroc);
    L.push('', `Verdict: selection by synthetic defects **${keep ? 'kept' : 'rejected'}** as the default (label-free).`, '');
  }
  const md = path.join(out, 'accuracy.md');
  await writeFileAtomic(md, `${L.join('\n')}\n`);
  await writeJsonAtomic(path.join(out, 'accuracy.json'), { protocol: r.meta.protocol, teacher: r.meta.teacher, rows, levers, selection: leversFile.selection, verdicts: { training: trainVerdicts, evaluation: evalVerdicts } });
  return md;
}
