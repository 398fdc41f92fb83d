#!/usr/bin/env python3
"""Checks whether a ResNet18 weights file is torchvision's IMAGENET1K_V1 (tooling only: torch, torchvision, scikit-image).

Usage: python scripts/tools/verify_resnet18_weights.py PATH

Prints the SHA-256 (torchvision's file is resnet18-f37072fd.pth: its SHA-256 starts with f37072fd), loads the state
dict into torchvision.models.resnet18 (stripping module./backbone./model. prefixes), reports the fc shape, checks
whether the BatchNorm running statistics look trained, and, for a 1000-way fc, classifies skimage.data.chelsea()
(a tabby cat) with the standard ImageNet preprocessing. Exit status 0 = genuine ImageNet weights, 1 = not.
"""
import hashlib
import sys

import torch
import torchvision
from torchvision import transforms

EXPECTED_PREFIX = "f37072fd"
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def strip_prefixes(sd):
    changed = True
    while changed and sd:
        changed = False
        for p in ("module.", "backbone.", "model."):
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    sha = h.hexdigest()
    sha_ok = sha.startswith(EXPECTED_PREFIX)
    print(f"file:    {path}")
    print(f"sha256:  {sha}")
    print(f"sha256 prefix {sha[:8]} == {EXPECTED_PREFIX} (torchvision IMAGENET1K_V1): {'YES' if sha_ok else 'NO'}")

    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            print(f"checkpoint: using the '{key}' entry")
            obj = obj[key]
    sd = strip_prefixes(dict(obj))
    fc = sd.get("fc.weight")
    num_classes = fc.shape[0] if fc is not None else 1000
    print(f"tensors: {len(sd)}; fc.weight shape: {tuple(fc.shape) if fc is not None else 'absent'}")

    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    res = model.load_state_dict(sd, strict=False)
    print(f"load into torchvision resnet18: missing={list(res.missing_keys)} unexpected={list(res.unexpected_keys)}")

    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    default = [n for n, m in bns if torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)]
    tracked = sorted({int(m.num_batches_tracked) for _, m in bns})
    bn_trained = not default
    print(f"BatchNorm layers: {len(bns)}; with default running stats (mean all 0, var all 1): {len(default)}; "
          f"num_batches_tracked values: {tracked}")
    print(f"BN running stats look trained: {'YES' if bn_trained else 'NO'}")
    w = model.conv1.weight.detach()
    kaiming_std = (2.0 / (w.shape[0] * w.shape[2] * w.shape[3])) ** 0.5
    print(f"conv1.weight std: {float(w.std()):.4f} (fresh kaiming_normal init would give ~{kaiming_std:.4f})")

    cat_ok = False
    if num_classes == 1000:
        from skimage import data
        from PIL import Image

        tf = transforms.Compose([
            transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])
        x = tf(Image.fromarray(data.chelsea())).unsqueeze(0)
        model.eval()
        with torch.no_grad():
            p = model(x).softmax(1)[0]
        top = p.topk(5)
        print("chelsea (tabby cat) top-5 ImageNet classes: " +
              ", ".join(f"{int(i)} ({float(v):.3f})" for v, i in zip(top.values, top.indices)))
        cat_ok = int(top.indices[0]) in CAT_CLASSES
        print(f"top-1 is a cat class (281-285): {'YES' if cat_ok else 'NO'}")
    else:
        print(f"fc is {num_classes}-way, not the 1000 ImageNet classes: ImageNet classification check skipped")

    genuine = sha_ok and bn_trained and cat_ok
    print(f"VERDICT: {'genuine torchvision ResNet18 IMAGENET1K_V1 weights' if genuine else 'NOT the torchvision ImageNet weights'}")
    return 0 if genuine else 1


if __name__ == "__main__":
    sys.exit(main())
