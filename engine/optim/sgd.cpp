// SGD (torch.optim.SGD) and its CPU reference update; the fused CUDA updates (one
// launch per parameter, or one per chunk of a whole group) are kernels/optim_sgd.cu.
#include "engine/autograd/grad_mode.h"
#include "engine/ops/dispatch.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"

namespace kiln::optim {

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

void SGD::apply_step(const Tensor& found_inf) {
  for (size_t group_index = 0; group_index < groups_.size(); ++group_index) {
    ParamGroup& group = groups_[group_index];
    std::vector<Tensor> multi_tensor_params;
    for (Tensor& p : group.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;  // frozen, or not reached by this backward
      KILN_CHECK(grad.dtype() == p.dtype() && grad.layout() == p.layout(), "SGD: the gradient of a ",
                 p.describe(), " parameter is ", grad.describe());
      if (goes_multi_tensor(p)) {
        multi_tensor_params.push_back(p);
        continue;
      }
      ParamState& state = state_of(p);
      double& step = host_scalar(state, "step", 0);
      Tensor buffer;
      bool first_step = false;
      if (options_.momentum != 0) {
        // torch starts the buffer at the first gradient rather than at zero
        Tensor& slot = state.tensors["momentum_buffer"];
        first_step = !slot.defined() || step == 0;
        if (!slot.defined()) slot = empty_like(p);
        buffer = slot;
      }
      step += 1;
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
    for (const std::vector<Tensor>& list : split_by_device_and_dtype(multi_tensor_params)) {
      std::vector<Tensor> grads, buffers, steps;
      for (const Tensor& p : list) {
        ParamState& state = state_of(p);
        grads.push_back(p.grad());
        // The buffer's first contents are never read: the kernel sees step 0 and
        // starts it at the gradient, or a skipped step leaves step at 0.
        if (options_.momentum != 0) {
          Tensor& slot = state.tensors["momentum_buffer"];
          if (!slot.defined()) slot = empty_like(p);
          buffers.push_back(slot);
        }
        steps.push_back(device_scalar(state, "step", p.device(), 0));
      }
      const ScheduledLr lr = scheduled_lr(group_index, list.front().device());
      KILN_CUDA_ONLY(cuda::sgd_multi_tensor_step(list, grads, buffers, steps, lr, options_.momentum,
                                                 options_.dampening, group.weight_decay, options_.nesterov,
                                                 found_inf));
    }
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
