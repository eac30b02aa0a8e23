#!/usr/bin/env python3
"""Runs files written by `kiln export-onnx` in onnxruntime and compares with kiln.

    kiln export-onnx CHECKPOINT -o model.onnx --sample sample.safetensors
    python3 scripts/onnxruntime_check.py model.onnx sample.safetensors [MODEL2 SAMPLE2 ...]

For each pair, the sample's "input" batch runs through onnxruntime on every
execution provider it offers here (CPU, and CUDA where onnxruntime-gpu and a GPU
are present), once as the whole batch and once image by image (the batch
dimension "N" is symbolic, so both must work), and the outputs are compared with
kiln's "logits" from the same file. Needs numpy and onnxruntime, nothing else;
exits 2 with a clear message where onnxruntime cannot be imported, 1 on a
mismatch, 0 when every file matches. The independent check that runs in ctest
without onnxruntime is tests/fixtures/onnx_eval_with_torch.py.
"""
import json
import struct
import sys

try:
    import numpy as np
except ImportError as error:
    print(f"onnxruntime-check: {sys.executable} cannot import numpy: {error}")
    sys.exit(2)
try:
    import onnxruntime
except ImportError as error:
    print(f"onnxruntime-check: {sys.executable} cannot import onnxruntime ({error}); "
          f"install it with `{sys.executable} -m pip install onnxruntime` (or onnxruntime-gpu)")
    sys.exit(2)

TOLERANCE = {"CPUExecutionProvider": 1e-5, "CUDAExecutionProvider": 1e-3}  # relative L2; GPU convs use TF32 or other algorithms


def load_safetensors(path):
    """The safetensors format by hand: u64 header length, JSON header, raw bytes."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        raw = data[8 + header_len + begin: 8 + header_len + end]
        tensors[name] = np.frombuffer(raw, dtype=np.float32).reshape(info["shape"])
    return tensors


def relative_l2(got, want):
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-12))


def check(onnx_path, sample_path):
    sample = load_safetensors(sample_path)
    x, want = sample["input"], sample["logits"].astype(np.float64)
    failures = 0
    for provider in onnxruntime.get_available_providers():
        if provider not in TOLERANCE:
            continue
        session = onnxruntime.InferenceSession(onnx_path, providers=[provider])
        name = session.get_inputs()[0].name
        whole = session.run(None, {name: x})[0]
        one_by_one = np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(x.shape[0])])
        errors = (relative_l2(whole, want), relative_l2(one_by_one, want))
        ok = whole.shape == want.shape and max(errors) <= TOLERANCE[provider]
        print(f"onnxruntime-check: {'OK' if ok else 'FAILED'} {onnx_path} on {provider} "
              f"(onnxruntime {onnxruntime.__version__}): batch of {x.shape[0]} relative L2 error {errors[0]:.2e}, "
              f"one image at a time {errors[1]:.2e} (tolerance {TOLERANCE[provider]:.0e})")
        failures += not ok
    return failures


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__)
        return 2
    failures = sum(check(m, s) for m, s in zip(argv[0::2], argv[1::2]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
