// Class statistics of a data set, shown before training and kept in the run folder
// (class_stats.json), so that imbalance is seen before it is trained on:
//
//   counts[k]           images carrying class k
//   cardinality         mean labels per image, sum_k counts[k] / N (1 for single-label;
//                       Tsoumakas and Katakis's "label cardinality")
//   density             cardinality / K
//   no_label_images     images with an empty label set (multi-label only)
//   cooccurrence[a][b]  images carrying both a and b; the diagonal is counts
//   imbalance_ratio     the largest count over the smallest non-zero one
//
// A single-label set is read from `labels`, a multi-label one from `targets`.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "data/dataset.h"

namespace kiln::data {

struct ClassStats {
  std::vector<std::string> class_names;
  bool multi_label = false;
  int64_t images = 0;
  std::vector<int64_t> counts;                     // (K)
  double cardinality = 0, density = 0;
  int64_t no_label_images = 0;
  std::vector<std::vector<int64_t>> cooccurrence;  // (K, K)
  double imbalance_ratio = 0;                      // 0 when no class has an image

  nlohmann::json to_json() const;
  // A table of the counts and shares, the summary numbers, and the co-occurrence
  // matrix (multi-label, up to 20 classes; more classes: the 10 most frequent pairs).
  std::string to_text() const;
};

ClassStats class_stats(const Dataset& dataset);

}  // namespace kiln::data
