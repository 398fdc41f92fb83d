#!/usr/bin/env python3
"""Writes test/fixtures/aupro_f1_cases.json: fixed AUPRO and F1-max inputs with independently computed answers.

Tooling only (never a runtime dependency). Run from the repository root:

    /tmp/pyenv/bin/python scripts/tools/make_aupro_f1_fixtures.py

AUPRO reference (brute force, no shared code with src/metrics/aupro.ts): regions = skimage.measure.label with
8-connectivity per image; for every distinct score t (descending) FPR = share of normal pixels >= t and
PRO = mean over regions of the share of region pixels >= t; curve starts at (0, 0); trapezoid area up to FPR 0.3
with linear interpolation at 0.3, divided by 0.3.
F1-max reference: sklearn.metrics.precision_recall_curve, F1 = 2PR / (P + R) (0 where P + R = 0), maximum and its
threshold.
"""
import json
import os

import numpy as np
import skimage
import sklearn
from skimage.measure import label
from sklearn.metrics import precision_recall_curve

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "aupro_f1_cases.json")


def aupro_reference(maps, masks, limit=0.3):
    maps = np.asarray(maps, dtype=np.float64)
    regions = []
    for i, m in enumerate(masks):
        lab = label(m > 0, connectivity=2)
        for k in range(1, lab.max() + 1):
            regions.append((i, lab == k))
    normal = masks == 0
    if not regions or normal.sum() == 0:
        return None
    fpr, pro = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        fpr.append(float((maps[normal] >= t).sum() / normal.sum()))
        pro.append(float(np.mean([(maps[i][r] >= t).mean() for i, r in regions])))
    fpr, pro = np.array(fpr), np.array(pro)
    area = 0.0
    for i in range(1, len(fpr)):
        x0, x1, y0, y1 = fpr[i - 1], fpr[i], pro[i - 1], pro[i]
        if x0 >= limit:
            break
        if x1 <= limit:
            area += (x1 - x0) * (y0 + y1) / 2
        else:
            y = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            area += (limit - x0) * (y0 + y) / 2
            break
    return area / limit, len(regions)


def aupro_case(name, maps, masks):
    maps = np.asarray(maps, dtype=np.float32)
    masks = np.asarray(masks, dtype=np.uint8)
    ref = aupro_reference(maps, masks)
    n, h, w = maps.shape
    return {
        "name": name, "n": n, "h": h, "w": w,
        "maps": [float(str(v)) for v in maps.ravel()],
        "masks": [int(v) for v in masks.ravel()],
        "aupro": None if ref is None else ref[0],
        "regions": 0 if ref is None else ref[1],
    }


def f1_case(name, scores, labels):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    out = {"name": name, "scores": [float(v) for v in scores], "labels": [int(v) for v in labels]}
    if labels.sum() == 0:
        out["f1"] = None
        return out
    p, r, t = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    k = int(np.argmax(f1[:-1]))  # the last point (P=1, R=0) has no threshold
    out["f1"] = float(f1[k])
    out["threshold"] = float(t[k])
    return out


def main():
    rng = np.random.default_rng(20261129)
    cases = []
    # Two images, regions of different sizes, one diagonal-only contact (one region with 8-connectivity).
    masks = np.zeros((2, 12, 12), np.uint8)
    masks[0, 2:5, 2:5] = 1
    masks[0, 5, 5] = 1  # touches the square only diagonally
    masks[0, 8:11, 1:3] = 1
    masks[1, 6:7, 6:12] = 1
    maps = rng.random((2, 12, 12)).astype(np.float32) * 0.6 + masks * 0.5
    cases.append(aupro_case("two_images_diagonal", maps, masks))
    # Heavy ties: scores rounded to 1 decimal.
    masks = (rng.random((3, 16, 16)) < 0.08).astype(np.uint8)
    maps = np.round(rng.random((3, 16, 16)) + 0.4 * masks, 1).astype(np.float32)
    cases.append(aupro_case("ties_scattered", maps, masks))
    # Normal images only have FPR pixels; a perfect detector gives 1.
    masks = np.zeros((3, 10, 10), np.uint8)
    masks[1, 3:7, 3:7] = 1
    maps = masks.astype(np.float32) + 0.01 * rng.random((3, 10, 10)).astype(np.float32)
    cases.append(aupro_case("perfect", maps, masks))
    # Inverted detector.
    cases.append(aupro_case("inverted", -maps, masks))
    # No defect at all: undefined.
    cases.append(aupro_case("no_regions", rng.random((2, 8, 8)), np.zeros((2, 8, 8), np.uint8)))
    # Larger random case, continuous scores with a ring-shaped region (a hole is background).
    masks = np.zeros((4, 32, 32), np.uint8)
    masks[0, 4:20, 4:20] = 1
    masks[0, 9:15, 9:15] = 0
    masks[2, 20:30, 2:8] = 1
    masks[3, 0:3, 0:32] = 1
    maps = (rng.normal(size=(4, 32, 32)) + 1.2 * masks).astype(np.float32)
    cases.append(aupro_case("ring_and_bands", maps, masks))

    f1 = []
    f1.append(f1_case("perfect", [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]))
    f1.append(f1_case("all_defective_best", [0.9, 0.8, 0.2, 0.1, 0.5], [0, 0, 1, 1, 1]))
    f1.append(f1_case("ties", [0.5, 0.5, 0.5, 0.2, 0.9, 0.9, 0.1, 0.5], [1, 0, 1, 0, 1, 0, 0, 0]))
    f1.append(f1_case("no_positive", [0.1, 0.2], [0, 0]))
    lab = (rng.random(500) < 0.3).astype(np.int64)
    f1.append(f1_case("random_500", np.round(rng.normal(size=500) + lab, 4), lab))
    lab = (rng.random(300) < 0.7).astype(np.int64)
    f1.append(f1_case("random_300_ties", np.round(rng.normal(size=300) + 0.5 * lab, 1), lab))

    with open(OUT, "w") as f:
        json.dump({"sklearn": sklearn.__version__, "skimage": skimage.__version__, "aupro": cases, "f1": f1}, f)
    print(f"wrote {OUT}: {len(cases)} AUPRO cases, {len(f1)} F1 cases")


if __name__ == "__main__":
    main()
