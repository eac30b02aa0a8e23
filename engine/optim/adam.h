// The Adam family: Adam, AdamW, NAdam and RAdam, exactly as torch.optim 1.13
// computes them (single-tensor path), sharing one update loop and one fused CUDA
// kernel (launched per parameter, or per chunk of a whole group). Each keeps two
// running averages per parameter element:
//   m = beta1 m + (1 - beta1) g        (exp_avg: the mean of the gradient)
//   v = beta2 v + (1 - beta2) g^2      (exp_avg_sq: the mean of its square)
// and steps by roughly m / sqrt(v): every element gets its own step size. The
// variants differ in where weight decay enters and in how m and v are corrected
// for starting at zero; docs/optim.md writes out all four.
#pragma once
#include "engine/optim/adam_math.h"  // AdamVariant, AdamStepScalars: shared with the kernels
#include "engine/optim/optimizer.h"

namespace kiln::optim {

struct AdamOptions {
  AdamVariant variant = AdamVariant::adam;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;          // adam and adamw only, as in torch
  double momentum_decay = 4e-3;  // nadam only
};

class AdamFamily : public Optimizer {
 public:
  AdamFamily(std::vector<ParamGroup> groups, AdamOptions options);
  std::string name() const override;  // "adam", "adamw", "nadam" or "radam"

 protected:
  void apply_step(const Tensor& found_inf) override;
  std::vector<std::string> scalar_state_names() const override { return {"step", "mu_product"}; }

 private:
  AdamHyperparameters hyperparameters(const ParamGroup& group) const;
  AdamOptions options_;
};

namespace cpu {
// param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq: (n), all the same dtype;
// max_exp_avg_sq is only read with amsgrad (nullptr otherwise). Updates param,
// exp_avg, exp_avg_sq (and max_exp_avg_sq) in place; math in double.
template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, int64_t n,
               const AdamStepScalars& s);
}  // namespace cpu
namespace cuda {
// The same update as one fused kernel (kernels/optim_adam.cu), math in f32.
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const AdamStepScalars& s);
// Every parameter of a list (one device and dtype) in one launch per chunk. Each
// block derives its parameter's scalars from steps[i] (0-d f64 device tensors:
// steps taken) and, for nadam, mu_products[i] with adam_step_scalars(); then
// steps[i] += 1 and mu_products[i] advances. Nothing changes while *found_inf != 0
// (found_inf may be undefined). max_exp_avg_sqs is empty without amsgrad,
// mu_products without nadam. The lr is lr.lr() (h.lr is not read): the host's,
// or base_lr * f(t) with t read from device memory (lr_schedule_math.h).
void adam_multi_tensor_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                            const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& steps,
                            const std::vector<Tensor>& mu_products, const AdamHyperparameters& h,
                            const ScheduledLr& lr, const Tensor& found_inf);
}  // namespace cuda

}  // namespace kiln::optim
