// Optimizers update parameters in place from their .grad, outside autograd.
//
// Parameters come in groups, each with its own learning rate and weight decay (as
// in torch.optim): a fine-tuned backbone can learn slower than its new head, and
// batch-norm weights and biases usually get no weight decay.
//
// Every optimizer keeps per-parameter state (momentum buffers, moment estimates,
// a step count) in the base class, so that one state_dict()/load_state_dict()
// pair serves them all and a resumed run continues exactly. The update rules are
// in docs/optim.md; SGD is here, the Adam family in engine/optim/adam.h. On CUDA a
// group's parameters are updated together, a few multi-tensor launches a step
// (engine/optim/multi_tensor.h), and a step can be skipped on the device by the
// loss scaler's found_inf flag without a host read.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/optim/lr_schedule_math.h"
#include "engine/tensor/tensor.h"

namespace kiln::nn {
class Module;
}

namespace kiln::optim {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 0.01;
  double weight_decay = 0.0;
  std::string name;  // "backbone", "head", "no_decay": for logs
};

// What one parameter's optimizer remembers between steps. Tensors have the
// parameter's shape, dtype and device; scalars are host numbers (the step count,
// NAdam's running product of momentum coefficients).
struct ParamState {
  std::map<std::string, Tensor> tensors;  // "momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"
  std::map<std::string, double> scalars;  // "step", "mu_product"
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups);
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;  // the registry name: "sgd", "adamw", ...
  // Applies one update to every parameter of every group that has a gradient.
  void step() { step(Tensor()); }
  // The same, unless found_inf (a one-element f32 tensor, nonzero when a gradient
  // was inf or nan: LossScaler::unscale writes it) is set: then nothing changes,
  // neither parameters nor state nor step counts. On CUDA the multi-tensor kernels
  // read the flag on the device, so the step needs no host synchronisation; the
  // CPU and the per-tensor path read it on the host.
  void step(const Tensor& found_inf);
  void zero_grad();  // drops every parameter's gradient
  std::vector<ParamGroup>& groups() { return groups_; }
  // Sets every group's lr to base_lr_i * factor (what a scheduler calls each step).
  void scale_lr(double factor);
  // From now on the optimizer schedules itself: the update of each step() uses
  // lr_i = base_lr_i * lr_schedule_factor(schedule, t), t = next_step, next_step + 1, ...
  // (one per call of step(), skipped ones included, as the trainer counts). The
  // fused CUDA steps read t from a counter in device memory that a kernel advances,
  // so their launch arguments are the same every step (what CUDA graph capture
  // needs); the host paths compute the same lr from a host copy of t, bit for bit
  // (lr_schedule_math.h). scale_lr() then changes nothing the update uses.
  void set_lr_schedule(const LrScheduleParams& schedule, int64_t next_step);
  // A step the trainer leaves out without calling step() (--on-nan skip): no update,
  // but the schedule moves on by one, on the host and on the device, so that t stays
  // the trainer's step count.
  void skip_step();
  // A step that ran as a replay of a captured CUDA graph (engine/train/cuda_graph_step.h):
  // the device did everything step() launches, this moves the host's copies (the
  // step count, the schedule's t and the groups' lr) on by one, as step() would have.
  void count_replayed_step();
  bool has_lr_schedule() const { return has_lr_schedule_; }
  int64_t lr_schedule_step() const { return lr_step_; }  // t of the next step()
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // Steps taken (skipped ones not counted); reads the device's count of skipped
  // steps, so call it outside the training loop.
  int64_t step_count() const;
  // CUDA parameters are updated by one multi-tensor launch per chunk of a group
  // (default) or by one launch per parameter (the reference the tests compare to).
  void set_multi_tensor(bool on) { multi_tensor_ = on; }
  bool multi_tensor() const { return multi_tensor_; }

  // The optimizer state for a checkpoint. param_names[i] names the i-th parameter
  // in group order (group 0's params, then group 1's, ...), e.g. from
  // Module::named_parameters(). Keys: "<param name>.<state name>" (copies, on the
  // parameter's device; per-parameter scalars such as "step" as 0-d f64 tensors on
  // the host) and "step" (a 0-d f64 tensor: steps taken).
  std::map<std::string, Tensor> state_dict(const std::vector<std::string>& param_names) const;
  // Restores what state_dict() wrote, into this optimizer's own parameters (same
  // names, same order); tensors are copied onto each parameter's device and dtype.
  // Throws naming the key when a tensor's shape differs or "step" is missing.
  void load_state_dict(const std::map<std::string, Tensor>& state, const std::vector<std::string>& param_names);

 protected:
  // One update. found_inf is undefined, or a flag on the CUDA device that every
  // parameter goes to the multi-tensor path on (step() reads any other on the host).
  virtual void apply_step(const Tensor& found_inf) = 0;
  // The state of parameter p, created empty on first use.
  ParamState& state_of(const Tensor& p) { return state_[p.impl_ptr().get()]; }
  // Names of this optimizer's per-parameter scalars, so load_state_dict can tell
  // them from tensors.
  virtual std::vector<std::string> scalar_state_names() const { return {"step"}; }
  std::vector<Tensor> all_params() const;  // group order, as state_dict expects names
  // Whether p is updated by the multi-tensor CUDA path.
  bool goes_multi_tensor(const Tensor& p) const { return multi_tensor_ && p.device().is_cuda(); }
  // A per-parameter scalar for the host paths, or for the multi-tensor path a 0-d
  // f64 tensor on `device` (a step skipped on the device must leave it alone, so it
  // cannot live on the host there). Each moves the value from the other place
  // when it is there, and starts at `initial` when it is nowhere.
  double& host_scalar(ParamState& state, const std::string& name, double initial);
  Tensor device_scalar(ParamState& state, const std::string& name, const Device& device, double initial);
  // Group g's lr for a fused multi-tensor step on `device`: read from the device's
  // schedule counter when a schedule is set, else the group's host lr.
  ScheduledLr scheduled_lr(size_t group, const Device& device);

  std::vector<ParamGroup> groups_;
  std::vector<double> base_lrs_;

 private:
  std::map<const TensorImpl*, ParamState> state_;
  int64_t steps_ = 0;              // calls of step() that reached apply_step
  Tensor steps_skipped_on_device_;  // 0-d f64 on the device: those whose device flag was set
  bool multi_tensor_ = true;
  bool has_lr_schedule_ = false;
  LrScheduleParams lr_schedule_;
  int64_t lr_step_ = 0;                           // the host's copy of t
  std::map<std::string, Tensor> lr_step_on_device_;  // device name -> 0-d f64 counter, advanced by a kernel
  void advance_device_lr_steps();
};

