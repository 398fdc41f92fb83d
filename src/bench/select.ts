import type { ExpectedDetection } from '../engine/synthetic.js';

/** One trained configuration's label-free figure on one dataset (synthetic defects in held-out normal images). */
export interface LabelFreeEntry {
  dataset: string;
  config: string;
  expected: ExpectedDetection;
}

/** The label-free verdict on one configuration against the baseline. */
export interface LabelFreeVerdict {
  config: string;
  /** `kept`: raises both synthetic AUROCs on every dataset; `rejected`: does not; `incomplete`: a dataset lacks a figure. */
  verdict: 'kept' | 'rejected' | 'incomplete';
  /** One line per dataset: the two differences against the baseline, in AUROC points. */
  reasons: string[];
}

const pts = (a: number, b: number): string => `${a - b >= 0 ? '+' : ''}${(100 * (a - b)).toFixed(1)}`;

/**
 * The rule by which ntsnet's defaults were chosen without test labels (docs/method.md, "Defaults"): a change to the
 * baseline configuration is kept only where it raises BOTH the synthetic image AUROC and the synthetic pixel AUROC
 * (ExpectedDetection) on EVERY dataset; a tie or a loss on any one rejects it, so a lever must earn its cost. Test
 * labels play no part.
 * @param entries - figures of every (dataset, config), baseline included. @param baseline - the reference config name.
 * @returns a verdict for every config other than the baseline, in first-seen order.
 */
export function labelFreeSelection(entries: readonly LabelFreeEntry[], baseline: string): LabelFreeVerdict[] {
  const datasets = [...new Set(entries.filter((e) => e.config === baseline).map((e) => e.dataset))];
  const get = (d: string, c: string): ExpectedDetection | undefined => entries.find((e) => e.dataset === d && e.config === c)?.expected;
  const out: LabelFreeVerdict[] = [];
  for (const config of [...new Set(entries.map((e) => e.config))].filter((c) => c !== baseline)) {
    const reasons: string[] = [];
    let verdict: LabelFreeVerdict['verdict'] = 'kept';
    for (const d of datasets) {
      const b = get(d, baseline)!, e = get(d, config);
      if (!e || e.imageAuroc === null || e.pixelAuroc === null || b.imageAuroc === null || b.pixelAuroc === null) {
        reasons.push(`${d}: no figure`);
        if (verdict === 'kept') verdict = 'incomplete';
        continue;
      }
      const up = e.imageAuroc > b.imageAuroc && e.pixelAuroc > b.pixelAuroc;
      reasons.push(`${d}: image ${pts(e.imageAuroc, b.imageAuroc)}, pixel ${pts(e.pixelAuroc, b.pixelAuroc)}${up ? '' : ' (not both higher)'}`);
      if (!up) verdict = 'rejected';
    }
    out.push({ config, verdict, reasons });
  }
  return out;
}
