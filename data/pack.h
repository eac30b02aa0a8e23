// kpack: a dataset decoded once and stored as raw pixels in one memory-mappable file,
// so that an epoch reads memory instead of decoding JPEGs.
//
//   offset 0     PackHeader, 128 bytes, little-endian (below)
//   metadata     JSON: {"class_names": [...], "file_names": [...], "source": "...",
//                       "skipped": 0}
//   pixels       u8  (N, C, H, W) row-major, starts on a 64-byte boundary
//   labels       i64 (N), 64-byte aligned
//   targets      f32 (N, K) multi-hot, 64-byte aligned; absent (0 bytes) unless multi-label
//
// The header records every block's offset and size, so a reader checks them against
// the file size before it touches a byte. open_pack maps the file (copy-on-write
// private mapping) and returns a Dataset whose images, labels and targets *view* the
// mapping: opening a 10 GB pack costs no copy and no read; the OS pages pixels in when
// a batch touches them and can drop them again under memory pressure. The mapping
// lives as long as any tensor viewing it.
#pragma once
#include <string>

#include "data/dataset.h"

namespace kiln::data {

constexpr uint32_t kPackVersion = 1;

// Writes atomically (weights/atomic_file.h): a failed or interrupted pack leaves no
// file behind. The dataset must be on the CPU.
void write_pack(const std::string& path, const Dataset& dataset);

// Throws kiln::Error naming the file: not a kpack, another version, truncated.
Dataset open_pack(const std::string& path);

}  // namespace kiln::data
