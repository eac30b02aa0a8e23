#include "engine/autograd/grad_mode.h"
#include "engine/ops/dispatch.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"

namespace kiln::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (const ParamGroup& g : groups_) base_lrs_.push_back(g.lr);
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

void Optimizer::scale_lr(double factor) {
  for (size_t i = 0; i < groups_.size(); ++i) groups_[i].lr = base_lrs_[i] * factor;
}

static std::vector<ParamGroup> one_group(std::vector<Tensor> params, const SgdOptions& options) {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = options.lr;
  g.weight_decay = options.weight_decay;
  g.name = "all";
  return {g};
}

SGD::SGD(std::vector<Tensor> params, SgdOptions options) : SGD(one_group(std::move(params), options), options) {}

SGD::SGD(std::vector<ParamGroup> groups, SgdOptions options) : Optimizer(std::move(groups)), options_(options) {
  KILN_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
             "SGD: nesterov needs momentum > 0 and dampening 0 (got momentum ", options.momentum, ", dampening ",
             options.dampening, ")");
}

void SGD::step() {
  NoGradGuard no_grad;
  for (ParamGroup& group : groups_) {
    for (Tensor& p : group.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;  // frozen, or not reached by this backward
      KILN_CHECK(grad.dtype() == p.dtype() && grad.layout() == p.layout(), "SGD: the gradient of a ",
                 p.describe(), " parameter is ", grad.describe());
      Tensor buffer;
      bool first_step = false;
      if (options_.momentum != 0) {
        auto found = momentum_buffers_.find(p.impl_ptr().get());
        first_step = found == momentum_buffers_.end();
        if (first_step) found = momentum_buffers_.emplace(p.impl_ptr().get(), empty_like(p)).first;
        buffer = found->second;
      }
      on_device(
          p.device(),
          [&] {
            cpu_floating(p.dtype(), "sgd_step", [&](auto tag) {
              using T = decltype(tag);
              cpu::sgd_step<T>(p.data<T>(), grad.data<T>(), buffer.defined() ? buffer.data<T>() : nullptr, p.numel(),
                               group.lr, options_.momentum, options_.dampening, group.weight_decay, options_.nesterov,
                               first_step);
            });
          },
          [&] {
            KILN_CUDA_ONLY(cuda::sgd_step(p, grad, buffer, group.lr, options_.momentum, options_.dampening,
                                          group.weight_decay, options_.nesterov, first_step));
          });
    }
  }
  ++steps_;
}

// Parameters in group order, for naming state entries.
static std::vector<Tensor> all_params(const std::vector<ParamGroup>& groups) {
  std::vector<Tensor> out;
  for (const ParamGroup& g : groups) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

std::map<std::string, Tensor> SGD::state_dict(const std::vector<std::string>& param_names) const {
  const std::vector<Tensor> params = all_params(groups_);
  KILN_CHECK(param_names.size() == params.size(), "SGD state_dict: ", param_names.size(), " names for ",
             params.size(), " parameters");
  std::map<std::string, Tensor> state;
  state["step"] = scalar(static_cast<double>(steps_), {DType::i64});
  for (size_t i = 0; i < params.size(); ++i) {
    auto found = momentum_buffers_.find(params[i].impl_ptr().get());
    if (found != momentum_buffers_.end()) state[param_names[i] + ".momentum_buffer"] = found->second;
  }
  return state;
}

void SGD::load_state_dict(const std::map<std::string, Tensor>& state, const std::vector<std::string>& param_names) {
  const std::vector<Tensor> params = all_params(groups_);
  KILN_CHECK(param_names.size() == params.size(), "SGD load_state_dict: ", param_names.size(), " names for ",
             params.size(), " parameters");
  auto step = state.find("step");
  steps_ = step == state.end() ? 0 : static_cast<int64_t>(step->second.item());
  momentum_buffers_.clear();
  for (size_t i = 0; i < params.size(); ++i) {
    auto found = state.find(param_names[i] + ".momentum_buffer");
    if (found == state.end()) continue;
    KILN_CHECK(found->second.shape() == params[i].shape(), "SGD load_state_dict: '", param_names[i],
               ".momentum_buffer' has shape ", found->second.shape(), ", the parameter ", params[i].shape());
    Tensor buffer = empty_like(params[i]);
    copy_(buffer, found->second);
    momentum_buffers_[params[i].impl_ptr().get()] = buffer;
  }
}

namespace cpu {
template <class T>
void sgd_step(T* param, const T* grad, T* buffer, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first_step) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    double g = static_cast<double>(grad[i]) + weight_decay * static_cast<double>(param[i]);
    if (momentum != 0) {
      const double b = first_step ? g : momentum * static_cast<double>(buffer[i]) + (1 - dampening) * g;
      buffer[i] = static_cast<T>(b);
      g = nesterov ? g + momentum * b : b;
    }
    param[i] = static_cast<T>(static_cast<double>(param[i]) - lr * g);
  }
}
template void sgd_step<float>(float*, const float*, float*, int64_t, double, double, double, double, bool, bool);
template void sgd_step<double>(double*, const double*, double*, int64_t, double, double, double, double, bool, bool);
}  // namespace cpu

}  // namespace kiln::optim
