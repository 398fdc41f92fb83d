#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures used by test/weights.test.ts (tooling only, needs torch + safetensors).

Usage:
  python scripts/tools/make_pth_fixture.py [--out test/fixtures] [--pypi /path/to/weights.pth]

Writes into --out:
  tiny.pth                        torch.save zip checkpoint exercising views, shared storages and dtypes
  tiny_expected.safetensors       the same tensors, contiguous float32 (what readPth must return)
  weights_wrapped.pth             {'state_dict': {'module.*': ...}, 'epoch': 3}
  weights_legacy.pth              the legacy (pre-1.6, non-zip) format, which readPth must refuse
  weights_pypi_expected.json      (only with --pypi) sha256 and a few values of a realistic checkpoint
"""
import argparse
import hashlib
import json
import os
from collections import OrderedDict

import torch
from safetensors.torch import save_file


def tiny_state() -> "OrderedDict[str, torch.Tensor]":
    g = torch.Generator().manual_seed(0)
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    sd["conv.weight"] = torch.randn(4, 2, 3, 3, generator=g)  # float32 4-D
    sd["bn.weight"] = torch.rand(4, generator=g) + 0.5
    sd["bn.bias"] = torch.randn(4, generator=g)
    sd["bn.running_mean"] = torch.randn(4, generator=g)
    sd["bn.running_var"] = torch.rand(4, generator=g) + 0.1
    sd["bn.num_batches_tracked"] = torch.tensor(1234, dtype=torch.long)  # 0-d int64
    sd["view.transposed"] = torch.randn(3, 5, generator=g).t()  # non-contiguous, strides (1, 5)
    assert not sd["view.transposed"].is_contiguous()
    base = torch.arange(24, dtype=torch.float32) * 0.5 - 3.0
    sd["shared.a"] = base[2:8]  # storage offset 2
    sd["shared.b"] = base[10:22].view(3, 4)  # same storage, offset 10
    sd["strided.every_other"] = base[1::2]  # stride 2, same storage again
    sd["half.weight"] = (torch.randn(2, 3, generator=g) * 10).half()
    sd["bf16.weight"] = torch.randn(5, generator=g).bfloat16()
    sd["double.weight"] = torch.randn(2, 2, generator=g).double()
    sd["int.index"] = torch.tensor([-3, 0, 7], dtype=torch.int32)
    sd["bool.mask"] = torch.tensor([True, False, True])
    sd["param.weight"] = torch.nn.Parameter(torch.randn(3, generator=g))  # _rebuild_parameter
    return sd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures"))
    ap.add_argument("--pypi", help="realistic checkpoint to dump reference values from")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    sd = tiny_state()
    torch.save(sd, os.path.join(a.out, "tiny.pth"))
    expected = {k: v.detach().float().contiguous().clone() for k, v in sd.items()}
    save_file(expected, os.path.join(a.out, "tiny_expected.safetensors"))

    g = torch.Generator().manual_seed(1)
    wrapped = {
        "state_dict": OrderedDict([("module.a.weight", torch.randn(2, 2, generator=g)), ("module.b.bias", torch.randn(3, generator=g))]),
        "epoch": 3,
        "lr": 0.01,
        "name": "demo",
    }
    torch.save(wrapped, os.path.join(a.out, "weights_wrapped.pth"))
    torch.save(OrderedDict([("x", torch.ones(2))]), os.path.join(a.out, "weights_legacy.pth"), _use_new_zipfile_serialization=False)

    if a.pypi:
        raw = open(a.pypi, "rb").read()
        state = torch.load(a.pypi, map_location="cpu", weights_only=True)
        keys = ["backbone.conv1.weight", "backbone.bn1.running_var", "backbone.layer2.0.downsample.0.weight",
                "backbone.layer3.1.bn2.num_batches_tracked", "backbone.fc.weight", "backbone.fc.bias"]
        ref = {
            "file": os.path.basename(a.pypi),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "num_tensors": len(state),
            "tensors": {
                k: {
                    "shape": list(state[k].shape),
                    "first": [float(x) for x in state[k].float().flatten()[:8]],
                    "sum": float(state[k].double().sum()),
                }
                for k in keys
            },
        }
        with open(os.path.join(a.out, "weights_pypi_expected.json"), "w") as f:
            json.dump(ref, f, indent=1)
    for name in sorted(os.listdir(a.out)):
        print(f"{os.path.getsize(os.path.join(a.out, name)):>9}  {name}")


if __name__ == "__main__":
    main()
