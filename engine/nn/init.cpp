#include "engine/nn/init.h"

#include <cmath>

#include "engine/tensor/factory.h"

namespace kiln::nn::init {

int64_t fan_in(const Shape& s) {
  int64_t receptive = 1;
  for (int d = 2; d < s.dim(); ++d) receptive *= s[d];
  return s.dim() >= 2 ? s[1] * receptive : s[0];
}

int64_t fan_out(const Shape& s) {
  int64_t receptive = 1;
  for (int d = 2; d < s.dim(); ++d) receptive *= s[d];
  return s[0] * receptive;
}

Tensor kaiming_uniform(const Shape& shape, double a, Rng& rng) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in(shape)));
  return uniform(shape, -bound, bound, rng);
}

Tensor kaiming_normal_fan_out(const Shape& shape, Rng& rng) {
  const double std_dev = std::sqrt(2.0 / static_cast<double>(fan_out(shape)));
  std::vector<double> values(static_cast<size_t>(shape.numel()));
  for (double& v : values) v = std_dev * rng.normal();
  return from_vector(values, shape);
}

Tensor default_bias(int64_t size, int64_t fan_in_value, Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in_value));
  return uniform(Shape{size}, -bound, bound, rng);
}

Rng& default_rng() {
  static Rng rng(0);
  return rng;
}

void manual_seed(uint64_t seed) { default_rng() = Rng(seed); }

}  // namespace kiln::nn::init
