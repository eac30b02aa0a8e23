// The learning-rate schedules as one pure function of the step, compiled by the
// host (engine/optim/lr_schedule.cpp: the schedule the trainer and the CPU use)
// and by the device (kernels/optim_sgd.cu, kernels/optim_adam.cu: the fused
// multi-tensor steps, which read the step count from device memory). Written once,
// so the two cannot drift apart; the formulas are torch.optim.lr_scheduler's
// (docs/optim.md). With t the number of steps already taken (0 for the first
// update) and f(t) the factor of each group's base lr:
//   constant     1
//   step         gamma^floor(t / step_size)
//   multistep    gamma^(number of milestones <= t)
//   exponential  gamma^t
//   cosine       t < warmup: t / warmup;  else min + (1 - min) (1 + cos(pi p)) / 2,
//                p = min(1, (t - warmup) / (total - warmup))
//   cyclic       Smith 2017 / torch CyclicLR: c = floor(1 + t / L), x = 1 + t / L - c,
//                L = up + down, h = x <= up/L ? x L / up : (x - 1) / (up/L - 1),
//                lr = base + (max - base) h s,  s = 1 | 2^-(c-1) | gamma^t
//   onecycle     torch OneCycleLR: the phase holding t, interpolated (cos or linear)
// cyclic and onecycle give absolute lrs; f = lr / optimizer_lr.
//
// Bit for bit on host and device. Everything is computed in double from
// operations IEEE 754 rounds correctly (+, -, *, /, floor), in the order written:
//   - no libm: cos(pi p) is a Taylor polynomial of our own (within 2 ulps of 1 of
//     libm's on [0, 1]) and gamma^n is powering by squaring (the same products in
//     the same order), so a device libm that differs from glibc in the last bit
//     cannot change the lr;
//   - no fused multiply-add: on the device every product is __dmul_rn, which nvcc
//     never contracts into an FMA; the host compiler (g++ on x86-64 without -mfma)
//     does not contract either.
// The kernels then round base_lr * f(t) to f32 exactly as the host paths do, so
// the f32 lr of every step is the same bits on the CPU, the host-stepped CUDA
// path and the device-stepped one (tests/optim/test_lr_schedule_device.cpp).
// Header-only and free of kiln types so that nvcc and the host compiler both take it.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define KILN_LR_HOST_DEVICE __host__ __device__
#else
#define KILN_LR_HOST_DEVICE
#endif

