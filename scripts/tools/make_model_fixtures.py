#!/usr/bin/env python3
"""Independent PyTorch reference fixtures for the model tests (tooling only; never a runtime dependency).

Regenerate (from the repository root):
  /tmp/pyenv/bin/python scripts/tools/make_model_fixtures.py
In general: create a venv from scripts/tools/requirements.txt, then
  python -m venv .venv-tools && .venv-tools/bin/pip install -r scripts/tools/requirements.txt
  .venv-tools/bin/python scripts/tools/make_model_fixtures.py [--out test/fixtures] [--image PATH]

The reference math is written from the paper / the documented semantics (torchvision ResNet18, the CoT block as
specified in src/model/cot.ts's TSDoc, STFPM/NTSNet loss and anomaly map), not transliterated from the TypeScript.
All references are computed in float64 from float32 inputs/weights and stored as float32 (the TF.js side runs in
float32, so the measured differences are the TS implementation's own error). Tensors are stored NHWC.

Writes into --out (total about 2.3 MB):
  model_teacher.safetensors / .json   test/teacher.test.ts: torchvision resnet18 trunk with deterministic weights
  model_cot.safetensors / .json       test/cot.test.ts: CoT block, eval-mode and training-mode BatchNorm, and
                                      training-mode autograd gradients (case b)
  model_loss_map.safetensors / .json  test/loss_map.test.ts: loss (eq. 10-11) and fused anomaly map (eq. 12-13)

Deterministic teacher weights (rebuilt identically in TS, test/model_helpers.ts `deterministicTrunk`):
  names = the resnet18 state_dict keys of conv1, bn1, layer1..layer3 without num_batches_tracked;
  k = index of the name in sorted(names) (plain code-point order); i = flat index in PyTorch layout (OIHW);
  s = sin(0.37 * i + 1.3 * k) in float64;
  conv weight [O, I, kh, kw]: sqrt(6 / (I * kh * kw)) * s;  BN weight: 1 + 0.1 * s;  BN bias: 0.1 * s;
  BN running_mean: 0.1 * s;  BN running_var: 1 + 0.5 * |s|;  each value then rounded to float32.
"""
import argparse
import json
import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from safetensors.torch import save_file

DEFAULT_IMAGE = "/work/shared/data/mvtec_ad/bottle/test/broken_large/000.png"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-5


def nhwc(t: torch.Tensor) -> torch.Tensor:
    """NCHW (float64 or float32) -> contiguous NHWC float32."""
    return t.permute(0, 2, 3, 1).contiguous().to(torch.float32)


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().to(torch.float32)


# ----------------------------------------------------------------------------------------------------------------
# 1. Teacher: torchvision resnet18 trunk with deterministic weights
# ----------------------------------------------------------------------------------------------------------------

TRUNK_PREFIXES = ("conv1", "bn1", "layer1", "layer2", "layer3")


def deterministic_value(name: str, shape, k: int) -> np.ndarray:
    n = int(np.prod(shape))
    s = np.array([math.sin(0.37 * i + 1.3 * k) for i in range(n)], dtype=np.float64)
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        v = math.sqrt(6.0 / fan_in) * s
    elif name.endswith(".running_var"):
        v = 1.0 + 0.5 * np.abs(s)
    elif name.endswith(".running_mean") or name.endswith(".bias"):
        v = 0.1 * s
    elif name.endswith(".weight"):
        v = 1.0 + 0.1 * s
    else:
        raise ValueError(f"unexpected parameter {name}")
    return v.astype(np.float32).reshape(shape)


