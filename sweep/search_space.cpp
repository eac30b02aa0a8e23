#include "sweep/search_space.h"

#include <cmath>
#include <numeric>

#include "engine/core/check.h"
#include "engine/core/rng.h"

namespace kiln::sweep {

Stream::Stream(uint64_t sweep_seed, int64_t trial, uint64_t purpose)
    : key_(splitmix64(splitmix64(sweep_seed) ^ splitmix64(static_cast<uint64_t>(trial) * 0x100 + purpose))) {}

double Stream::uniform() {
  const uint64_t bits = splitmix64(key_ ^ splitmix64(counter_++));
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // 53 bits / 2^53
}

double Stream::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log(u1) is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

int64_t Stream::below(int64_t n) {
  KILN_CHECK(n > 0, "Stream::below: n must be positive, got ", n);
  return std::min<int64_t>(n - 1, static_cast<int64_t>(uniform() * static_cast<double>(n)));
}

nlohmann::json finish_value(const Parameter& p, double x) {
  if (p.kind == ParameterKind::integer) {
    const double r = std::round(x);
    return static_cast<int64_t>(std::min(std::max(r, p.min), p.max));
  }
  if (p.q > 0) {
    const double quantized = std::round(x / p.q) * p.q;
    // A whole-number quantum gives whole numbers: --dense 64, not 64.0.
    if (p.q == std::floor(p.q) && std::fabs(quantized) <= 9007199254740992.0) return static_cast<int64_t>(quantized);
    return quantized;
  }
  return x;
}

nlohmann::json sample_value(const Parameter& p, Stream& stream) {
  switch (p.kind) {
    case ParameterKind::constant: return p.values[0];
    case ParameterKind::categorical: return p.values[static_cast<size_t>(stream.below(static_cast<int64_t>(p.values.size())))];
    case ParameterKind::integer:
      return static_cast<int64_t>(p.min) + stream.below(static_cast<int64_t>(p.max - p.min) + 1);
    case ParameterKind::continuous: break;
  }
  if (p.distribution == "log_uniform") return finish_value(p, std::exp(stream.uniform(p.min, p.max)));
  if (p.log_scale()) return finish_value(p, std::exp(stream.uniform(std::log(p.min), std::log(p.max))));
  return finish_value(p, stream.uniform(p.min, p.max));
}

nlohmann::json sample_parameters(const std::vector<Parameter>& parameters, Stream& stream) {
  nlohmann::json out = nlohmann::json::object();
  for (const Parameter& p : parameters) out[p.name] = sample_value(p, stream);
  return out;
}

size_t grid_size(const std::vector<Parameter>& parameters, size_t limit) {
  size_t total = 1;
  for (const Parameter& p : parameters) {
    KILN_CHECK(p.kind == ParameterKind::categorical || p.kind == ParameterKind::constant, "grid: parameter ", p.name,
               " is ", p.distribution, ", which has no grid points");
    total *= p.values.size();
    KILN_CHECK(total <= limit, "grid: more than ", limit, " points; sample it with --max-runs or run_cap");
  }
  return total;
}

nlohmann::json grid_point(const std::vector<Parameter>& parameters, size_t index) {
  nlohmann::json point = nlohmann::json::object();
  for (size_t i = parameters.size(); i-- > 0;) {  // the last parameter varies fastest
    const Parameter& p = parameters[i];
    point[p.name] = p.values[index % p.values.size()];
    index /= p.values.size();
  }
  return point;
}

std::vector<nlohmann::json> grid_points(const std::vector<Parameter>& parameters, size_t limit) {
  std::vector<nlohmann::json> points;
  const size_t total = grid_size(parameters, limit);
  points.reserve(total);
  for (size_t index = 0; index < total; ++index) points.push_back(grid_point(parameters, index));
  return points;
}

std::vector<size_t> choose_without_replacement(size_t n, size_t k, uint64_t seed) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (k >= n) return order;
  // The first k steps of a seeded Fisher-Yates shuffle.
  Stream stream(seed, 0, kGridOrder);
  for (size_t i = 0; i < k; ++i) std::swap(order[i], order[i + static_cast<size_t>(stream.below(static_cast<int64_t>(n - i)))]);
  order.resize(k);
  return order;
}

}  // namespace kiln::sweep
