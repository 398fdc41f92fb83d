#!/usr/bin/env python3
"""Teacher equivalence with the REAL ImageNet trunk (tooling only; never a runtime dependency of ntsnet).

Loads ../shared/weights/resnet18-imagenet-trunk.pth into torchvision's resnet18 (strict=False: the only missing keys
must be layer4.* / fc.*), runs it in eval mode in float64 on the real-image input stored in
test/fixtures/model_teacher.safetensors ('input', a bottle test image at 128 px, ImageNet-normalised, NHWC), and
writes the layer1..layer3 features (stored float32, NHWC) for test/trunk.test.ts.

Run (from the repository root, in the benchmark-only environment or any venv from scripts/tools/requirements.txt):
  .bench/venv/bin/python scripts/tools/make_trunk_fixture.py [--weights ../shared/weights/resnet18-imagenet-trunk.pth]
Writes test/fixtures/trunk_features.safetensors (~460 kB) and test/fixtures/trunk_features.json.
"""
import argparse
import hashlib
import json
import os

import torch
import torchvision
from safetensors.torch import load_file, save_file

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=os.path.join(root, "..", "shared", "weights", "resnet18-imagenet-trunk.pth"))
    ap.add_argument("--out", default=os.path.join(root, "test", "fixtures"))
    a = ap.parse_args()
    sd = torch.load(a.weights, map_location="cpu", weights_only=True)
    model = torchvision.models.resnet18(weights=None)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith(("layer4.", "fc.")) for k in missing), missing
    assert len(missing) == 27, len(missing)
    model = model.double().eval()
    x_nhwc = load_file(os.path.join(a.out, "model_teacher.safetensors"))["input"]
    x = x_nhwc.permute(0, 3, 1, 2).double()
    out = {}
    with torch.no_grad():
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        for i, layer in enumerate((model.layer1, model.layer2, model.layer3), start=1):
            h = layer(h)
            out[f"layer{i}"] = h.permute(0, 2, 3, 1).contiguous().float()
    save_file(out, os.path.join(a.out, "trunk_features.safetensors"))
    meta = {
        "description": "torchvision resnet18 with ../shared/weights/resnet18-imagenet-trunk.pth, eval mode, float64 reference stored float32 NHWC",
        "input": "model_teacher.safetensors 'input' (mvtec_ad/bottle/test/broken_large/000.png, 128 px, ImageNet mean/std)",
        "weights": os.path.basename(a.weights),
        "weightsSha256": sha256(a.weights),
        "missingKeys": len(missing),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "featureMaxAbs": {k: float(v.abs().max()) for k, v in out.items()},
    }
    with open(os.path.join(a.out, "trunk_features.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print({k: list(v.shape) for k, v in out.items()}, meta["featureMaxAbs"])


if __name__ == "__main__":
    main()
