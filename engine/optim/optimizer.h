// Optimizers update parameters in place from their .grad, outside autograd.
//
// Parameters come in groups, each with its own learning rate and weight decay (as
// in torch.optim): a fine-tuned backbone can learn slower than its new head, and
// batch-norm weights and biases usually get no weight decay.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln::optim {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 0.01;
  double weight_decay = 0.0;
  std::string name;  // "backbone", "head", "no_decay": for logs
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;
  // Applies one update to every parameter of every group that has a gradient.
  virtual void step() = 0;
  void zero_grad();  // drops every parameter's gradient
  std::vector<ParamGroup>& groups() { return groups_; }
  // Sets every group's lr to base_lr_i * factor (what a scheduler calls each step).
  void scale_lr(double factor);
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  int64_t step_count() const { return steps_; }

  // The optimizer's state for checkpoints: "<param name>.<buffer>" -> tensor, plus
  // "step". `param_names` names the parameters in group order (the trainer takes
  // them from the model). Loading restores exactly what was saved, so a resumed run
  // continues as if it had not stopped.
  virtual std::map<std::string, Tensor> state_dict(const std::vector<std::string>& param_names) const = 0;
  virtual void load_state_dict(const std::map<std::string, Tensor>& state,
                               const std::vector<std::string>& param_names) = 0;

 protected:
  std::vector<ParamGroup> groups_;
  std::vector<double> base_lrs_;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.SGD, exactly:
//   g = grad + weight_decay * p
//   b = g                              (first step)
//   b = momentum * b + (1 - dampening) * g   (later steps)
//   g = g + momentum * b  if nesterov, else g = b      (when momentum != 0)
//   p = p - lr * g
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SgdOptions options);
  SGD(std::vector<ParamGroup> groups, SgdOptions options);  // group lr/weight_decay override the options'
  void step() override;
  std::map<std::string, Tensor> state_dict(const std::vector<std::string>& param_names) const override;
  void load_state_dict(const std::map<std::string, Tensor>& state, const std::vector<std::string>& param_names) override;

 private:
  SgdOptions options_;
  std::map<const TensorImpl*, Tensor> momentum_buffers_;
};

namespace cpu {
template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first_step);
}
namespace cuda {
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first_step);
}

}  // namespace kiln::optim
