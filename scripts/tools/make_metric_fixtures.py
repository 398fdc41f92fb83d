#!/usr/bin/env python3
"""Writes test/fixtures/auroc_cases.json: fixed AUROC inputs and scikit-learn's answers.

Tooling only (never a runtime dependency). Run from the repository root:

    /tmp/pyenv/bin/python scripts/tools/make_metric_fixtures.py

Each case: {"name", "scores", "labels", "float32", "auroc", "roc"?}
  - "auroc": sklearn.metrics.roc_auc_score(labels, scores), or null when only one class is
    present (sklearn raises ValueError).
  - "float32": true when the scores are float32 values; JSON holds the shortest decimal that
    rounds back to the same float32, so the test feeds them as a Float32Array.
  - "roc" (small cases only): sklearn.metrics.roc_curve(labels, scores, drop_intermediate=True)
    as {"fpr", "tpr", "thresholds"} with the leading threshold inf written as null.
Numbers are written with Python's repr (shortest round-trip), so JavaScript reads them exactly.
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score, roc_curve

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "auroc_cases.json")


def case(name, scores, labels, float32=False, with_roc=False):
    scores = np.asarray(scores, dtype=np.float32 if float32 else np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    out = {
        "name": name,
        "float32": bool(float32),
        # float32: shortest decimal that rounds back to the same float32 (JS: Float32Array.from).
        "scores": [float(str(v)) for v in scores] if float32 else [float(v) for v in scores],
        "labels": [int(v) for v in labels],
    }
    if len(np.unique(labels)) < 2:
        out["auroc"] = None
    else:
        out["auroc"] = float(roc_auc_score(labels, scores))
        if with_roc:
            fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=True)
            out["roc"] = {
                "fpr": [float(v) for v in fpr],
                "tpr": [float(v) for v in tpr],
                "thresholds": [None if np.isinf(v) else float(v) for v in thr],
            }
    return out


def main():
    rng = np.random.default_rng(20240601)
    cases = []
    cases.append(case("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], with_roc=True))
    cases.append(case("inverted", [0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], with_roc=True))
    cases.append(case("sklearn_doc", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], with_roc=True))
    cases.append(case("ties_mixed", [0.5, 0.5, 0.5, 0.2, 0.9, 0.9, 0.1, 0.5], [1, 0, 1, 0, 1, 0, 0, 0], with_roc=True))
    cases.append(case("all_equal", [0.3] * 10, [0, 1] * 5, with_roc=True))
    cases.append(case("negative_zero", [-0.0, 0.0, 0.0, -0.0, 1.0, -1.0], [1, 0, 1, 0, 1, 0], with_roc=True))
    cases.append(case("one_class_neg", [0.1, 0.2, 0.3], [0, 0, 0]))
    cases.append(case("one_class_pos", [0.1, 0.2, 0.3], [1, 1, 1]))
    # Imbalanced: 1 positive among 1000, and 3 negatives among 500.
    s = np.round(rng.random(1000), 6)
    lab = np.zeros(1000, dtype=np.int64)
    lab[rng.integers(1000)] = 1
    cases.append(case("imbalanced_1pos", s, lab))
    s = np.round(rng.random(500), 6)
    lab = np.ones(500, dtype=np.int64)
    lab[rng.choice(500, 3, replace=False)] = 0
    cases.append(case("imbalanced_3neg", s, lab, with_roc=True))
    # 10k random, float64, continuous scores.
    lab = (rng.random(10000) < 0.3).astype(np.int64)
    s = np.round(rng.normal(size=10000) + 0.8 * lab, 6)  # 6 decimals: keeps the file small, still few ties
    cases.append(case("random_10k", s, lab))
    # 10k random with heavy ties (scores rounded to 1 decimal).
    lab = (rng.random(10000) < 0.1).astype(np.int64)
    s = np.round(rng.normal(size=10000) + 0.5 * lab, 1)
    cases.append(case("random_10k_ties", s, lab, with_roc=True))
    # 10k random float32 scores (exercises the Float32Array radix-sort path), including ties and -0.
    lab = (rng.random(10000) < 0.05).astype(np.int64)
    s = np.round(rng.normal(size=10000) + 1.0 * lab, 4).astype(np.float32)
    s[:200] = np.float32(0.25)
    s[200:210] = np.float32(-0.0)
    s[210:220] = np.float32(0.0)
    cases.append(case("random_10k_float32", s, lab, float32=True))
    # float32 with negative values and a wide dynamic range.
    lab = (rng.random(3000) < 0.5).astype(np.int64)
    s = (np.exp(rng.normal(size=3000) * 8) * np.where(rng.random(3000) < 0.5, -1, 1) * (1 + lab)).astype(np.float32)
    cases.append(case("wide_range_float32", s, lab, float32=True))
    # Small float32 case with ties for the ROC-curve comparison.
    lab = (rng.random(300) < 0.3).astype(np.int64)
    s = np.round(rng.normal(size=300) + lab, 1).astype(np.float32)
    cases.append(case("small_float32_ties", s, lab, float32=True, with_roc=True))

    doc = {
        "generator": "scripts/tools/make_metric_fixtures.py",
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}: {len(cases)} cases (sklearn {sklearn.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
