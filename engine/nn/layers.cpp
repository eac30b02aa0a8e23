#include "engine/nn/layers.h"

#include <cmath>

#include "engine/nn/init.h"
#include "engine/ops/dropout.h"
#include "engine/ops/linear.h"
#include "engine/ops/norm.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/factory.h"

namespace kiln::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, std::array<int, 2> kernel, Conv2dParams p, bool with_bias)
    : params(p) {
  KILN_CHECK(params.groups > 0 && in_channels % params.groups == 0 && out_channels % params.groups == 0,
             "Conv2d: in_channels ", in_channels, " and out_channels ", out_channels, " must be divisible by groups ",
             params.groups);
  const Shape shape{out_channels, in_channels / params.groups, kernel[0], kernel[1]};
  Rng& rng = init::default_rng();
  register_parameter("weight", &weight, init::kaiming_uniform(shape, std::sqrt(5.0), rng));
  if (with_bias) register_parameter("bias", &bias, init::default_bias(out_channels, init::fan_in(shape), rng));
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int padding, int groups,
               bool with_bias)
    : Conv2d(in_channels, out_channels, {kernel, kernel},
             Conv2dParams{{stride, stride}, {padding, padding}, {1, 1}, groups}, with_bias) {}

Tensor Conv2d::forward_impl(const Tensor& x) { return conv2d(x, weight, bias, params); }

std::string Conv2d::extra_repr() const {
  return str(weight.shape()[1] * params.groups, ", ", weight.shape()[0], ", kernel=(", weight.shape()[2], ", ",
             weight.shape()[3], "), ", params.to_string(), bias.defined() ? "" : ", bias=false");
}

SeparableConv2d::SeparableConv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int padding,
                                 bool with_bias) {
  depthwise = register_module("depthwise", std::make_shared<Conv2d>(in_channels, in_channels, kernel, stride, padding,
                                                                    static_cast<int>(in_channels), false));
  pointwise = register_module("pointwise", std::make_shared<Conv2d>(in_channels, out_channels, 1, 1, 0, 1, with_bias));
}

Tensor SeparableConv2d::forward_impl(const Tensor& x) { return pointwise->forward(depthwise->forward(x)); }

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias) {
  const Shape shape{out_features, in_features};
  Rng& rng = init::default_rng();
  register_parameter("weight", &weight, init::kaiming_uniform(shape, std::sqrt(5.0), rng));
  if (with_bias) register_parameter("bias", &bias, init::default_bias(out_features, in_features, rng));
}

Tensor Linear::forward_impl(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::extra_repr() const {
  return str("in=", weight.shape()[1], ", out=", weight.shape()[0], bias.defined() ? "" : ", bias=false");
}

BatchNorm::BatchNorm(int64_t channels, double momentum_value, double eps_value, bool affine)
    : momentum(momentum_value), eps(eps_value) {
  if (affine) {
    register_parameter("weight", &weight, ones({channels}));
    register_parameter("bias", &bias, zeros({channels}));
  }
  register_buffer("running_mean", &running_mean, zeros({channels}));
  register_buffer("running_var", &running_var, ones({channels}));
}

Tensor BatchNorm::forward_impl(const Tensor& x) {
  BatchNormOptions options;
  options.training = is_training() && !freeze_statistics;
  options.momentum = momentum;
  options.eps = eps;
  return batch_norm(x, weight, bias, running_mean, running_var, options);
}

std::string BatchNorm::extra_repr() const {
  return str(running_mean.numel(), ", momentum=", momentum, ", eps=", eps,
             freeze_statistics ? ", statistics frozen" : "");
}

Dropout::Dropout(double p_value, uint64_t seed_value) : p(p_value), seed(seed_value) {
  KILN_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward_impl(const Tensor& x) {
  if (!is_training() || p == 0) return x;
  return dropout(x, p, true, splitmix64(seed + calls++));
}

std::string Dropout::extra_repr() const { return str("p=", p); }

Tensor Flatten::forward_impl(const Tensor& x) { return flatten(x, 1); }

Sequential::Sequential(std::vector<ModulePtr> modules) {
  for (auto& m : modules) add(std::move(m));
}

Sequential& Sequential::add(ModulePtr module) { return add(std::to_string(size()), std::move(module)); }

Sequential& Sequential::add(const std::string& name, ModulePtr module) {
  register_module(name, std::move(module));
  return *this;
}

Tensor Sequential::forward_impl(const Tensor& x) {
  Tensor h = x;
  for (auto& [name, module] : named_children()) h = module->forward(h);
  return h;
}

}  // namespace kiln::nn
