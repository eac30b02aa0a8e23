#!/usr/bin/env python3
"""How far the two sources of a progressive run's small images are apart.

  /usr/bin/python3 scripts/pack_sizes_vs_on_the_fly.py SET.kpacks

A multi-size pack (`kiln pack DATA -o SET.kpacks --size 32,48,64`) fits every size
from the decoded original with stb's triangle filter (antialiased when shrinking,
like PIL's BILINEAR) and stores u8. Without it, a progressive run loads the largest
size and its training transform samples it bilinearly at the epoch's size, without
antialiasing and without rounding (engine/augment/pixel.h: pixel centres at +0.5,
edge pixels repeated), which is torch's interpolate(mode="bilinear",
align_corners=False, antialias=False). For every size but the largest this prints
the mean and the largest absolute difference between the member and that on-the-fly
resize of the largest member, in u8 units (0-255), over all images and channels.
Nothing here is a test: it measures what docs/capped-benchmark.md reports.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_pack(path):
    """The (N, C, H, W) u8 pixels of a .kpack (data/pack.h's header)."""
    with open(path, "rb") as f:
        header = f.read(128)
        assert header[:5] == b"KPACK", path + " is not a kpack"
        count, channels, height, width, _classes = struct.unpack_from("<5q", header, 16)
        _meta_offset, _meta_bytes, pixels_offset, pixels_bytes = struct.unpack_from("<4Q", header, 56)
        f.seek(pixels_offset)
        pixels = np.frombuffer(f.read(pixels_bytes), dtype=np.uint8)
    return pixels.reshape(count, channels, height, width)


def main():
    index_path = sys.argv[1]
    with open(index_path) as f:
        index = json.load(f)
    folder = os.path.dirname(index_path)
    members = {size: read_pack(os.path.join(folder, name)) for size, name in zip(index["sizes"], index["members"])}
    largest = max(members)
    source = torch.from_numpy(members[largest].astype(np.float32))
    print(f"{index_path}: {source.shape[0]} images, on-the-fly source {largest} px")
    for size in sorted(members):
        if size == largest:
            continue
        on_the_fly = F.interpolate(source, size=(size, size), mode="bilinear", align_corners=False)
        difference = (torch.from_numpy(members[size].astype(np.float32)) - on_the_fly).abs()
        print(f"  {size} px: mean |pack - on the fly| {difference.mean().item():.2f}, "
              f"largest {difference.max().item():.1f} (u8 units)")


if __name__ == "__main__":
    main()
