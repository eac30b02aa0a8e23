// The data flags shared by `kiln train`, `kiln eval` and `kiln compare`, and the
// step that turns them into train / validation / test sets:
//   DATA               a class-per-folder tree, a CSV of image,label rows, a .kpack,
//                      a .kpacks set (--size picks its member, default the largest),
//                      or "fashion-mnist" (Debian's dataset-fashion-mnist, the default)
//   --size --fit       every image fitted to size x size (crop or pad); folders are
//                      packed once into --cache-dir and read from the pack after that
//   --split 300/75/75  per-class counts; or --val 0.2 --test 0.1 ratios; or
//   --split-file F     a split.json saved by an earlier run (same files, same roles)
//   --test-data DIR    a separate test folder (then no test part is split off DATA)
//   --multi-label      read a CSV as multi-label (automatic when a cell holds several labels)
//   --image-column --labels-column --image-root   where a CSV's images and labels are
// and, for `kiln train` only (add_sampler_options):
//   --sampler balanced [--repeat-threshold T]     data/sampler.h
//   --val official     a Tiny-ImageNet folder's own val/ images are the held-out set
//                      (never trained on); its train/ images are split into train/test
//   --classes N|LIST   only the first N classes (or the named ones), relabelled 0..N-1
#pragma once
#include <CLI/CLI.hpp>

#include <string>

#include "data/dataset.h"
#include "data/image_folder.h"
#include "data/pack_set.h"
#include "data/sampler.h"
#include "data/split.h"

namespace kiln::tools {

struct DataOptions {
  std::string data = "fashion-mnist";
  std::string test_data;
  int64_t size = 0;  // 0: the data set's own size (32 for Fashion-MNIST, padded from 28)
  std::string fit = "crop";
  int64_t channels = 3;
  bool skip_bad = false;
  data::CsvOptions csv;  // --image-column, --labels-column, --image-root, --multi-label
  std::string cache_dir = ".cache/kiln";
  std::string split;  // "300/75/75"
  double val = 0.2, test = 0.1;
  bool official_val = false;  // --val official
  std::string classes;        // --classes: "" (all), "10", or "n01443537,n01629819"
  std::string split_file;
  uint64_t seed = 0;
  std::string sampler = "none";  // --sampler (training only)
  double repeat_threshold = 0;   // --repeat-threshold
};

void add_data_options(CLI::App* app, DataOptions& options);
void add_sampler_options(CLI::App* app, DataOptions& options);
data::SamplerConfig sampler_config(const DataOptions& options);  // throws for an unknown --sampler

struct PreparedData {
  data::Dataset train, val, test;  // at --size (a pack set: that member, or the largest)
  data::Split split;
  // A pack set (.kpacks) and pack_sizes: the train and val sets at each of those sizes,
  // holding the same images as train and val (a progressive run's sizes).
  std::vector<data::SizedSplit> sizes;
};

// Loads, fits and splits; writes split.json and class_stats.json (data/class_stats.h:
// train, val and test) into `run_dir` when it is not empty, and prints the training
// split's class statistics for a multi-label set.
// Throws for a data set without labels (a prediction CSV): it cannot be trained on.
// pack_sizes (a pack set only): also read the train and val sets at these sizes.
PreparedData prepare_data(const DataOptions& options, const std::string& run_dir,
                          const std::vector<int64_t>& pack_sizes = {});

// The whole data set named by options.data (no split): for eval and predict.
data::Dataset load_data(const DataOptions& options, const std::string& path);

}  // namespace kiln::tools
