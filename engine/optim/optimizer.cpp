// The Optimizer base class (groups, lr scaling, state save/restore), the optimizer
// registry and the usual no-decay grouping.
#include "engine/optim/optimizer.h"

#include <algorithm>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/module.h"
#include "engine/ops/dispatch.h"
#include "engine/optim/adam.h"
#include "engine/tensor/factory.h"

namespace kiln::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (const ParamGroup& g : groups_) base_lrs_.push_back(g.lr);
}

void Optimizer::step(const Tensor& found_inf) {
  NoGradGuard no_grad;
  if (has_lr_schedule_) {
    scale_lr(lr_schedule_factor(lr_schedule_, static_cast<double>(lr_step_)));  // for the host paths
    ++lr_step_;  // a skipped step counts too, as the trainer's step does
  }
  bool device_decides = found_inf.defined() && found_inf.device().is_cuda();
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) device_decides = device_decides && goes_multi_tensor(p);
  if (found_inf.defined()) {
    KILN_CHECK(found_inf.numel() == 1 && found_inf.dtype() == DType::f32, name(),
               ".step: found_inf must be a one-element f32 tensor, got ", found_inf.describe());
    // The CPU and the per-tensor path decide here; this reads a CUDA flag once.
    if (!device_decides && found_inf.to(Device::cpu()).item() != 0) {
      advance_device_lr_steps();
      return;
    }
  }
  const Tensor device_flag = device_decides ? found_inf : Tensor();
  apply_step(device_flag);
  ++steps_;
  if (device_flag.defined()) {
    if (!steps_skipped_on_device_.defined())
      steps_skipped_on_device_ = scalar(0.0, {DType::f64}).to(device_flag.device());
    KILN_CUDA_ONLY(cuda::count_skipped_step(device_flag, steps_skipped_on_device_));
  }
  advance_device_lr_steps();
}

void Optimizer::skip_step() {
  if (!has_lr_schedule_) return;
  ++lr_step_;
  advance_device_lr_steps();
}

void Optimizer::count_replayed_step() {
  if (has_lr_schedule_) {
    scale_lr(lr_schedule_factor(lr_schedule_, static_cast<double>(lr_step_)));
    ++lr_step_;
  }
  ++steps_;
}

void Optimizer::advance_device_lr_steps() {
  // After this step's update launches, in stream order: every block has read t.
  for (auto& entry : lr_step_on_device_) KILN_CUDA_ONLY(cuda::advance_lr_step(entry.second));
}

int64_t Optimizer::step_count() const {
  if (!steps_skipped_on_device_.defined()) return steps_;
  return steps_ - static_cast<int64_t>(steps_skipped_on_device_.to(Device::cpu()).item());
}

double& Optimizer::host_scalar(ParamState& state, const std::string& name, double initial) {
  const auto on_device = state.tensors.find(name);
  if (on_device != state.tensors.end()) {  // the multi-tensor path had it: one read
    state.scalars[name] = on_device->second.to(Device::cpu()).item();
    state.tensors.erase(on_device);
  }
  return state.scalars.emplace(name, initial).first->second;
}

Tensor Optimizer::device_scalar(ParamState& state, const std::string& name, const Device& device, double initial) {
  const auto found = state.tensors.find(name);
  if (found != state.tensors.end()) return found->second;
  const auto on_host = state.scalars.find(name);
  double value = initial;
  if (on_host != state.scalars.end()) {
    value = on_host->second;
    state.scalars.erase(on_host);
  }
  Tensor t = scalar(value, {DType::f64}).to(device);
  state.tensors[name] = t;
  return t;
}

std::vector<std::vector<Tensor>> split_by_device_and_dtype(const std::vector<Tensor>& params) {
  std::vector<std::vector<Tensor>> lists;
  for (const Tensor& p : params) {
    auto same = std::find_if(lists.begin(), lists.end(), [&](const std::vector<Tensor>& list) {
      return list.front().device() == p.device() && list.front().dtype() == p.dtype();
    });
    if (same == lists.end())
      lists.push_back({p});
    else
      same->push_back(p);
  }
  return lists;
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (Tensor& p : g.params) p.zero_grad();
}

