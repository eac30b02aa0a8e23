// Samplers that change the mix of classes an epoch shows, not its length
// (`kiln train --sampler balanced`). An epoch still has N draws; rare classes are
// drawn more often and common ones less.
//
// Single-label: inverse class frequency (PyTorch's WeightedRandomSampler with weight
//   1 / n_c for an image of class c): N draws with replacement, each class expected
//   N / K times, an image of class c with probability 1 / (K n_c).
// Multi-label: repeat-factor sampling (Gupta, Dollar and Girshick, LVIS, CVPR 2019):
//   f_c = the fraction of images carrying class c,
//   r_c = max(1, sqrt(t / f_c)),  an image's r_i = max over its labels (1 for none).
//   An epoch repeats image i floor(r_i) times plus once more with probability
//   r_i - floor(r_i) (stochastic rounding), shuffles the repeated list and keeps its
//   first N entries, so the expected share of image i is r_i / sum_j r_j.
//   t: LVIS uses 0.001 on 1,200 classes; kiln's default is the most frequent class's
//   f (so that class and all about as frequent keep r = 1, and a class ten times
//   rarer is repeated sqrt(10) ~ 3.2 times). --repeat-threshold sets t.
//
// The order is a pure function of (dataset, config, seed, epoch), drawn from a
// counter-based stream (engine/core/rng.h): worker threads only copy the rows, and a
// resumed run replays the same epochs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace kiln::data {

enum class SamplerKind { none, balanced };
SamplerKind parse_sampler(const std::string& name);  // "none" or "balanced"; throws naming --sampler
const char* sampler_name(SamplerKind kind);

struct SamplerConfig {
  SamplerKind kind = SamplerKind::none;
  double repeat_threshold = 0;  // t of repeat-factor sampling; 0: the most frequent class's frequency
};

// Multi-label: r_i of every image (throws for a data set without targets).
std::vector<double> repeat_factors(const Dataset& dataset, double repeat_threshold);

// The N indices of one epoch under `config` (kind balanced), in the order to visit them.
std::vector<int64_t> balanced_epoch_order(const Dataset& dataset, const SamplerConfig& config, uint64_t seed,
                                          int64_t epoch);

}  // namespace kiln::data
