// Learning-rate schedules: pure functions of the step.
//
// Every schedule returns a factor of the optimizer's learning rate,
//   lr_i(step) = base_lr_i * lr_factor(step)      (Optimizer::scale_lr)
// so that groups with different learning rates keep their ratio. `step` counts the
// optimizer steps already taken: lr_factor(0) sets the lr of the first update,
// exactly like a torch scheduler built and then stepped once after each
// optimizer.step(). Being pure functions, schedules need no state in a
// checkpoint: a resumed run recomputes lr_factor(step).
//
// Cyclic and one-cycle are defined by absolute learning rates (base_lr, max_lr,
// as in torch); they divide by the optimizer's lr given in LrScheduleContext, so
// `--learning-rate 0.01 --lr-schedule onecycle:max_lr=0.1` peaks at 0.1.
// Formulas: docs/optim.md.
//
// The classes only fill in an LrScheduleParams; the factor itself is
// lr_schedule_factor() of lr_schedule_math.h, the one function the fused CUDA
// optimizer steps also call on the device (Optimizer::set_lr_schedule).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/optim/lr_schedule_math.h"

namespace kiln::optim {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  double lr_factor(int64_t step) const { return lr_schedule_factor(params_, static_cast<double>(step)); }
  // The schedule as plain numbers, for Optimizer::set_lr_schedule.
  const LrScheduleParams& params() const { return params_; }
  virtual std::string describe() const = 0;  // "cosine(warmup=500, total=10000, min_factor=0)"

 protected:
  LrScheduleParams params_;  // kind constant unless a subclass says otherwise
};

// What a schedule may need to know about the run it shapes.
struct LrScheduleContext {
  double base_lr = 0.01;    // the optimizer's lr (group 0's), for schedules given in absolute lrs
  int64_t total_steps = 0;  // optimizer steps in the whole run; 0 = unknown
};

// constant: 1.
class ConstantLr : public LrSchedule {
 public:
  std::string describe() const override { return "constant"; }
};

// torch StepLR: gamma^floor(step / step_size).
class StepLr : public LrSchedule {
 public:
  StepLr(int64_t step_size, double gamma);
  std::string describe() const override;
};

// torch MultiStepLR: gamma^(number of milestones <= step); at most
// kLrScheduleTableSize milestones.
class MultiStepLr : public LrSchedule {
 public:
  MultiStepLr(std::vector<int64_t> milestones, double gamma);
  std::string describe() const override;
};

// torch ExponentialLR: gamma^step.
class ExponentialLr : public LrSchedule {
 public:
  explicit ExponentialLr(double gamma);
  std::string describe() const override;
};

// Linear warmup from 0 over `warmup` steps, then a half cosine from 1 down to
// min_factor at `total` steps (min_factor after that).
class WarmupCosineLr : public LrSchedule {
 public:
  WarmupCosineLr(int64_t warmup, int64_t total, double min_factor);
  std::string describe() const override;
};

// torch CyclicLR (without momentum cycling): a triangle between base_lr and
// max_lr, step_size_up steps up then step_size_down steps down; triangular2
// halves the height every cycle, exp_range scales it by gamma^step.
class CyclicLr : public LrSchedule {
 public:
  CyclicLr(CyclicMode mode, double base_lr, double max_lr, double step_size_up, double step_size_down, double gamma,
           double optimizer_lr);
  std::string describe() const override;
};

// torch OneCycleLR (without momentum cycling): from max_lr / div_factor up to
// max_lr over pct_start of the run, then down to max_lr / (div_factor *
// final_div_factor); three_phase goes back down to the start lr first.
struct OneCycleOptions {
  double max_lr = 0.01;
  int64_t total_steps = 0;
  double pct_start = 0.3;
  bool cosine_anneal = true;  // false: linear (torch anneal_strategy='linear')
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};
class OneCycleLr : public LrSchedule {
 public:
  OneCycleLr(OneCycleOptions options, double optimizer_lr);  // steps past the end keep the final lr
  std::string describe() const override;

 private:
  OneCycleOptions options_;
};

// Builds a schedule from a CLI string "name" or "name:key=value,key=value". A list
// value continues over commas: "multistep:milestones=30,60,90,gamma=0.1".
//   constant
//   step:step_size=30[,gamma=0.1]
//   multistep:milestones=30,60[,gamma=0.1]
//   exponential:gamma=0.95
//   cosine[:warmup=0,total=<run>,min_factor=0]
//   cyclic:max_lr=..[,base_lr=<optimizer lr>,step_size_up=2000,step_size_down=<up>,mode=triangular,gamma=1]
//   onecycle[:max_lr=<optimizer lr>,total=<run>,pct_start=0.3,anneal=cos,div_factor=25,
//             final_div_factor=1e4,three_phase=0]
// Errors name the schedule and the bad key, and list the valid names or keys.
std::unique_ptr<LrSchedule> make_lr_schedule(const std::string& spec, const LrScheduleContext& context);
std::vector<std::string> lr_schedule_names();

}  // namespace kiln::optim
