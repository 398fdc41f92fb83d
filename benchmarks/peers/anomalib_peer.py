"""Runs an anomalib model (STFPM, PatchCore or Reverse Distillation, ResNet18 backbone) as the peer of `ntsnet benchmark`.

Benchmark-only tooling: runs in the environment made by setup-anomalib.sh, never imported by ntsnet.

The benchmark gives this script exactly the images ntsnet uses (train / test lists of its seeded split), the image
size, the epochs and the teacher / backbone weights file that ntsnet's teacher uses (ImageNet ResNet18 when it is
available; otherwise the same seeded random ResNet18, exported by the benchmark). anomalib's own modules do the work:
its network (anomalib.models.Stfpm / Patchcore / ReverseDistillation, `.model`), loss, optimiser (`configure_optimizers`), pre-processing
(`configure_pre_processor`: Resize + ImageNet Normalize) and anomaly map. Only the outer loop is a plain PyTorch loop
instead of Lightning's Trainer, so that the raw (un-normalised) scores and maps come back and ntsnet's metric code
scores both tools identically. Timm's `pretrained=True` download is disabled (no network); the weights file is
loaded into the backbone instead, and every backbone tensor must come from it.

Writes to --out: peer.json (timings, versions, what was loaded), scores.f32 [N] and maps.f32 [N, H, W]
(little-endian float32, test order of the input file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import timm
import torch
from PIL import Image

_create_model = timm.create_model


def _offline_create_model(*args, **kwargs):
    # No model hub here: build the architecture only; weights come from --weights.
    kwargs["pretrained"] = False
    return _create_model(*args, **kwargs)


timm.create_model = _offline_create_model

import anomalib  # noqa: E402  (after the timm patch: anomalib builds backbones at construction time)
from anomalib.models import Patchcore, ReverseDistillation, Stfpm  # noqa: E402


def load_state(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def load_backbone(extractor: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> int:
    """Loads torchvision-named ResNet weights into a timm feature extractor; every tensor it has must be in the file."""
    own = extractor.state_dict()
    missing = [k for k in own if not k.endswith("num_batches_tracked") and k not in state]
    if missing:
        sys.exit(f"{what}: the weights file lacks {len(missing)} backbone tensors, e.g. {missing[:3]}")
    bad = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        sys.exit(f"{what}: shape mismatch for {bad[:3]}")
    extractor.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
    return sum(1 for k in own if k in state)


def load_images(paths: list[str], transform) -> torch.Tensor:
    out = []
    for p in paths:
        with Image.open(p) as im:
            x = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
        out.append(transform(x))
    return torch.stack(out)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_inference(model: torch.nn.Module, size: int, batches: list[int], runs: int, warmup: int = 2) -> list[dict]:
    out = []
    gen = torch.Generator().manual_seed(7)
    for b in batches:
        x = torch.randn(b, 3, size, size, generator=gen)
        times = []
        with torch.no_grad():
            for i in range(warmup + runs):
                t0 = time.perf_counter()
                r = model(x)
                _ = r.anomaly_map.numpy(), r.pred_score.numpy()
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        out.append({"batchSize": b, "imagesPerSecond": b / med, "medianMsPerBatch": med * 1000, "runs": runs})
    return out


def train_distill(name: str, module, frozen: torch.nn.Module, train: torch.Tensor, epochs: int, batch_size: int, seed: int, max_batches: int | None = None) -> list[dict]:
    """anomalib's training step of a distillation model (STFPM, Reverse Distillation: its forward, loss and optimiser)
    in a plain loop; seconds per epoch in the history."""
    net = module.model
    opt = module.configure_optimizers()
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        te = time.perf_counter()
        net.train()
        frozen.eval()  # the pretrained network keeps its BatchNorm statistics
        order = torch.randperm(len(train), generator=gen)
        total, seen = 0.0, 0
        for b, i in enumerate(range(0, len(order), batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            x = train[order[i : i + batch_size]]
            loss = module.loss(*net(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            seen += len(x)
        history.append({"epoch": epoch + 1, "trainLoss": total / max(seen, 1), "seconds": time.perf_counter() - te, "images": seen})
        print(f"{name} epoch {epoch + 1}/{epochs} loss {total / max(seen, 1):.5f} {time.perf_counter() - te:.1f} s", flush=True)
    return history


def train_stfpm(module, train: torch.Tensor, epochs: int, batch_size: int, seed: int, max_batches: int | None = None) -> list[dict]:
    return train_distill("stfpm", module, module.model.teacher_model, train, epochs, batch_size, seed, max_batches)


def stfpm_module(state: dict[str, torch.Tensor]):
    module = Stfpm(backbone="resnet18", layers=["layer1", "layer2", "layer3"], evaluator=False, visualizer=False, post_processor=False)
    loaded = load_backbone(module.model.teacher_model.feature_extractor, state, "STFPM teacher")
    return module, loaded


def timed_runs(call, batch: int, runs: int, warmup: int) -> dict:
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        call()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    med = float(np.percentile(times, 50))
    return {"batchSize": batch, "imagesPerSecond": batch * 1000 / med, "medianMsPerBatch": med, "p99MsPerBatch": float(np.percentile(times, 99)), "runs": runs}


def speed_task(task: str, cfg: dict, state: dict[str, torch.Tensor], out: str) -> None:
    """Speed-benchmark tasks of `ntsnet benchmark --speed` (STFPM only), one per process so that peak memory is its own.

    infer: anomalib's STFPM model in PyTorch (its torch model: normalised images -> anomaly map and score) and its own
    OpenVINO export (`to_openvino`, the module with its pre-processor; what `export_type=openvino` writes), per batch
    size: images/s, median and p99 milliseconds per batch. train / memory: the training loop on the given images.
    """
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(cfg["seed"])
    module, loaded = stfpm_module(state)
    rec = {"task": task, "tool": "anomalib", "model": "stfpm", "anomalibVersion": anomalib.__version__, "torchVersion": torch.__version__,
           "torchThreads": torch.get_num_threads(), "backboneTensorsLoaded": loaded}
    if task == "infer":
        size, warmup = cfg["imageSize"], cfg["warmup"]
        net = module.model.eval()
        gen = torch.Generator().manual_seed(7)
        rows = []
        with torch.no_grad():
            for b, runs in zip(cfg["batches"], cfg["runs"]):
                x = torch.randn(b, 3, size, size, generator=gen)
                def call():
                    r = net(x)
                    _ = r.anomaly_map.numpy(), r.pred_score.numpy()
                rows.append({"engine": "anomalib STFPM PyTorch", **timed_runs(call, b, runs, warmup)})
                print(f"pytorch batch {b}: {rows[-1]['imagesPerSecond']:.2f} images/s", flush=True)
        import openvino as ov

        module.eval()
        xml = module.to_openvino(export_root=os.path.join(out, "openvino"), input_size=(size, size))
        core = ov.Core()
        compiled = core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        for b, runs in zip(cfg["batches"], cfg["runs"]):
            x = torch.rand(b, 3, size, size, generator=gen).numpy()
            req = compiled.create_infer_request()
            rows.append({"engine": "anomalib STFPM OpenVINO", **timed_runs(lambda: req.infer({0: x}), b, runs, warmup)})
            print(f"openvino batch {b}: {rows[-1]['imagesPerSecond']:.2f} images/s", flush=True)
        rec.update({"rows": rows, "openvinoVersion": ov.__version__, "openvinoConfig": {"PERFORMANCE_HINT": "LATENCY"},
                    "openvinoThreads": int(compiled.get_property("INFERENCE_NUM_THREADS")), "openvinoModel": os.path.relpath(str(xml), out)})
    else:
        transform = Stfpm.configure_pre_processor(image_size=(cfg["imageSize"], cfg["imageSize"])).transform
        train = load_images(cfg["train"], transform)
        history = train_stfpm(module, train, cfg["epochs"], cfg["batchSize"], cfg["seed"], cfg.get("maxBatches"))
        rec.update({"imageSize": cfg["imageSize"], "batchSize": cfg["batchSize"], "trainImages": len(cfg["train"]), "history": history,
                    "trainSecondsPerEpoch": float(np.median([h["seconds"] for h in history]))})
    rec["peakRssMiB"] = peak_rss_mib()
    json.dump(rec, open(os.path.join(out, f"speed-{task}.json"), "w"), indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["stfpm", "patchcore", "rd"], required=True)
    ap.add_argument("--input", required=True, help="peer-input.json written by ntsnet benchmark")
    ap.add_argument("--weights", required=True, help="ResNet18 weights (.pth / .safetensors, torchvision names)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--task", choices=["accuracy", "infer", "train", "memory"], default="accuracy",
                    help="accuracy: train + test (the default); infer / train / memory: speed-benchmark tasks (STFPM)")
    a = ap.parse_args()
    cfg = json.load(open(a.input))
    if a.task != "accuracy":
        if a.model != "stfpm":
            sys.exit("the speed tasks run STFPM only")
        speed_task(a.task, cfg, load_state(a.weights), a.out)
        return
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    size = cfg["imageSize"]
    state = load_state(a.weights)
    t_start = time.perf_counter()

    if a.model == "stfpm":
        module, loaded = stfpm_module(state)
    elif a.model == "rd":
        # anomalib's ResNet18 decoder and one-class bottleneck (Deng et al. 2022) on the shared trunk as encoder.
        module = ReverseDistillation(
            backbone="resnet18", layers=["layer1", "layer2", "layer3"], pre_trained=True,
            pre_processor=ReverseDistillation.configure_pre_processor(image_size=(size, size)),
            evaluator=False, visualizer=False, post_processor=False,
        )
        loaded = load_backbone(module.model.encoder.feature_extractor, state, "Reverse Distillation encoder")
    else:
        module = Patchcore(
            backbone="resnet18", layers=["layer2", "layer3"], pre_trained=True, coreset_sampling_ratio=cfg["coresetRatio"],
            num_neighbors=9, evaluator=False, visualizer=False, post_processor=False,
        )
        loaded = load_backbone(module.model.feature_extractor.feature_extractor, state, "PatchCore backbone")
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    if a.model == "stfpm":
        parameters = {"student": count(module.model.student_model), "teacher": count(module.model.teacher_model)}
    elif a.model == "rd":
        parameters = {"student": count(module.model.bottleneck) + count(module.model.decoder), "teacher": count(module.model.encoder)}
    else:
        parameters = {"student": 0, "teacher": count(module.model.feature_extractor)}
    transform = type(module).configure_pre_processor(image_size=(size, size)).transform
    net = module.model

    t0 = time.perf_counter()
    train = load_images(cfg["train"], transform)
    history = []
    memory_bank = None
    if a.model == "stfpm":
        history = train_stfpm(module, train, cfg["epochs"], cfg["batchSize"], cfg["seed"])
    elif a.model == "rd":
        history = train_distill("rd", module, module.model.encoder, train, cfg["epochs"], cfg["batchSize"], cfg["seed"])
    else:
        te = time.perf_counter()
        net.train()
        with torch.no_grad():
            for i in range(0, len(train), cfg["batchSize"]):
                net(train[i : i + cfg["batchSize"]])
        module.fit()
        history.append({"epoch": 1, "trainLoss": None, "seconds": time.perf_counter() - te})
        memory_bank = list(net.memory_bank.shape)
        print(f"patchcore memory bank {tuple(net.memory_bank.shape)} in {time.perf_counter() - te:.1f} s", flush=True)
    fit_seconds = time.perf_counter() - t0
    del train

    net.eval()
    tt = time.perf_counter()
    test = load_images([t["path"] for t in cfg["test"]], transform)
    scores, maps = [], []
    ts = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(test), cfg["evalBatchSize"]):
            r = net(test[i : i + cfg["evalBatchSize"]])
            scores.append(r.pred_score.reshape(-1).float().numpy())
            maps.append(r.anomaly_map.reshape(-1, size, size).float().numpy())
    score_seconds = time.perf_counter() - ts
    test_seconds = time.perf_counter() - tt
    os.makedirs(a.out, exist_ok=True)
    np.concatenate(scores).astype("<f4").tofile(os.path.join(a.out, "scores.f32"))
    np.concatenate(maps).astype("<f4").tofile(os.path.join(a.out, "maps.f32"))
    peak_train_test = peak_rss_mib()

    sp = cfg["speed"]
    speed = []
    if sp:
        if a.model == "patchcore":
            # Nearest-neighbour search cost grows with the memory bank: time it with a bank of the size a training at
            # the speed size would give ((speed size / size)^2 more patches), filled from the real bank.
            bank = net.memory_bank
            n = int(bank.shape[0] * (sp["imageSize"] / size) ** 2)
            net.memory_bank = bank[torch.arange(n) % bank.shape[0]] + 1e-3 * torch.randn(n, bank.shape[1], generator=torch.Generator().manual_seed(1))
        speed = time_inference(net, sp["imageSize"], sp["batches"], sp["runs"])
        for s in speed:
            print(f"{a.model} {sp['imageSize']} px batch {s['batchSize']}: {s['imagesPerSecond']:.2f} images/s", flush=True)

    json.dump({
        "model": a.model, "tool": "anomalib", "anomalibVersion": anomalib.__version__, "torchVersion": torch.__version__,
        "timmVersion": timm.__version__, "python": platform.python_version(), "torchThreads": torch.get_num_threads(),
        "backboneTensorsLoaded": loaded, "parameters": parameters, "memoryBank": memory_bank, "weightsFile": os.path.basename(a.weights),
        "settings": {
            "imageSize": size, "epochs": 1 if a.model == "patchcore" else cfg["epochs"], "batchSize": cfg["batchSize"],
            "optimizer": None if a.model == "patchcore" else repr(module.configure_optimizers()),
            "layers": ["layer2", "layer3"] if a.model == "patchcore" else ["layer1", "layer2", "layer3"],
            "coresetRatio": cfg["coresetRatio"] if a.model == "patchcore" else None,
        },
        "fitSeconds": fit_seconds, "history": history, "testSeconds": test_seconds,
        "testImagesPerSecond": len(cfg["test"]) / score_seconds, "peakRssMiB": peak_train_test,
        "speed": speed, "wallSeconds": time.perf_counter() - t_start,
    }, open(os.path.join(a.out, "peer.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