// Parameters split by (device, dtype), in first-seen order: one multi-tensor list each.
std::vector<std::vector<Tensor>> split_by_device_and_dtype(const std::vector<Tensor>& params);

// Every hyperparameter any registered optimizer reads; each reads only its own.
struct OptimizerOptions {
  double lr = 0.01;            // read by the one-group make_optimizer only
  double weight_decay = 0.0;   // likewise; groups carry their own
  double momentum = 0.0;       // sgd
  double dampening = 0.0;      // sgd
  bool nesterov = false;       // sgd
  double beta1 = 0.9;          // adam family: decay of the first moment (mean of g)
  double beta2 = 0.999;        // adam family: decay of the second moment (mean of g^2)
  double eps = 1e-8;           // adam family: added to sqrt(v) so the step stays finite
  bool amsgrad = false;        // adam, adamw: divide by the running max of v
  double momentum_decay = 4e-3;  // nadam: psi in mu_t = beta1 (1 - 0.5 * 0.96^(t psi))
};

// Builds the optimizer registered under `name` (sgd, adam, adamw, nadam, radam).
// An unknown name throws a kiln::Error that lists the valid ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                          const OptimizerOptions& options);
// One group of `params` with options.lr and options.weight_decay.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          const OptimizerOptions& options);
std::vector<std::string> optimizer_names();

// Two groups from a module's trainable parameters: "decay" (weights of rank >= 2:
// conv and linear weights) with weight_decay, and "no_decay" (rank 1: biases and
// batch-norm scales and shifts) with 0. Decaying a bias or a BN scale towards 0
// only fights the normalisation, so this is the usual default. Empty groups are
// left out.
std::vector<ParamGroup> param_groups_no_decay_on_norms_and_biases(const nn::Module& module, double lr,
                                                                  double weight_decay);

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
  std::string name() const override { return "sgd"; }

 protected:
  void apply_step(const Tensor& found_inf) override;

 private:
  SgdOptions options_;
};

namespace cpu {
template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first_step);
}
namespace cuda {
// One parameter, one launch (kernels/optim_sgd.cu).
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first_step);
// Every parameter of a list (one device and dtype) in one launch per chunk: the
// same update, the first step told by steps[i] == 0 (0-d f64 device tensors),
// then steps[i] += 1; all skipped while *found_inf != 0 (found_inf may be undefined).
// momentum_buffers is empty without momentum.
// The lr is lr.lr(): the host's, or base_lr * f(t) with t read on the device.
void sgd_multi_tensor_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& momentum_buffers, const std::vector<Tensor>& steps,
                           const ScheduledLr& lr,
                           double momentum, double dampening, double weight_decay, bool nesterov,
                           const Tensor& found_inf);
// What a multi-tensor step does after its update launches, once every block has
// read the old counts (kernels/optim_step_count.cu): unless *found_inf != 0,
// steps[i] += 1 and, for nadam (mu_products not empty), the running product
// mu_products[i] advances by mu_t (nadam_mu_product_after in adam_math.h).
void advance_step_counts(const std::vector<Tensor>& steps, const std::vector<Tensor>& mu_products, double beta1,
                         double momentum_decay, const Tensor& found_inf);
// steps_skipped += (*found_inf != 0), on the device.
void count_skipped_step(const Tensor& found_inf, const Tensor& steps_skipped);
// counter += 1 on the device, unconditionally (the lr schedule's step count).
void advance_lr_step(const Tensor& counter);
// out[i] = f32(base_lr * lr_schedule_factor(schedule, first_step + i)) for a 1-D f32
// device tensor out, computed as the fused steps compute it (kernels/lr_schedule.cu).
void lr_schedule_values(const LrScheduleParams& schedule, double base_lr, int64_t first_step, const Tensor& out);
}

}  // namespace kiln::optim
