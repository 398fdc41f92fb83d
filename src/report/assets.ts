/**
 * Static parts of the self-contained HTML report (report/html.ts): the vendored Chart.js UMD build, the style sheet
 * and the browser script. Everything is inlined into report.html, which therefore opens from disk with no server and
 * no network (its Content-Security-Policy forbids every fetch).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

let chartJsCache: { source: string; version: string } | undefined;

/**
 * Chart.js's UMD build (defines `window.Chart`), read from node_modules, with its source-map comment removed and made
 * safe to inline in a `<script>` element. Its licence banner is kept.
 * @throws Error when the chart.js package is not installed.
 */
export function chartJsSource(): { source: string; version: string } {
  if (chartJsCache) return chartJsCache;
  const req = createRequire(import.meta.url);
  let dist: string;
  try {
    dist = path.dirname(req.resolve('chart.js')); // .../chart.js/dist/chart.cjs
  } catch {
    throw new Error("The 'chart.js' package is not installed (needed by 'ntsnet report'): run 'npm ci' (or 'npm install') in the ntsnet folder.");
  }
  let text: string | undefined;
  for (const name of ['chart.umd.min.js', 'chart.umd.js']) {
    try {
      text = readFileSync(path.join(dist, name), 'utf8');
      break;
    } catch {
      /* try the next name */
    }
  }
  if (text === undefined) throw new Error(`Chart.js's UMD build (chart.umd.min.js) is missing from ${dist}; reinstall the chart.js package (npm ci).`);
  const version = /Chart\.js v(\d+\.\d+\.\d+)/.exec(text)?.[1] ?? 'unknown';
  chartJsCache = { source: safeInlineScript(text.replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, '\n')), version };
  return chartJsCache;
}

/**
 * Makes JavaScript safe inside an inline `<script>` element: `</script` and `<!--` cannot occur in the text (they
 * would end the element or change how the HTML parser reads it). The replacements only ever appear inside string,
 * regular-expression or comment text, where `<\/` and `<\!` mean the same as `</` and `<!`.
 */
export function safeInlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/**
 * JSON text safe inside `<script type="application/json">` (every `<` escaped as `\u003c`); parse it back with
 * `JSON.parse(element.textContent)`.
 */
export function safeInlineJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The report's style sheet. */
export const REPORT_CSS = `
:root { --fg: #1d2330; --muted: #5c6573; --line: #d9dde3; --bg: #f6f7f9; --card: #fff;
  --tp: #c62828; --tn: #2e7d32; --fp: #ef6c00; --fn: #6a1b9a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 18px 28px 10px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 10px; }
main { padding: 16px 28px 40px; max-width: 1500px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 0 0 16px; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
table { border-collapse: collapse; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #eef0f3; font-weight: 600; }
tr.total td { font-weight: 600; border-top: 2px solid var(--line); }
ul.notes { margin: 8px 0 0; padding-left: 20px; color: #8a4b00; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
.row > section { flex: 1 1 460px; }
.chart { position: relative; height: 300px; }
.controls { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 14px; margin-bottom: 12px; }
.controls input[type=range] { flex: 1 1 360px; min-width: 240px; }
.controls input[type=number] { width: 9em; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button.on { background: var(--fg); color: #fff; border-color: var(--fg); }
.kpi { display: inline-block; min-width: 3em; }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
.gallery { display: grid; gap: 12px; margin-top: 12px; }
.card { margin: 0; background: #fff; border: 3px solid var(--line); border-radius: 8px; padding: 8px 10px; }
.card figcaption { font-size: 12px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; margin-bottom: 6px; }
.card figcaption b { color: var(--fg); }
.panels { display: flex; gap: 6px; }
.panel { flex: 0 0 auto; text-align: center; font-size: 11px; color: var(--muted); }
.panel img, .panel .ph { display: block; border-radius: 3px; background: #000; }
.panel .ph { background: #eceef1; color: var(--muted); display: flex; align-items: center; justify-content: center; text-align: center; font-size: 11px; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; margin-top: 6px; font-size: 13px; }
.badge { font-weight: 700; padding: 0 6px; border-radius: 3px; color: #fff; }
.card.o-tp { border-color: var(--tp); } .card.o-tp .badge { background: var(--tp); }
.card.o-tn { border-color: var(--tn); } .card.o-tn .badge { background: var(--tn); }
.card.o-fp { border-color: var(--fp); border-style: dashed; } .card.o-fp .badge { background: var(--fp); }
.card.o-fn { border-color: var(--fn); border-style: dashed; } .card.o-fn .badge { background: var(--fn); }
.card[hidden] { display: none; }
code { font-size: 12px; }
`;

