// Parameter initialisers, named and defined as in torch.nn.init, so that a kiln
// layer starts from the same distribution as its PyTorch twin.
//   fan_in of a conv weight (K, C/groups, R, S) is C/groups * R * S; of a linear weight (out, in), in.
#pragma once
#include "engine/core/rng.h"
#include "engine/tensor/tensor.h"

namespace kiln::nn::init {

int64_t fan_in(const Shape& weight_shape);
int64_t fan_out(const Shape& weight_shape);
// U(-bound, bound) with bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).
// PyTorch's Conv2d and Linear use a = sqrt(5), which gives bound = 1 / sqrt(fan_in).
Tensor kaiming_uniform(const Shape& shape, double a, Rng& rng);
// N(0, std^2) with std = sqrt(2 / fan) (fan_out mode, as torchvision's ResNet uses).
Tensor kaiming_normal_fan_out(const Shape& shape, Rng& rng);
// PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor default_bias(int64_t size, int64_t fan_in, Rng& rng);

// The seed stream for layers built without an explicit Rng: a process-wide
// counter, set with manual_seed() for reproducible model construction.
Rng& default_rng();
void manual_seed(uint64_t seed);

}  // namespace kiln::nn::init
