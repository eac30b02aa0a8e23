#include "engine/nn/layers.h"

#include <cmath>

#include "engine/nn/init.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
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

BatchNormOptions BatchNorm::options() const {
  BatchNormOptions options;
  options.training = is_training() && !freeze_statistics;
  options.momentum = momentum;
  options.eps = eps;
  return options;
}

Tensor BatchNorm::forward_impl(const Tensor& x) {
  return batch_norm(x, weight, bias, running_mean, running_var, options());
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
  const auto children = named_children();
  Tensor h = x;
  for (size_t i = 0; i < children.size(); ++i) {
    // A BatchNorm followed by an activation runs as one fused op where it can.
    auto* bn = dynamic_cast<BatchNorm*>(children[i].second.get());
    auto* act = i + 1 < children.size() ? dynamic_cast<ActivationLayer*>(children[i + 1].second.get()) : nullptr;
    if (bn && act) {
      h = batch_norm_then_activation(*bn, *act, h);
      ++i;
      continue;
    }
    h = children[i].second->forward(h);
  }
  return h;
}

Tensor batch_norm_then_activation(BatchNorm& bn, ActivationLayer& act, const Tensor& x) {
  if (!batch_norm_can_fuse(act.activation) || bn.has_forward_hooks() || act.has_forward_hooks())
    return act.forward(bn.forward(x));
  return batch_norm_act(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.options(), act.activation);
}

Tensor add_then_activation(ActivationLayer& act, const Tensor& a, const Tensor& b) {
  const bool fusable = act.activation == Activation::relu && !act.has_forward_hooks() && a.defined() &&
                       b.defined() && a.shape() == b.shape() && a.dtype() == b.dtype();
  return fusable ? add_relu(a, b) : act.forward(add(a, b));
}

}  // namespace kiln::nn