namespace kiln::optim {

enum class LrScheduleKind : int32_t { constant, step, multistep, exponential, cosine, cyclic, onecycle };
enum class CyclicMode : int32_t { triangular, triangular2, exp_range };

// Room in LrScheduleParams::table: multistep milestones, or onecycle's phases
// (three numbers each, at most three phases).
constexpr int kLrScheduleTableSize = 9;

// Everything a schedule is, as plain numbers: it travels by value in a kernel's
// arguments (160 bytes, next to the multi-tensor tables' ~3.7 KiB).
struct LrScheduleParams {
  LrScheduleKind kind = LrScheduleKind::constant;
  CyclicMode cyclic_mode = CyclicMode::triangular;
  int32_t table_size = 0;      // milestones, or 3 * onecycle phases
  int32_t cosine_anneal = 1;   // onecycle: 1 cos, 0 linear
  double optimizer_lr = 1;     // cyclic, onecycle: their absolute lrs are divided by this
  double gamma = 1;            // step, multistep, exponential, cyclic exp_range
  double period = 1;           // step: step_size; cyclic: step_size_up
  double period_down = 1;      // cyclic: step_size_down
  double warmup = 0, total = 0, min_factor = 0;  // cosine (onecycle: total)
  double low_lr = 0, high_lr = 0;                // cyclic: base_lr, max_lr
  // multistep: sorted milestones; onecycle: {end_step, start_lr, end_lr} per phase
  double table[kLrScheduleTableSize] = {};
};

namespace lr_math {

// a * b rounded once: nvcc would otherwise fuse it with a following + into an FMA.
KILN_LR_HOST_DEVICE inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// floor for the non-negative values used here (exact: a double >= 2^52 is an integer).
KILN_LR_HOST_DEVICE inline double floor_nonnegative(double x) {
  if (x >= 4503599627370496.0) return x;
  const double truncated = static_cast<double>(static_cast<int64_t>(x));
  return truncated > x ? truncated - 1 : truncated;
}

// base^n for an integer n >= 0 (given as a double), by squaring.
KILN_LR_HOST_DEVICE inline double power(double base, double n) {
  double result = 1;
  for (int64_t e = static_cast<int64_t>(n); e > 0; e >>= 1) {
    if (e & 1) result = mul(result, base);
    base = mul(base, base);
  }
  return result;
}

// cos(y) and sin(y) for |y| <= pi/4 from their Taylor series (Horner in y^2): the
// first omitted terms are below 1e-17.
KILN_LR_HOST_DEVICE inline double cos_small(double y) {
  const double z = mul(y, y);
  double c = 4.779477332387385e-14;
  c = mul(c, z) + -1.1470745597729725e-11;
  c = mul(c, z) + 2.08767569878681e-09;
  c = mul(c, z) + -2.755731922398589e-07;
  c = mul(c, z) + 2.48015873015873e-05;
  c = mul(c, z) + -0.001388888888888889;
  c = mul(c, z) + 0.041666666666666664;
  c = mul(c, z) + -0.5;
  return mul(c, z) + 1.0;
}
KILN_LR_HOST_DEVICE inline double sin_small(double y) {
  const double z = mul(y, y);
  double s = 2.8114572543455206e-15;
  s = mul(s, z) + -7.647163731819816e-13;
  s = mul(s, z) + 1.6059043836821613e-10;
  s = mul(s, z) + -2.505210838544172e-08;
  s = mul(s, z) + 2.7557319223985893e-06;
  s = mul(s, z) + -0.0001984126984126984;
  s = mul(s, z) + 0.008333333333333333;
  s = mul(s, z) + -0.16666666666666666;
  return mul(mul(s, z), y) + y;
}

// cos(pi p), folded onto |pi q| <= pi/4. The differences 0.5 - p and 1 - p are
// exact on [0, 1] (Sterbenz), so the folding adds no rounding there. Any other p
// (onecycle's pct outside its phase, when torch-legal settings give a phase of
// negative length) is first brought into [0, 1] by cos's symmetry and period 2,
// also exactly; the Taylor polynomials alone would be far off, or overflow.
KILN_LR_HOST_DEVICE inline double cos_pi(double p) {
  const double pi = 3.141592653589793;
  if (p < 0.0 || p > 1.0) {
    p = p < 0.0 ? -p : p;
    p = p - mul(2.0, floor_nonnegative(p / 2.0));  // [0, 2)
    if (p > 1.0) p = 2.0 - p;
  }
  if (p <= 0.25) return cos_small(mul(pi, p));
  if (p <= 0.75) return sin_small(mul(pi, 0.5 - p));
  return -cos_small(mul(pi, 1.0 - p));
}

}  // namespace lr_math

// The factor of every group's base lr for the update after `step` steps (0, 1, 2, ...;
// an integer held in a double, as the device counts it).
KILN_LR_HOST_DEVICE inline double lr_schedule_factor(const LrScheduleParams& s, double step) {
  using namespace lr_math;
  switch (s.kind) {
    case LrScheduleKind::constant:
      return 1.0;
    case LrScheduleKind::step:
      return power(s.gamma, floor_nonnegative(step / s.period));
    case LrScheduleKind::multistep: {
      // torch's bisect_right: a milestone at `step` already applies at `step`
      int passed = 0;
      for (int i = 0; i < s.table_size; ++i) passed += s.table[i] <= step ? 1 : 0;
      return power(s.gamma, passed);
    }
    case LrScheduleKind::exponential:
      return power(s.gamma, step);
    case LrScheduleKind::cosine: {
      // Warmup starts at 0: the first update is the gentlest, while the statistics
      // of a freshly initialised network (and Adam's v) are least reliable.
      if (step < s.warmup) return step / s.warmup;
      double progress = (step - s.warmup) / (s.total - s.warmup);
      if (progress > 1.0) progress = 1.0;
      return s.min_factor + mul(mul(1.0 - s.min_factor, 0.5), 1.0 + cos_pi(progress));
    }
    case LrScheduleKind::cyclic: {
      // torch CyclicLR.get_lr with last_epoch = step
      const double total = s.period + s.period_down;
      const double step_ratio = s.period / total;
      const double cycle = floor_nonnegative(1.0 + step / total);
      const double x = 1.0 + step / total - cycle;  // position in the cycle, [0, 1)
      const double height_fraction = x <= step_ratio ? x / step_ratio : (x - 1.0) / (step_ratio - 1.0);
      const double base_height = mul(s.high_lr - s.low_lr, height_fraction);
      double scale = 1.0;  // triangular
      if (s.cyclic_mode == CyclicMode::triangular2) scale = power(0.5, cycle - 1.0);  // exact: a power of 2
      if (s.cyclic_mode == CyclicMode::exp_range) scale = power(s.gamma, step);   // per step, not per cycle
      // At the foot of a cycle the height is 0 whatever the scale; 0 * inf (gamma^step
      // overflowed, far into a run) would be NaN.
      if (base_height == 0.0) return s.low_lr / s.optimizer_lr;
      return (s.low_lr + mul(base_height, scale)) / s.optimizer_lr;
    }
    case LrScheduleKind::onecycle: {
      // torch raises past total_steps; a pure function holds the last lr
      const double t = step < s.total - 1 ? step : s.total - 1;
      const int phases = s.table_size / 3;
      double start_step = 0;
      for (int i = 0; i < phases; ++i) {
        const double end_step = s.table[3 * i], start_lr = s.table[3 * i + 1], end_lr = s.table[3 * i + 2];
        if (t <= end_step || i + 1 == phases) {
          const double pct = (t - start_step) / (end_step - start_step);
          const double lr = s.cosine_anneal ? end_lr + mul((start_lr - end_lr) / 2.0, cos_pi(pct) + 1.0)
                                            : mul(end_lr - start_lr, pct) + start_lr;
          return lr / s.optimizer_lr;
        }
        start_step = end_step;
      }
      return 1.0;  // no phases: the constructor refuses that
    }
  }
  return 1.0;
}

// What a fused multi-tensor step needs to know its group's lr without a host
// argument that changes per step: base_lr * f(*step) read from device memory, or
// the host's lr when no schedule lives on the device (step == nullptr).
struct ScheduledLr {
  LrScheduleParams schedule;
  double base_lr = 0;
  double host_lr = 0;
  const double* step = nullptr;

  KILN_LR_HOST_DEVICE double lr() const {
    return step ? lr_math::mul(base_lr, lr_schedule_factor(schedule, *step)) : host_lr;
  }
};

}  // namespace kiln::optim
