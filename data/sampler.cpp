#include "data/sampler.h"

#include <algorithm>
#include <cmath>

#include "engine/core/check.h"
#include "engine/core/rng.h"

namespace kiln::data {

SamplerKind parse_sampler(const std::string& name) {
  if (name == "none") return SamplerKind::none;
  if (name == "balanced") return SamplerKind::balanced;
  KILN_FAIL("--sampler '", name, "': expected none or balanced");
}

const char* sampler_name(SamplerKind kind) { return kind == SamplerKind::balanced ? "balanced" : "none"; }

std::vector<double> repeat_factors(const Dataset& dataset, double repeat_threshold) {
  KILN_CHECK(dataset.targets.defined(), "repeat_factors: '", dataset.source, "' is not multi-label");
  KILN_CHECK(repeat_threshold >= 0 && repeat_threshold <= 1, "--repeat-threshold must be in [0, 1], got ",
             repeat_threshold);
  const int64_t n = dataset.size(), k_all = dataset.num_classes();
  const float* targets = dataset.targets.data<float>();
  std::vector<double> frequency(static_cast<size_t>(k_all), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < k_all; ++k) frequency[static_cast<size_t>(k)] += targets[i * k_all + k] > 0.5f;
  for (double& f : frequency) f /= static_cast<double>(std::max<int64_t>(n, 1));
  const double t = repeat_threshold > 0 ? repeat_threshold : *std::max_element(frequency.begin(), frequency.end());
  std::vector<double> class_factor(static_cast<size_t>(k_all), 1.0);
  for (size_t k = 0; k < class_factor.size(); ++k)
    if (frequency[k] > 0) class_factor[k] = std::max(1.0, std::sqrt(t / frequency[k]));
  std::vector<double> factors(static_cast<size_t>(n), 1.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < k_all; ++k)
      if (targets[i * k_all + k] > 0.5f)
        factors[static_cast<size_t>(i)] = std::max(factors[static_cast<size_t>(i)], class_factor[static_cast<size_t>(k)]);
  return factors;
}

std::vector<int64_t> balanced_epoch_order(const Dataset& dataset, const SamplerConfig& config, uint64_t seed,
                                          int64_t epoch) {
  const int64_t n = dataset.size();
  // A stream per (seed, epoch), apart from the plain shuffle's (data/loader.cpp).
  const uint64_t stream = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) + 0x5a3d1e));
  Rng rng(stream);
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(n));
  if (dataset.targets.defined()) {
    const std::vector<double> factors = repeat_factors(dataset, config.repeat_threshold);
    std::vector<int64_t> repeated;
    for (int64_t i = 0; i < n; ++i) {
      const double r = factors[static_cast<size_t>(i)];
      const double whole = std::floor(r);
      const int64_t copies = static_cast<int64_t>(whole) + (rng.uniform() < r - whole ? 1 : 0);
      repeated.insert(repeated.end(), static_cast<size_t>(copies), i);
    }
    for (size_t i = repeated.size(); i > 1; --i) std::swap(repeated[i - 1], repeated[rng.next_u64() % i]);
    order.assign(repeated.begin(), repeated.begin() + n);  // r_i >= 1: at least N entries
    return order;
  }
  // Single-label: weight 1 / n_c, drawn with replacement through the cumulative sum.
  const int64_t k_all = dataset.num_classes();
  const int64_t* labels = dataset.labels.data<int64_t>();
  std::vector<int64_t> count(static_cast<size_t>(k_all), 0);
  for (int64_t i = 0; i < n; ++i) {
    KILN_CHECK(labels[i] >= 0 && labels[i] < k_all, "--sampler balanced: '", dataset.source, "' row ", i,
               " has no class (label ", labels[i], ")");
    ++count[static_cast<size_t>(labels[i])];
  }
  std::vector<double> cumulative(static_cast<size_t>(n));
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    total += 1.0 / static_cast<double>(count[static_cast<size_t>(labels[i])]);
    cumulative[static_cast<size_t>(i)] = total;
  }
  for (int64_t draw = 0; draw < n; ++draw) {
    // 53 random bits: uniform() has 24, too coarse to reach every image of a large set.
    const double u = static_cast<double>(rng.next_u64() >> 11) * (1.0 / 9007199254740992.0) * total;
    const auto at = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    order.push_back(std::min<int64_t>(at - cumulative.begin(), n - 1));
  }
  return order;
}

}  // namespace kiln::data
