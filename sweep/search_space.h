// Drawing trial parameters from a sweep's search space, and the grid.
//
// A trial's parameters are a JSON object {"lr": 0.0123, "activation": "gelu", ...},
// one entry per parameter (constants included), as the journal stores them.
// Every draw comes from a counter-based stream seeded by (sweep seed, trial id,
// purpose), so trial k gets the same parameters however many trials ran before it,
// whether the sweep was interrupted or not (kiln sweep --resume relies on this).
//
// The distributions, as the hosted tools define them (U = uniform):
//   uniform               x ~ U(min, max)
//   int_uniform           x ~ the integers min..max, each equally likely
//   q_uniform             x = round(U(min, max) / q) * q
//   log_uniform           x = exp(U(min, max))            (min, max: natural-log exponents)
//   log_uniform_values    x = exp(U(ln min, ln max))      (min, max: values)
//   q_log_uniform_values  x = round(exp(U(ln min, ln max)) / q) * q
//   categorical           one of values, each equally likely
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "sweep/config.h"

namespace kiln::sweep {

// A stream of doubles in [0, 1) with 53 random bits.
class Stream {
 public:
  Stream(uint64_t sweep_seed, int64_t trial, uint64_t purpose);
  double uniform();                       // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal();                        // N(0, 1), Box-Muller
  int64_t below(int64_t n);               // an integer in [0, n)

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

// Purposes, so that the draws of different uses never overlap.
constexpr uint64_t kRandomDraw = 1, kTpeDraw = 2, kGridOrder = 3;

nlohmann::json sample_value(const Parameter& p, Stream& stream);
// One draw of every parameter (constants as they are).
nlohmann::json sample_parameters(const std::vector<Parameter>& parameters, Stream& stream);
// Quantize / round a continuous draw as the distribution says (x in value units).
nlohmann::json finish_value(const Parameter& p, double x);

// The cartesian product of the values: lists, the first parameter varying slowest.
// grid_size throws when it would hold more than `limit` points; grid_point(i) is the
// i-th point without building the others.
size_t grid_size(const std::vector<Parameter>& parameters, size_t limit = 1000000);
nlohmann::json grid_point(const std::vector<Parameter>& parameters, size_t index);
std::vector<nlohmann::json> grid_points(const std::vector<Parameter>& parameters, size_t limit = 1000000);
// k of the indices 0..n-1 without replacement, in a seeded random order (all n when k >= n).
std::vector<size_t> choose_without_replacement(size_t n, size_t k, uint64_t seed);

}  // namespace kiln::sweep