void Optimizer::scale_lr(double factor) {
  // lr_math::mul: the same rounding as ScheduledLr::lr() on the device
  for (size_t i = 0; i < groups_.size(); ++i) groups_[i].lr = lr_math::mul(base_lrs_[i], factor);
}

void Optimizer::set_lr_schedule(const LrScheduleParams& schedule, int64_t next_step) {
  KILN_CHECK(next_step >= 0, name(), ".set_lr_schedule: the next step must be >= 0, got ", next_step);
  has_lr_schedule_ = true;
  lr_schedule_ = schedule;
  lr_step_ = next_step;
  lr_step_on_device_.clear();  // made again from lr_step_ where needed
  scale_lr(lr_schedule_factor(lr_schedule_, static_cast<double>(lr_step_)));
}

ScheduledLr Optimizer::scheduled_lr(size_t group, const Device& device) {
  ScheduledLr lr;
  lr.host_lr = groups_.at(group).lr;
  if (!has_lr_schedule_ || !device.is_cuda()) return lr;
  lr.schedule = lr_schedule_;
  lr.base_lr = base_lrs_.at(group);
  Tensor& counter = lr_step_on_device_[device.to_string()];
  // step() has counted this step already: the device counter starts at its t
  if (!counter.defined()) counter = scalar(static_cast<double>(lr_step_ - 1), {DType::f64}).to(device);
  lr.step = static_cast<const double*>(counter.raw_data());
  return lr;
}

std::vector<Tensor> Optimizer::all_params() const {
  std::vector<Tensor> params;
  for (const ParamGroup& g : groups_) params.insert(params.end(), g.params.begin(), g.params.end());
  return params;
}

static void check_names(const char* where, const std::vector<Tensor>& params, const std::vector<std::string>& names) {
  KILN_CHECK(params.size() == names.size(), where, ": got ", names.size(), " parameter names for ", params.size(),
             " parameters (names go in group order: group 0's parameters, then group 1's, ...)");
}

std::map<std::string, Tensor> Optimizer::state_dict(const std::vector<std::string>& param_names) const {
  const std::vector<Tensor> params = all_params();
  check_names("optimizer state_dict", params, param_names);
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto found = state_.find(params[i].impl_ptr().get());
    if (found == state_.end()) continue;  // never stepped (frozen, or no gradient yet)
    // Copies, so that training on does not change a checkpoint already taken.
    // Scalars the multi-tensor path keeps on the device are written as the host
    // path writes them: the file does not depend on which path ran.
    const std::vector<std::string> scalar_names = scalar_state_names();
    for (const auto& [key, t] : found->second.tensors) {
      const bool is_scalar = std::find(scalar_names.begin(), scalar_names.end(), key) != scalar_names.end();
      out[param_names[i] + "." + key] = is_scalar ? scalar(t.to(Device::cpu()).item(), {DType::f64}) : t.clone();
    }
    for (const auto& [key, value] : found->second.scalars)
      out[param_names[i] + "." + key] = scalar(value, {DType::f64});
  }
  out["step"] = scalar(static_cast<double>(step_count()), {DType::f64});
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state,
                                const std::vector<std::string>& param_names) {
  const std::vector<Tensor> params = all_params();
  check_names("optimizer load_state_dict", params, param_names);
  const auto step = state.find("step");
  KILN_CHECK(step != state.end(), "optimizer load_state_dict: the key 'step' is missing (", state.size(),
             " keys given); was this written by Optimizer::state_dict?");
  const std::vector<std::string> scalar_names = scalar_state_names();
  state_.clear();
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string prefix = param_names[i] + ".";
    ParamState restored;
    for (auto it = state.lower_bound(prefix); it != state.end() && it->first.rfind(prefix, 0) == 0; ++it) {
      const std::string key = it->first.substr(prefix.size());
      if (key.find('.') != std::string::npos) continue;  // a longer parameter name that shares the prefix
      if (std::find(scalar_names.begin(), scalar_names.end(), key) != scalar_names.end()) {
        restored.scalars[key] = it->second.to(Device::cpu()).to(DType::f64).item();
        continue;
      }
      KILN_CHECK(it->second.shape() == params[i].shape(), "optimizer load_state_dict: '", it->first, "' has shape ",
                 it->second.shape(), " but the parameter has shape ", params[i].shape());
      Tensor t = empty_like(params[i]);
      copy_(t, it->second);  // onto the parameter's device, dtype and layout
      restored.tensors[key] = t;
    }
    if (!restored.tensors.empty() || !restored.scalars.empty()) state_[params[i].impl_ptr().get()] = restored;
  }
  steps_ = static_cast<int64_t>(step->second.to(Device::cpu()).to(DType::f64).item());
  steps_skipped_on_device_ = Tensor();
}

