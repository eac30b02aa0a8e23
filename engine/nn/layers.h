// Layers: thin Modules that own parameters and call the ops. Constructors take the
// same arguments, in the same order, as their torch.nn twins and initialise the
// same way (engine/nn/init.h); forward() says the shapes.
#pragma once
#include <array>
#include <cstdint>

#include "engine/nn/module.h"
#include "engine/ops/activation.h"
#include "engine/ops/conv.h"
#include "engine/ops/norm.h"
#include "engine/ops/pool.h"

namespace kiln::nn {

// y = conv2d(x, weight (K, C/groups, R, S), bias (K)); x (N, C, H, W) -> (N, K, Ho, Wo)
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int, 2> kernel, Conv2dParams params = {},
         bool bias = true);
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride = 1, int padding = 0, int groups = 1,
         bool bias = true);
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  Tensor weight, bias;
  Conv2dParams params;

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// Depthwise (groups = C) then pointwise (1x1) convolution: far fewer multiply-adds
// than a full conv (C*R*S + C*K per pixel instead of C*K*R*S).
class SeparableConv2d : public Module {
 public:
  SeparableConv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride = 1, int padding = 0,
                  bool bias = true);
  std::string type_name() const override { return "SeparableConv2d"; }
  std::shared_ptr<Conv2d> depthwise, pointwise;

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// y = x W^T + b; x (N, in) -> (N, out)
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  Tensor weight, bias;

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// Batch norm over channel dim 1 of (N, C) or (N, C, H, W); running stats in f32 buffers.
class BatchNorm : public Module {
 public:
  explicit BatchNorm(int64_t channels, double momentum = 0.1, double eps = 1e-5, bool affine = true);
  std::string type_name() const override { return "BatchNorm"; }
  std::string extra_repr() const override;
  Tensor weight, bias, running_mean, running_var;
  double momentum, eps;
  // When frozen, the layer normalises with its running statistics even in train()
  // mode and never updates them (fine-tuning with frozen batch-norm statistics).
  bool freeze_statistics = false;
  // What forward() passes to batch_norm in the current mode (training unless eval()
  // or frozen statistics); batch_norm_then_activation passes the same.
  BatchNormOptions options() const;

 protected:
  // Checkpoints keep frozen statistics frozen: a run fine-tuned from one (--pretrained
  // CHECKPOINT) must not start updating batch norms that were folded into convolutions.
  std::map<std::string, int64_t> own_extra_state() const override {
    if (!freeze_statistics) return {};
    return {{"frozen_statistics", 1}};
  }
  void load_own_extra_state(const std::map<std::string, int64_t>& state) override {
    auto found = state.find("frozen_statistics");
    if (found != state.end() && found->second != 0) freeze_statistics = true;
  }
  Tensor forward_impl(const Tensor& x) override;
};

class ActivationLayer : public Module {
 public:
  explicit ActivationLayer(Activation activation) : activation(activation) {}
  std::string type_name() const override { return activation_name(activation); }
  Activation activation;

 protected:
  Tensor forward_impl(const Tensor& x) override { return activate(x, activation); }
};

// Zeroes each element with probability p in training, scaling the rest by 1/(1-p).
// Each forward draws a new mask: the seed advances by one per call.
class Dropout : public Module {
 public:
  explicit Dropout(double p, uint64_t seed = 0x5eed);
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p;
  uint64_t seed, calls = 0;

 protected:
  std::map<std::string, int64_t> own_extra_state() const override { return {{"calls", static_cast<int64_t>(calls)}}; }
  void load_own_extra_state(const std::map<std::string, int64_t>& state) override {
    auto found = state.find("calls");
    if (found != state.end()) calls = static_cast<uint64_t>(found->second);
  }
  Tensor forward_impl(const Tensor& x) override;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pool2dParams params) : params(params) {}
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override { return params.to_string(); }
  Pool2dParams params;

 protected:
  Tensor forward_impl(const Tensor& x) override { return max_pool2d(x, params); }
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Pool2dParams params) : params(params) {}
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override { return params.to_string(); }
  Pool2dParams params;

 protected:
  Tensor forward_impl(const Tensor& x) override { return avg_pool2d(x, params); }
};

// (N, C, H, W) -> (N, C, out_h, out_w)
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int out_h, int out_w) : out_h(out_h), out_w(out_w) {}
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  int out_h, out_w;

 protected:
  Tensor forward_impl(const Tensor& x) override { return adaptive_avg_pool2d(x, out_h, out_w); }
};

// (N, C, H, W) -> (N, C * H * W)
class Flatten : public Module {
 public:
  std::string type_name() const override { return "Flatten"; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// Runs its children in order; children are named "0", "1", ... as in torch.nn.Sequential.
// A BatchNorm child followed by an ActivationLayer child runs as
// batch_norm_then_activation (one fused op for relu/relu6, below), which is how
// ConvBNAct (MobileNetV2), VGG-BN and cnn5 with batch norm get the fusion.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> modules);
  Sequential& add(ModulePtr module);
  Sequential& add(const std::string& name, ModulePtr module);
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return named_children().size(); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
};

// ---- fused forward of two modules (docs/ops/fused.md)
//
// activation(bn(x)) and activation(a + b) as one op each (batch_norm_act, add_relu)
// where that computes the same thing, and as the two module calls otherwise. A
// network keeps its BatchNorm and ActivationLayer children, so parameter and buffer
// names, state dicts, freeze-by-prefix, the ONNX exporter (which walks the modules)
// and the importer see no difference; only the forward pass is shorter.
//
// The fused op skips the modules' forward(), so it is used only when neither module
// has a forward hook: a hook (kiln visualize's LayerCapture on "layer1.0.relu", a
// test's counter) must see the module run and may replace its output, so with a hook
// the two calls run as before. The fused ops record guided backprop's rule exactly
// where relu and relu6 would, so visualize's guided gradients are unchanged too.

// act(bn(x)); fused when act is relu or relu6 and no hook is registered on either.
Tensor batch_norm_then_activation(BatchNorm& bn, ActivationLayer& act, const Tensor& x);
// act(a + b) (a residual block's end); fused when act is relu, a and b have one
// shape and dtype, and act has no hook. Otherwise act.forward(add(a, b)).
Tensor add_then_activation(ActivationLayer& act, const Tensor& a, const Tensor& b);

}  // namespace kiln::nn