def make_teacher(out: str, image: str) -> None:
    model = torchvision.models.resnet18(weights=None)
    sd = model.state_dict()
    names = [n for n in sd if n.split(".")[0] in TRUNK_PREFIXES and not n.endswith("num_batches_tracked")]
    order = sorted(names)
    new_sd = OrderedDict()
    checks = OrderedDict()
    for name in names:
        k = order.index(name)
        v = deterministic_value(name, tuple(sd[name].shape), k)
        new_sd[name] = torch.from_numpy(v)
        flat = v.reshape(-1).astype(np.float64)
        checks[name] = {"k": k, "shape": list(v.shape), "sum": float(flat.sum()), "first": [float(x) for x in flat[:3]]}
    missing, _unexpected = model.load_state_dict(new_sd, strict=False)
    assert all(m.split(".")[0] not in TRUNK_PREFIXES for m in missing), missing
    model = model.double().eval()

    img = Image.open(image).convert("RGB").resize((128, 128), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / np.float32(255.0)).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    x = ((x - mean) / std).to(torch.float32)  # the exact float32 input both sides use

    tensors = {"input": nhwc(x)}
    with torch.no_grad():
        h = model.maxpool(model.relu(model.bn1(model.conv1(x.double()))))
        for l, layer in enumerate((model.layer1, model.layer2, model.layer3), start=1):
            h = layer(h)
            tensors[f"layer{l}"] = nhwc(h)
    save_file(tensors, os.path.join(out, "model_teacher.safetensors"))
    meta = {
        "description": "torchvision resnet18 (weights=None) trunk with deterministic weights, eval mode, float64 reference stored float32 NHWC",
        "image": "mvtec_ad/bottle/test/broken_large/000.png",
        "preprocess": "PIL RGB, resize 128x128 Image.BILINEAR, /255, ImageNet mean/std",
        "weights": "k = index in sorted(names); i = flat PyTorch index; s = sin(0.37*i + 1.3*k); conv sqrt(6/fan_in)*s; "
        "bn weight 1+0.1*s, bias 0.1*s, running_mean 0.1*s, running_var 1+0.5*|s|; rounded to float32",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "featureMaxAbs": {k: float(v.abs().max()) for k, v in tensors.items() if k != "input"},
        "weightChecks": checks,
    }
    with open(os.path.join(out, "model_teacher.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("teacher:", {k: list(v.shape) for k, v in tensors.items()}, meta["featureMaxAbs"])


# ----------------------------------------------------------------------------------------------------------------
# 2. CoT block
# ----------------------------------------------------------------------------------------------------------------


class Key(nn.Module):
    def __init__(self, in_c: int, out_c: int, stride: int, groups: int):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, 3, stride, 1, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_c, eps=BN_EPS)


class CoT(nn.Module):
    """Improved Contextual Transformer block, from the math in src/model/cot.ts's TSDoc (NCHW)."""

    def __init__(self, in_c: int, out_c: int, stride: int, groups: int, heads: int, reduction: int):
        super().__init__()
        self.out_c, self.heads = out_c, heads
        hidden = max(out_c // reduction, 8)
        self.key = Key(in_c, out_c, stride, groups)
        self.query = nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False)
        self.value = nn.ModuleList([nn.Conv2d(in_c, out_c, 1, stride, 0, bias=False), nn.Conv2d(out_c, out_c, 1, 1, 0, bias=False)])
        self.attn = nn.ModuleList([nn.Conv2d(2 * out_c, hidden, 1, bias=True), nn.Conv2d(hidden, heads * 9, 1, bias=True)])

    def forward(self, x: torch.Tensor):
        k = F.relu(self.key.bn(self.key.conv(x)))
        q = self.query(x)
        v = self.value[1](self.value[0](x))
        logits = self.attn[1](F.relu(self.attn[0](torch.cat([k, q], dim=1))))
        b, _, h, w = logits.shape
        a = torch.softmax(logits.view(b, self.heads, 9, h, w), dim=2)  # over the window, per head
        # unfold: [B, C*9, H*W], channel-major then window position j = (dy+1)*3 + (dx+1), zero padding
        nb = F.unfold(v, kernel_size=3, padding=1).view(b, self.heads, self.out_c // self.heads, 9, h, w)
        g = (nb * a.unsqueeze(2)).sum(dim=3).reshape(b, self.out_c, h, w)
        return k + g, logits, a


GRAD_PARAMS = ("key.conv.weight", "key.bn.weight", "key.bn.bias", "query.weight", "value.0.weight", "attn.0.bias", "attn.1.weight")


def case_meta(cname: str, c: dict, tensors: dict) -> dict:
    return {**c, "hidden": max(c["outC"] // c["reduction"], 8), "inputShape": [2, 16, 16, c["inC"]],
            "outMaxAbsEval": float(tensors[f"{cname}/out_eval"].abs().max()),
            "outMaxAbsTrain": float(tensors[f"{cname}/out_train"].abs().max())}


def make_cot(out: str) -> None:
    gen = torch.Generator().manual_seed(1234)
    cases = OrderedDict(
        a=dict(inC=64, outC=64, stride=1, groups=4, heads=4, reduction=4, grads=False),
        b=dict(inC=64, outC=128, stride=2, groups=4, heads=4, reduction=4, grads=True),
    )
    tensors = {}
    meta = {"description": "CoT block reference (src/model/cot.ts math); weights in PyTorch layout under '<case>/param/blk.*'", "cases": {}}
    for cname, c in cases.items():
        blk = CoT(c["inC"], c["outC"], c["stride"], c["groups"], c["heads"], c["reduction"])
        params = OrderedDict()
        for name, t in blk.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if t.dim() == 4:
                fan_in = t.shape[1] * t.shape[2] * t.shape[3]
                v = torch.randn(t.shape, generator=gen) * math.sqrt(2.0 / fan_in)
            elif name.endswith("running_var"):
                v = 0.5 + torch.rand(t.shape, generator=gen)
            elif name.endswith("running_mean"):
                v = 0.2 * torch.randn(t.shape, generator=gen)
            elif name == "key.bn.weight":
                v = 1.0 + 0.2 * torch.randn(t.shape, generator=gen)
            else:  # key.bn.bias, attn biases
                v = 0.2 * torch.randn(t.shape, generator=gen)
            params[name] = v.to(torch.float32)
        blk.load_state_dict(params, strict=False)
        blk = blk.double()
        x = torch.randn(2, c["inC"], 16, 16, generator=gen).to(torch.float32)
        tensors[f"{cname}/input"] = nhwc(x)
        for n, v in params.items():
            tensors[f"{cname}/param/blk.{n}"] = f32(v)
        with torch.no_grad():
            blk.eval()
            y, logits, a = blk(x.double())
            tensors[f"{cname}/out_eval"] = nhwc(y)
            tensors[f"{cname}/logits_eval"] = nhwc(logits)
            tensors[f"{cname}/attn_eval"] = a.permute(0, 3, 4, 1, 2).contiguous().to(torch.float32)  # [B,H,W,heads,9]
            blk.train()
            kc = blk.key.conv(x.double())
            tensors[f"{cname}/train_mean"] = f32(kc.mean(dim=(0, 2, 3)))
            tensors[f"{cname}/train_var"] = f32(kc.var(dim=(0, 2, 3), unbiased=False))
            y, _, _ = blk(x.double())
            tensors[f"{cname}/out_train"] = nhwc(y)
        # Training-mode gradients of sum(Y * R) for a fixed random R (input and a few parameters); case b only
        # (stride 2 and a channel change) to keep the fixture small.
        if not c["grads"]:
            meta["cases"][cname] = case_meta(cname, c, tensors)
            continue
        r = torch.randn(y.shape, generator=gen).to(torch.float32)
        tensors[f"{cname}/grad/r"] = nhwc(r)
        xg = x.double().requires_grad_(True)
        blk.zero_grad()
        y, _, _ = blk(xg)
        (y * r.double()).sum().backward()
        tensors[f"{cname}/grad/input"] = nhwc(xg.grad)
        for n in GRAD_PARAMS:
            tensors[f"{cname}/grad/param/blk.{n}"] = f32(blk.get_parameter(n).grad)
        meta["cases"][cname] = case_meta(cname, c, tensors)
    meta["gradParams"] = list(GRAD_PARAMS)
    save_file(tensors, os.path.join(out, "model_cot.safetensors"))
    with open(os.path.join(out, "model_cot.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("cot:", meta["cases"])


# ----------------------------------------------------------------------------------------------------------------
# 3. Loss and anomaly map
# ----------------------------------------------------------------------------------------------------------------


def layer_distance(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """0.5 * ||t/||t|| - s/||s|| ||^2 over channels: [B, C, h, w] -> [B, h, w]."""
    return 0.5 * (F.normalize(t, dim=1) - F.normalize(s, dim=1)).pow(2).sum(dim=1)


def gaussian_blur_reflect(m: torch.Tensor, sigma: float) -> torch.Tensor:
    """[B, 1, H, W]: reflect padding then an explicit 2-D conv with the outer product of the 1-D Gaussian."""
    size = 2 * int(math.floor(4 * sigma + 0.5)) + 1
    r = (size - 1) // 2
    xs = torch.arange(size, dtype=torch.float64) - r
    g = torch.exp(-xs.pow(2) / (2 * sigma * sigma))
    g = g / g.sum()
    k2 = torch.outer(g, g).view(1, 1, size, size)
    return F.conv2d(F.pad(m, (r, r, r, r), mode="reflect"), k2), size


def make_loss_map(out: str) -> None:
    gen = torch.Generator().manual_seed(99)
    shapes = [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]  # NCHW
    ts = [torch.randn(s, generator=gen).to(torch.float32) for s in shapes]
    # Student = teacher + noise, so that distances are neither trivial nor saturated.
    ss = [(t + 0.8 * torch.randn(t.shape, generator=gen)).to(torch.float32) for t in ts]
    tensors = {}
    for l, (t, s) in enumerate(zip(ts, ss)):
        tensors[f"t{l}"] = nhwc(t)
        tensors[f"s{l}"] = nhwc(s)
    size, sigma = 64, 4.0
    dists = [layer_distance(t.double(), s.double()) for t, s in zip(ts, ss)]  # [B, h, w]
    per_image = [d.mean(dim=(1, 2)) for d in dists]  # [B]
    loss_sum = sum(p.sum() for p in per_image)
    loss_mean = sum(p.mean() for p in per_image)
    tensors["loss_sum"] = f32(loss_sum.view(1))
    tensors["loss_mean"] = f32(loss_mean.view(1))
    # Per-subset losses: layers [1] only and [2, 3] (layer indices into the arrays above).
    tensors["loss_sum_layer0"] = f32(per_image[0].sum().view(1))
    up = [F.interpolate(d[:, None], size=(size, size), mode="bilinear", align_corners=False) for d in dists]
    fused = {"sum": up[0] + up[1] + up[2], "product": up[0] * up[1] * up[2]}
    meta = {"description": "loss (eq. 10-11) and anomaly map (eq. 12-13) reference; features NHWC", "size": size, "sigma": sigma}
    for name, fm in fused.items():
        blurred, ksize = gaussian_blur_reflect(fm, sigma)
        tensors[f"fused_{name}"] = f32(fm[:, 0])  # [B, H, W] before smoothing
        tensors[f"map_{name}"] = f32(blurred[:, 0])  # [B, H, W]
        tensors[f"score_{name}"] = f32(blurred[:, 0].amax(dim=(1, 2)))
        meta["kernelSize"] = ksize
    tensors["dist0"] = f32(dists[0])
    save_file(tensors, os.path.join(out, "model_loss_map.safetensors"))
    meta["lossSum"] = float(loss_sum)
    meta["lossMean"] = float(loss_mean)
    with open(os.path.join(out, "model_loss_map.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("loss/map:", meta)


def readable(out: str) -> None:
    for name in os.listdir(out):
        if name.startswith("model_"):
            os.chmod(os.path.join(out, name), 0o644)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="test/fixtures")
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    make_teacher(args.out, args.image)
    make_cot(args.out)
    make_loss_map(args.out)
    readable(args.out)


if __name__ == "__main__":
    main()