// ---- the registry
//
// A table in this file rather than self-registration from sgd.cpp and adam.cpp:
// the engine is a static library, and the linker drops an object file nothing
// refers to, together with any static registrar inside it.
using OptimizerFactory = std::function<std::unique_ptr<Optimizer>(std::vector<ParamGroup>, const OptimizerOptions&)>;

static std::unique_ptr<Optimizer> make_adam_family(AdamVariant variant, std::vector<ParamGroup> groups,
                                                   const OptimizerOptions& o) {
  AdamOptions options;
  options.variant = variant;
  options.beta1 = o.beta1;
  options.beta2 = o.beta2;
  options.eps = o.eps;
  options.amsgrad = o.amsgrad;
  options.momentum_decay = o.momentum_decay;
  return std::make_unique<AdamFamily>(std::move(groups), options);
}

static const std::map<std::string, OptimizerFactory>& registry() {
  static const std::map<std::string, OptimizerFactory> table = {
      {"sgd",
       [](std::vector<ParamGroup> groups, const OptimizerOptions& o) -> std::unique_ptr<Optimizer> {
         SgdOptions options;
         options.momentum = o.momentum;
         options.dampening = o.dampening;
         options.nesterov = o.nesterov;
         return std::make_unique<SGD>(std::move(groups), options);
       }},
      {"adam", [](auto groups, const auto& o) { return make_adam_family(AdamVariant::adam, std::move(groups), o); }},
      {"adamw", [](auto groups, const auto& o) { return make_adam_family(AdamVariant::adamw, std::move(groups), o); }},
      {"nadam", [](auto groups, const auto& o) { return make_adam_family(AdamVariant::nadam, std::move(groups), o); }},
      {"radam", [](auto groups, const auto& o) { return make_adam_family(AdamVariant::radam, std::move(groups), o); }},
  };
  return table;
}

std::vector<std::string> optimizer_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups,
                                          const OptimizerOptions& options) {
  const auto found = registry().find(name);
  if (found == registry().end()) {
    std::string valid;
    for (const std::string& n : optimizer_names()) valid += (valid.empty() ? "" : ", ") + n;
    KILN_FAIL("unknown optimizer '", name, "' (valid: ", valid, ")");
  }
  return found->second(std::move(groups), options);
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          const OptimizerOptions& options) {
  ParamGroup group;
  group.params = std::move(params);
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  group.name = "all";
  return make_optimizer(name, std::vector<ParamGroup>{group}, options);
}

std::vector<ParamGroup> param_groups_no_decay_on_norms_and_biases(const nn::Module& module, double lr,
                                                                  double weight_decay) {
  ParamGroup decay, no_decay;
  decay.name = "decay";
  decay.lr = no_decay.lr = lr;
  decay.weight_decay = weight_decay;
  no_decay.name = "no_decay";
  no_decay.weight_decay = 0.0;
  for (const auto& [name, p] : module.named_parameters()) {
    if (!p.requires_grad()) continue;  // frozen: the optimizer never sees it
    (p.dim() <= 1 ? no_decay : decay).params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  for (ParamGroup* g : {&decay, &no_decay})
    if (!g->params.empty()) groups.push_back(*g);
  return groups;
}

}  // namespace kiln::optim
