import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { auroc, BinnedAuroc, rocCurve } from '../src/metrics/index.js';
import { Rng } from '../src/util/rng.js';
import { fixturePath } from './helpers.js';

interface Case {
  name: string;
  float32: boolean;
  scores: number[];
  labels: number[];
  auroc: number | null;
  roc?: { fpr: number[]; tpr: number[]; thresholds: (number | null)[] };
}

const fixtures = JSON.parse(readFileSync(fixturePath('auroc_cases.json'), 'utf8')) as { sklearn: string; cases: Case[] };

/** Independent reference: Mann-Whitney U with mid-ranks for ties (Array.sort with a comparator). */
function referenceAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  let P = 0;
  for (let k = 0; k < n; ) {
    let e = k;
    while (e + 1 < n && scores[idx[e + 1]!] === scores[idx[k]!]) e++;
    const mid = (k + e) / 2 + 1; // 1-based average rank
    for (let t = k; t <= e; t++) if (labels[idx[t]!] === 1) {
      rankSumPos += mid;
      P++;
    }
    k = e + 1;
  }
  const N = n - P;
  if (P === 0 || N === 0) return null;
  return (rankSumPos - (P * (P + 1)) / 2) / (P * N);
}

test(`auroc matches sklearn ${fixtures.sklearn} roc_auc_score on fixed cases`, () => {
  assert.ok(fixtures.cases.length >= 10);
  for (const c of fixtures.cases) {
    const labels = Uint8Array.from(c.labels);
    const typed = c.float32 ? Float32Array.from(c.scores) : Float64Array.from(c.scores);
    const ours = auroc(typed, labels);
    if (c.auroc === null) {
      assert.equal(ours, null, `${c.name}: expected null for one class`);
      continue;
    }
    assert.ok(ours !== null, `${c.name}: got null`);
    assert.ok(Math.abs(ours - c.auroc) < 1e-9, `${c.name}: ours ${ours} vs sklearn ${c.auroc}`);
    // Plain arrays (generic float64 path) give the same answer.
    const plain = auroc(Array.from(typed), c.labels);
    assert.ok(plain !== null && Math.abs(plain - c.auroc) < 1e-9, `${c.name} (number[]): ${plain} vs ${c.auroc}`);
  }
});

test('rocCurve matches sklearn roc_curve(drop_intermediate=True) on small cases', () => {
  let checked = 0;
  for (const c of fixtures.cases) {
    if (!c.roc) continue;
    checked++;
    const scores = c.float32 ? Float32Array.from(c.scores) : Float64Array.from(c.scores);
    const r = rocCurve(scores, Uint8Array.from(c.labels), 100000);
    assert.ok(r !== null, c.name);
    assert.equal(r.fpr.length, c.roc.fpr.length, `${c.name}: number of points`);
    for (let k = 0; k < r.fpr.length; k++) {
      assert.ok(Math.abs(r.fpr[k]! - c.roc.fpr[k]!) < 1e-12, `${c.name} fpr[${k}]`);
      assert.ok(Math.abs(r.tpr[k]! - c.roc.tpr[k]!) < 1e-12, `${c.name} tpr[${k}]`);
      const e: number | null | undefined = c.roc.thresholds[k];
      const expected: number = e === null || e === undefined ? Infinity : c.float32 ? Math.fround(e) : e;
      assert.ok(r.thresholds[k] === expected, `${c.name} thresholds[${k}]: ${r.thresholds[k]} vs ${expected}`); // === : -0 equals 0
    }
  }
  assert.ok(checked >= 5);
});

test('auroc and rocCurve return null when only one class is present', () => {
  assert.equal(auroc(new Float32Array([0.1, 0.5, 0.9]), new Uint8Array([0, 0, 0])), null);
  assert.equal(auroc([0.1, 0.5, 0.9], [1, 1, 1]), null);
  assert.equal(auroc(new Float32Array(0), new Uint8Array(0)), null);
  assert.equal(rocCurve([0.1, 0.2], [1, 1]), null);
});

test('auroc rejects bad input with clear errors', () => {
  assert.throws(() => auroc([0.1, 0.2], [0]), /same length/);
  assert.throws(() => auroc([0.1, 0.2], [0, 255]), /labels must be 0 or 1, got 255 at index 1/);
  assert.throws(() => auroc(new Float32Array([0.1, NaN]), new Uint8Array([0, 1])), /NaN/);
  assert.throws(() => auroc([NaN, 0.1], [0, 1]), /NaN/);
});

test('auroc handles infinities and -0 like ordinary values', () => {
  assert.equal(auroc([-Infinity, 0.5, Infinity, 0.5], [0, 1, 1, 0]), 0.875);
  assert.equal(auroc(new Float32Array([-0, 0, 0, -0]), new Uint8Array([1, 0, 1, 0])), 0.5);
});

test('rocCurve downsampling keeps the ends and respects maxPoints', () => {
  const rng = new Rng(7);
  const n = 20000;
  const s = new Float32Array(n);
  const l = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = rng.next() < 0.2 ? 1 : 0;
    s[i] = rng.next() + 0.3 * l[i]!;
  }
  const r = rocCurve(s, l, 50);
  assert.ok(r !== null);
  assert.ok(r.fpr.length <= 50 && r.fpr.length >= 40, `points: ${r.fpr.length}`);
  assert.equal(r.fpr[0], 0);
  assert.equal(r.tpr[0], 0);
  assert.equal(r.thresholds[0], Infinity);
  assert.equal(r.fpr.at(-1), 1);
  assert.equal(r.tpr.at(-1), 1);
  for (let k = 1; k < r.fpr.length; k++) {
    assert.ok(r.fpr[k]! >= r.fpr[k - 1]! && r.tpr[k]! >= r.tpr[k - 1]!);
    assert.ok(r.thresholds[k]! < r.thresholds[k - 1]!);
  }
  assert.throws(() => rocCurve(s, l, 1), /maxPoints/);
});

