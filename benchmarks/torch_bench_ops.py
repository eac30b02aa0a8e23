#!/usr/bin/env python3
"""PyTorch twin of `kiln bench ops`: forward + backward of each distinct ResNet-18
convolution, same batch, size, dtype and layout, cudnn.benchmark on, median of the
timed iterations (synchronised host clock, as kiln does). Prints one JSON object
per shape, with the same names as kiln's output.

    python3 benchmarks/torch_bench_ops.py --batch 256 --size 224 --dtype bf16 --layout nhwc
"""
import argparse
import json
import statistics
import time

import torch

CONVS = [  # name, in, out, kernel, stride, padding, input size at 224 px
    ("conv1 7x7/2", 3, 64, 7, 2, 3, 224), ("layer1 3x3", 64, 64, 3, 1, 1, 56),
    ("layer2.0 3x3/2", 64, 128, 3, 2, 1, 56), ("layer2 3x3", 128, 128, 3, 1, 1, 28),
    ("layer2.ds 1x1/2", 64, 128, 1, 2, 0, 56), ("layer3.0 3x3/2", 128, 256, 3, 2, 1, 28),
    ("layer3 3x3", 256, 256, 3, 1, 1, 14), ("layer3.ds 1x1/2", 128, 256, 1, 2, 0, 28),
    ("layer4.0 3x3/2", 256, 512, 3, 2, 1, 14), ("layer4 3x3", 512, 512, 3, 1, 1, 7),
    ("layer4.ds 1x1/2", 256, 512, 1, 2, 0, 14),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--dtype", default="bf16", choices=["f32", "bf16", "f16"])
    p.add_argument("--layout", default="nhwc", choices=["nhwc", "nchw"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10)
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False  # kiln's f32 is true f32 unless asked otherwise
    torch.backends.cuda.matmul.allow_tf32 = False
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    fmt = torch.channels_last if a.layout == "nhwc" else torch.contiguous_format
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    for name, cin, cout, k, s, pad, size in CONVS:
        h = max(1, size * a.size // 224)
        x = torch.randn(a.batch, cin, h, h, device=a.device, dtype=dtype).to(memory_format=fmt).requires_grad_()
        w = torch.randn(cout, cin, k, k, device=a.device, dtype=dtype).to(memory_format=fmt).requires_grad_()
        grad, times = None, []
        for i in range(a.warmup + a.iterations):
            sync()
            start = time.perf_counter()
            y = torch.nn.functional.conv2d(x, w, None, s, pad)
            if grad is None:
                grad = torch.randn_like(y)
            y.backward(grad)
            sync()
            if i >= a.warmup:
                times.append((time.perf_counter() - start) * 1e3)
            x.grad = None
            w.grad = None
        ho = (h + 2 * pad - k) // s + 1
        flops = 3 * 2 * a.batch * cout * cin * k * k * ho * ho
        ms = statistics.median(times)
        print(json.dumps({"conv": name, "ms": round(ms, 4), "tflops": round(flops / ms / 1e9, 3)}))


if __name__ == "__main__":
    main()
