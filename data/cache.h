// One entry point for training: a pack, a folder or a CSV, with folders and CSVs
// packed on the fly into a cache so that only the first run decodes images.
//
//   load_dataset("data.kpack", ...)          opens the pack (mmap, no copy)
//   load_dataset("photos/", config, "")      decodes the folder every time
//   load_dataset("photos/", config, ".cache") packs the folder once into
//       .cache/<key>.kpack and opens that on every later run
//
// The key is a 64-bit FNV-1a hash of the absolute path, size, fit, channels, skip_bad,
// the CSV options (columns, image root, --multi-label)
// and, for every listed file, its name, byte size and modification time: editing,
// adding or removing an image makes a new key, so a stale cache is never read. Old
// entries are not deleted (remove the folder to reclaim the space).
#pragma once
#include <string>

#include "data/image_folder.h"

namespace kiln::data {

// The cache file load_dataset would use for `path` (a folder or CSV) under cache_dir.
std::string cache_path_for(const std::string& path, const LoadConfig& config, const std::string& cache_dir);

Dataset load_dataset(const std::string& path, const LoadConfig& config, const std::string& cache_dir = "");

}  // namespace kiln::data
