#!/usr/bin/env python3
"""PyTorch twin of `kiln bench train|infer`: images/s of a whole model, timed the
same way (tools/model_bench.h): a random batch already on the device, `warmup`
untimed steps, then `iterations` steps timed one by one (CUDA events on a GPU, the
host clock on the CPU), images/s = batch / median step, peak memory = the caching
allocator's high-water mark over the timed steps.

PyTorch as people run it fast: eager mode, torch.backends.cudnn.benchmark = True,
channels-last for nhwc, torch.autocast for bf16/f16 (f32 master weights, GradScaler
for f16), TF32 only for --precision tf32, SGD with momentum.

    python3 benchmarks/torch_bench.py train --model resnet18 --batch 256 --size 224 --precision bf16
    python3 benchmarks/torch_bench.py infer --model cnn5 --batch 4 --size 64 --precision f32 --device cpu

Writes one JSON line with the same keys as kiln's to --json FILE, and a summary line
to stdout.
"""
import argparse
import contextlib
import json
import math
import statistics
import time

import torch
import torch.nn as nn


def cnn5(classes, size):
    """kiln's default cnn5 (models/cnn5.h): five conv3x3-BN-ReLU-maxpool blocks with
    32-64-128-256-512 filters, then flatten, dense 256, ReLU, dropout 0.2, linear."""
    layers, channels = [], 3
    for filters in (32, 64, 128, 256, 512):
        layers += [nn.Conv2d(channels, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        channels, size = filters, size // 2
    layers += [nn.Flatten(), nn.Linear(channels * size * size, 256), nn.ReLU(inplace=True), nn.Dropout(0.2),
               nn.Linear(256, classes)]
    return nn.Sequential(*layers)


def build(name, classes, size):
    if name == "cnn5":
        return cnn5(classes, size)
    import torchvision
    return getattr(torchvision.models, name)(num_classes=classes)


def grad_scaler():
    """torch.amp.GradScaler("cuda") on torch >= 2.3, torch.cuda.amp.GradScaler before."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


class StepTimer:
    """CUDA events on a GPU (read once at the end), perf_counter on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.intervals = []

    def start(self):
        if self.cuda:
            self.begin = torch.cuda.Event(enable_timing=True)
            self.begin.record()
        else:
            self.begin = time.perf_counter()

    def stop(self):
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.intervals.append((self.begin, end))
        else:
            self.intervals.append((time.perf_counter() - self.begin) * 1e3)

    def elapsed_ms(self):
        if not self.cuda:
            return list(self.intervals)
        torch.cuda.synchronize()
        return [begin.elapsed_time(end) for begin, end in self.intervals]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["train", "infer"])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--classes", type=int, default=0, help="0: 1000, cnn5 10")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--precision", default="bf16", choices=["f32", "tf32", "bf16", "f16"])
    p.add_argument("--layout", default="", choices=["", "nhwc", "nchw"], help="default: nhwc on a GPU, nchw on the cpu")
    p.add_argument("--device", default="auto")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--json", default="", help="write the result as a JSON line to FILE")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default), as kiln's --threads")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    layout = a.layout or ("nhwc" if device.type == "cuda" else "nchw")
    classes = a.classes or (10 if a.model == "cnn5" else 1000)
    torch.backends.cudnn.benchmark = True
    tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    low = {"bf16": torch.bfloat16, "f16": torch.float16}.get(a.precision)
    if low is torch.float16 and device.type != "cuda":
        p.error("--precision f16 needs a GPU (PyTorch has no f16 autocast on the cpu)")
    autocast = (lambda: torch.autocast(device.type, dtype=low)) if low else contextlib.nullcontext
    fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format

    torch.manual_seed(0)
    model = build(a.model, classes, a.size).to(device).to(memory_format=fmt)
    images = torch.randn(a.batch, 3, a.size, a.size, device=device).to(memory_format=fmt)
    labels = torch.randint(0, classes, (a.batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler() if low is torch.float16 and a.what == "train" else None
    train = a.what == "train"
    model.train(train)

    def step():
        if train:
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                logits = model(images)
            loss = nn.functional.cross_entropy(logits.float(), labels)  # loss in f32, as kiln
            if scaler:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        else:
            with torch.no_grad(), autocast():
                model(images)

    for _ in range(a.warmup):
        step()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer(device)
    for _ in range(a.iterations):
        timer.start()
        step()
        timer.stop()
    ms = statistics.median_high(timer.elapsed_ms())  # kiln's median: the upper middle value
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else None  # no allocator stats on the cpu
    skipped = None
    if scaler:  # fewer steps than the growth interval (2000): the scale only ever halved, once per skipped step
        skipped = round(math.log2(65536.0 / scaler.get_scale()))
    result = {"framework": "torch", "torch_version": torch.__version__, "mode": a.what, "model": a.model,
              "classes": classes, "batch": a.batch, "size": a.size, "precision": a.precision, "layout": layout,
              "device": str(device), "threads": torch.get_num_threads(), "warmup": a.warmup, "iterations": a.iterations, "median_ms": ms,
              "images_per_second": a.batch / (ms / 1e3), "peak_memory_mb": peak_mb,
              "skipped_steps": skipped}
    print(f"torch {torch.__version__} bench {a.what}: {a.model}, batch {a.batch}, {a.size} px, {a.precision}, "
          f"{layout} on {device}, {torch.get_num_threads()} CPU threads: {result['images_per_second']:.1f} images/s, median step {ms:.3f} ms"
          + (f", peak memory {peak_mb:.1f} MiB" if peak_mb is not None else ""))
    if a.json:
        with open(a.json, "w") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