test('auroc on 1M samples with heavy ties equals an independent mid-rank reference', () => {
  const rng = new Rng(123);
  const n = 1_000_000;
  const s = new Float32Array(n);
  const l = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = rng.next() < 0.04 ? 1 : 0;
    s[i] = Math.round((rng.next() + 0.4 * l[i]!) * 500) / 500; // ~700 distinct values
  }
  const ours = auroc(s, l);
  const ours64 = auroc(Float64Array.from(s), l);
  const ref = referenceAuc(s, l);
  assert.ok(ours !== null && ours64 !== null && ref !== null);
  assert.ok(Math.abs(ours - ref) < 1e-9, `${ours} vs reference ${ref}`);
  assert.ok(Math.abs(ours64 - ref) < 1e-9, `${ours64} vs reference ${ref}`);
});

test('auroc timing on 6M float32 pixels (pixel-AUROC scale)', (t) => {
  const rng = new Rng(99);
  const n = 6_000_000;
  const s = new Float32Array(n);
  const l = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = rng.next() < 0.03 ? 1 : 0;
    s[i] = rng.next() + 0.5 * l[i]!;
  }
  let best = Infinity;
  let value: number | null = null;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    value = auroc(s, l);
    best = Math.min(best, performance.now() - t0);
  }
  const t0 = performance.now();
  const v64 = auroc(Float64Array.from(s), l);
  const ms64 = performance.now() - t0;
  t.diagnostic(`auroc 6M float32: ${best.toFixed(0)} ms (best of 3); 6M float64 (incl. copy): ${ms64.toFixed(0)} ms; AUC=${value}`);
  assert.ok(value !== null && v64 !== null && Math.abs(value - v64) < 1e-12);
  // Expected AUC for U(0,1) vs U(0.5,1.5): 1 - 0.5 * 0.5^2 = 0.875.
  assert.ok(Math.abs(value - 0.875) < 0.005, `AUC ${value}`);
  assert.ok(best < 3000, `auroc on 6M took ${best.toFixed(0)} ms (target < 3 s)`);
});

test('BinnedAuroc over chunks: within its stated bound of the exact AUROC, exact on coarse ties, order-free', () => {
  const rng = new Rng(7);
  const n = 2_000_000;
  const s = new Float32Array(n);
  const l = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = rng.next() < 0.03 ? 1 : 0;
    s[i] = Math.exp(-6 * rng.next()) * (1 + 0.3 * l[i]!); // anomaly-map-like: many magnitudes, overlapping classes
  }
  const exact = auroc(s, l)!;
  const b = new BinnedAuroc();
  for (let i = 0; i < n; i += 65_536) b.add(s.subarray(i, i + 65_536), l.subarray(i, i + 65_536));
  const r = b.result();
  assert.ok(r.auroc !== null);
  assert.equal(r.positives + r.negatives, n);
  assert.ok(Math.abs(r.auroc - exact) <= r.tieBound + 1e-12, `binned ${r.auroc} vs exact ${exact}, bound ${r.tieBound}`);
  assert.ok(r.tieBound < 1e-4, `bound ${r.tieBound}`);
  // Reversed chunk order: the same counts, the same value.
  const back = new BinnedAuroc();
  for (let i = n - 65_536; i > -65_536; i -= 65_536) back.add(s.subarray(Math.max(0, i), i + 65_536), l.subarray(Math.max(0, i), i + 65_536));
  assert.equal(back.result().auroc, r.auroc);

  // Values 1/500 apart (far wider than a bin) with heavy ties: exactly the exact AUROC.
  const t = new Float32Array(200_000), tl = new Uint8Array(200_000);
  for (let i = 0; i < t.length; i++) { tl[i] = rng.next() < 0.1 ? 1 : 0; t[i] = Math.round((rng.next() + 0.3 * tl[i]!) * 500) / 500; }
  const bt = new BinnedAuroc();
  bt.add(t, tl);
  assert.ok(Math.abs(bt.result().auroc! - auroc(t, tl)!) < 1e-12);
});

test('BinnedAuroc: null for one class, clear errors for NaN, bad labels, length mismatch', () => {
  const b = new BinnedAuroc();
  b.add(new Float32Array([0.1, 0.2, -0, 0]), new Uint8Array(4));
  assert.equal(b.result().auroc, null);
  assert.throws(() => b.add(new Float32Array([NaN]), [0]), /NaN/);
  assert.throws(() => b.add(new Float32Array([1]), [2]), /label at index 0 is 2/);
  assert.throws(() => b.add(new Float32Array([1, 2]), [0]), /2 values but 1 labels/);
  const c = new BinnedAuroc();
  c.add(new Float32Array([-1, 0, -0, 3]), [0, 1, 0, 1]);
  assert.equal(c.result().auroc, auroc(new Float32Array([-1, 0, -0, 3]), [0, 1, 0, 1]));
});