/** Data the browser script reads from `<script id="report-data" type="application/json">`. */
export interface ClientData {
  threshold: {
    /** Slider start value: the calibrated image threshold (or a fallback when the checkpoint has none). */
    initial: number;
    /** The checkpoint's image threshold; null when it has none. */
    calibrated: number | null;
    /** Slider range. */
    min: number;
    max: number;
  };
  categories: { name: string; imageAuroc: number | null; roc: { fpr: number[]; tpr: number[] } | null }[];
  /** Every test image of results.json (index = `data-i` of its gallery card): category index, label, score. */
  images: { c: number; label: 0 | 1; score: number }[];
}

/**
 * The browser script. It is serialised with Function.prototype.toString, so it must not use anything from this
 * module's scope (only its parameter-free body, the DOM and `window.Chart`).
 */
function reportClient(): void {
  const byId = (id: string): HTMLElement | null => document.getElementById(id);
  const data = JSON.parse(byId('report-data')!.textContent!) as ClientData;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const ChartLib = (window as any).Chart as any;
  const state = { t: data.threshold.initial, filter: 'all' };
  const PALETTE = ['#1565c0', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#4e342e', '#558b2f', '#283593'];
  const fmt = (v: number): string => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : v.toPrecision(5));
  const pct = (num: number, den: number): string => (den > 0 ? `${((100 * num) / den).toFixed(1)} %` : 'n/a');
  const setText = (id: string, text: string): void => {
    const e = byId(id);
    if (e) e.textContent = text;
  };

  interface Counts { n: number; good: number; defective: number; tp: number; fp: number; tn: number; fn: number }
  const countAt = (t: number, cat: number | null): Counts => {
    const c: Counts = { n: 0, good: 0, defective: 0, tp: 0, fp: 0, tn: 0, fn: 0 };
    for (const im of data.images) {
      if (cat !== null && im.c !== cat) continue;
      const anomalous = im.score > t; // the decision rule of ntsnet: strictly above the threshold
      c.n++;
      if (im.label === 1) { c.defective++; if (anomalous) c.tp++; else c.fn++; }
      else { c.good++; if (anomalous) c.fp++; else c.tn++; }
    }
    return c;
  };
  const fillCounts = (suffix: string, c: Counts): void => {
    setText(`n-tp${suffix}`, String(c.tp));
    setText(`n-fn${suffix}`, String(c.fn));
    setText(`n-fp${suffix}`, String(c.fp));
    setText(`n-tn${suffix}`, String(c.tn));
    setText(`n-pass${suffix}`, String(c.tn + c.fn));
    setText(`n-fail${suffix}`, String(c.tp + c.fp));
    setText(`rate-fr${suffix}`, pct(c.fp, c.good));
    setText(`rate-miss${suffix}`, pct(c.fn, c.defective));
  };

  // ----- charts (Chart.js UMD, inlined) -----
  let roc: any, hist: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const opDataset = (): { x: number; y: number }[] => {
    const pts: { x: number; y: number }[] = [];
    data.categories.forEach((cat, k) => {
      if (!cat.roc) return;
      const c = countAt(state.t, k);
      pts.push({ x: c.good ? c.fp / c.good : 0, y: c.defective ? c.tp / c.defective : 0 });
    });
    return pts;
  };
  if (typeof ChartLib === 'function') {
    ChartLib.defaults.animation = false;
    ChartLib.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif';
    const rocCanvas = byId('roc-chart') as HTMLCanvasElement | null;
    const withRoc = data.categories.map((c, k) => ({ c, k })).filter((e) => e.c.roc);
    if (rocCanvas && withRoc.length) {
      const sets: object[] = withRoc.map(({ c, k }) => ({
        label: `${c.name}${c.imageAuroc === null ? '' : ` (AUROC ${(100 * c.imageAuroc).toFixed(1)} %)`}`,
        data: c.roc!.fpr.map((x, i) => ({ x, y: c.roc!.tpr[i]! })),
        showLine: true, pointRadius: 0, borderWidth: 2, borderColor: PALETTE[k % PALETTE.length], backgroundColor: PALETTE[k % PALETTE.length],
      }));
      sets.push({ label: 'chance', data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, pointRadius: 0, borderWidth: 1, borderDash: [5, 4], borderColor: '#9aa1ab', backgroundColor: '#9aa1ab' });
      sets.push({
        label: 'at the threshold', data: opDataset(), showLine: false, pointRadius: 6, pointHoverRadius: 7, borderWidth: 2,
        borderColor: '#111', backgroundColor: withRoc.map(({ k }) => PALETTE[k % PALETTE.length]),
      });
      roc = new ChartLib(rocCanvas, {
        type: 'scatter',
        data: { datasets: sets },
        options: {
          responsive: true, maintainAspectRatio: false,
          scales: {
            x: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'false positive rate (good images rejected)' } },
            y: { type: 'linear', min: 0, max: 1.0001, title: { display: true, text: 'true positive rate (defects caught)' } },
          },
          plugins: { legend: { position: 'bottom' }, tooltip: { callbacks: { label: (ctx: any) => `${ctx.dataset.label}: FPR ${ctx.parsed.x.toFixed(3)}, TPR ${ctx.parsed.y.toFixed(3)}` } } },
        },
      });
    }
    const histCanvas = byId('hist-chart') as HTMLCanvasElement | null;
    if (histCanvas && data.images.length) {
      const lo = data.threshold.min, hi = data.threshold.max;
      const sorted = data.images.map((im) => im.score).sort((x, y) => x - y);
      // Log axis: only when every score (and the slider range) is positive.
      const logLo = lo > 0 ? lo : sorted[0]! > 0 ? sorted[0]! * 0.98 : 0;
      const logOk = logLo > 0;
      // Bins: Freedman-Diaconis width (2 IQR / n^(1/3), robust to a few far outliers), 10 to 120 bins, in score or log-score.
      const binned = (log: boolean): { edges: number[]; good: number[]; bad: number[] } => {
        const f = (v: number): number => (log ? Math.log(v) : v);
        const a = f(log ? logLo : lo), b = f(hi);
        const tv = sorted.map(f);
        const q = (p: number): number => { const h = (tv.length - 1) * p, k = Math.floor(h); return tv[k]! + (h - k) * (tv[Math.min(k + 1, tv.length - 1)]! - tv[k]!); };
        const fd = (2 * (q(0.75) - q(0.25))) / Math.cbrt(tv.length);
        const nb = fd > 0 ? Math.max(10, Math.min(120, Math.ceil((b - a) / fd))) : 20;
        const w = (b - a) / nb;
        const edges = Array.from({ length: nb + 1 }, (_, k) => (log ? Math.exp(a + k * w) : a + k * w));
        const good = new Array<number>(nb).fill(0), bad = new Array<number>(nb).fill(0);
        for (const im of data.images) {
          const k = Math.min(nb - 1, Math.max(0, Math.floor((f(im.score) - a) / w)));
          (im.label === 1 ? bad : good)[k]!++;
        }
        return { edges, good, bad };
      };
      let bins = binned(false);
      const pts = (arr: number[], log: boolean): { x: number; y: number }[] =>
        arr.map((y, k) => ({ x: log ? Math.sqrt(bins.edges[k]! * bins.edges[k + 1]!) : (bins.edges[k]! + bins.edges[k + 1]!) / 2, y }));
      const binOf = (x: number): number => { let k = 0; while (k < bins.edges.length - 2 && x >= bins.edges[k + 1]!) k++; return k; };
      const thresholdLines = {
        id: 'ntsnetThreshold',
        afterDatasetsDraw(chart: any): void {
          const xs = chart.scales.x, area = chart.chartArea, ctx = chart.ctx as CanvasRenderingContext2D;
          const line = (v: number | null, color: string, dash: number[], text: string, row: number): void => {
            if (v === null || v < xs.min || v > xs.max) return;
            const px = xs.getPixelForValue(v);
            ctx.save();
            ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2; ctx.setLineDash(dash);
            ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.bottom); ctx.stroke();
            ctx.setLineDash([]);
            ctx.font = '12px system-ui, sans-serif';
            const right = px > (area.left + area.right) / 2;
            ctx.textAlign = right ? 'right' : 'left';
            ctx.fillText(text, px + (right ? -5 : 5), area.top + 12 + 14 * row);
            ctx.restore();
          };
          const cal = data.threshold.calibrated;
          if (cal !== null && cal !== state.t) line(cal, '#8d96a3', [6, 4], 'calibrated', 1);
          line(state.t, '#111', [], `threshold ${fmt(state.t)}`, 0);
        },
      };
      hist = new ChartLib(histCanvas, {
        type: 'bar',
        data: {
          datasets: [
            { label: 'good (normal) images', data: pts(bins.good, false), backgroundColor: 'rgba(46,125,50,0.55)', borderColor: '#2e7d32', borderWidth: 1, barPercentage: 1, categoryPercentage: 1, grouped: false },
            { label: 'defective images', data: pts(bins.bad, false), backgroundColor: 'rgba(198,40,40,0.5)', borderColor: '#c62828', borderWidth: 1, barPercentage: 1, categoryPercentage: 1, grouped: false },
          ],
        },
        options: {
          responsive: true, maintainAspectRatio: false,
          scales: {
            x: { type: 'linear', min: lo, max: hi, offset: false, title: { display: true, text: 'image score (anomaly-map maximum)' }, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 14, callback: (v: number | string) => String(Number(Number(v).toPrecision(3))) } },
            y: { beginAtZero: true, title: { display: true, text: 'images' }, ticks: { precision: 0 } },
          },
          plugins: {
            legend: { position: 'bottom' },
            tooltip: { callbacks: { title: (items: any[]) => { if (!items.length) return ''; const k = binOf(items[0].parsed.x); return `${fmt(bins.edges[k]!)} .. ${fmt(bins.edges[k + 1]!)}`; } } },
          },
        },
        plugins: [thresholdLines],
      });
      const logBox = byId('hist-log') as HTMLInputElement | null;
      if (logBox) {
        logBox.disabled = !logOk;
        if (!logOk) logBox.title = 'needs positive scores';
        logBox.addEventListener('change', () => {
          const log = logBox.checked && logOk;
          bins = binned(log);
          hist.data.datasets[0].data = pts(bins.good, log);
          hist.data.datasets[1].data = pts(bins.bad, log);
          hist.options.scales.x.type = log ? 'logarithmic' : 'linear';
          hist.options.scales.x.min = log ? logLo : lo;
          hist.update('none');
        });
      }
    }
  } else {
    const note = byId('chart-note');
    if (note) { note.hidden = false; note.textContent = 'The chart library did not load: charts are not shown (counts and gallery still work).'; }
  }

  // ----- gallery -----
  const cards = Array.from(document.querySelectorAll<HTMLElement>('.card'));
  const OUTCOME: Record<string, string> = { tp: 'TP: defect caught', tn: 'TN: good passed', fp: 'FP: good rejected', fn: 'FN: defect missed' };
  const updateGallery = (): void => {
    for (const card of cards) {
      const im = data.images[Number(card.dataset.i)]!;
      const anomalous = im.score > state.t;
      const o = im.label === 1 ? (anomalous ? 'tp' : 'fn') : anomalous ? 'fp' : 'tn';
      card.classList.remove('o-tp', 'o-tn', 'o-fp', 'o-fn');
      card.classList.add(`o-${o}`);
      card.dataset.outcome = o;
      const dec = card.querySelector('.decision'), out = card.querySelector('.badge'), ratio = card.querySelector('.ratio');
      if (dec) dec.textContent = anomalous ? 'anomalous' : 'normal';
      if (out) out.textContent = OUTCOME[o]!;
      if (ratio) ratio.textContent = `${(im.score / state.t).toFixed(3)} x threshold`;
      const f = state.filter;
      card.hidden = !(f === 'all' || (f === 'errors' && (o === 'fp' || o === 'fn')) || (f === 'defective' && im.label === 1) || (f === 'good' && im.label === 0) || (f === 'flagged' && anomalous));
    }
    let shown = 0;
    for (const c of cards) if (!c.hidden) shown++;
    setText('gallery-shown', String(shown));
  };

  // ----- threshold controls -----
  const range = byId('threshold') as HTMLInputElement | null;
  const box = byId('threshold-value') as HTMLInputElement | null;
  const update = (from: 'range' | 'box' | 'init'): void => {
    if (from !== 'box' && box) box.value = String(Number(state.t.toPrecision(7)));
    if (from !== 'range' && range) range.value = String(state.t);
    setText('threshold-norm', data.threshold.calibrated ? `${(state.t / data.threshold.calibrated).toFixed(3)} x calibrated` : '');
    data.categories.forEach((_, k) => fillCounts(`-${k}`, countAt(state.t, k)));
    fillCounts('', countAt(state.t, null));
    if (roc) { roc.data.datasets[roc.data.datasets.length - 1].data = opDataset(); roc.update('none'); }
    if (hist) hist.update('none');
    updateGallery();
  };
  range?.addEventListener('input', () => {
    const v = parseFloat(range.value);
    if (Number.isFinite(v)) { state.t = v; update('range'); }
  });
  box?.addEventListener('change', () => {
    const v = parseFloat(box.value);
    if (Number.isFinite(v)) { state.t = v; update('box'); }
  });
  byId('threshold-reset')?.addEventListener('click', () => { state.t = data.threshold.initial; update('init'); });
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('button[data-filter]')))
    b.addEventListener('click', () => {
      state.filter = b.dataset.filter ?? 'all';
      for (const o of Array.from(document.querySelectorAll('button[data-filter]'))) o.classList.toggle('on', o === b);
      updateGallery();
    });
  update('init');
  document.body.dataset.ready = '1';
}

/** The browser script, as inline-safe JavaScript text. */
export function clientScript(): string {
  return safeInlineScript(`(${reportClient.toString()})();\n`);
}
