// batch_norm and batch_norm_act: boundary checks, device dispatch, and their
// backward right below. Both are one function, normalize_and_activate, with the
// activation identity for batch_norm (docs/ops/fused.md says why the fusion pays).
#include "engine/ops/norm.h"

#include <cstdlib>
#include <initializer_list>
#include <type_traits>

#include "engine/autograd/tape.h"
#include "engine/core/env_setting.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

DType batch_norm_parameter_dtype(DType x_dtype) { return x_dtype == DType::f64 ? DType::f64 : DType::f32; }

ChannelView channel_view(const Tensor& t) {
  const std::vector<int64_t> strides = t.strides();
  ChannelView v;
  v.N = t.size(0);
  v.C = t.size(1);
  v.stride_n = strides[0];
  v.stride_c = strides[1];
  if (t.dim() == 4) {
    v.L = t.size(2) * t.size(3);
    v.stride_l = strides[3];  // (h, w) flattens with w's stride in both layouts
    v.channels_last = t.layout() == Layout::nhwc;
  } else {
    v.L = 1;
    v.stride_l = 1;
  }
  return v;
}

// ---------------------------------------------------------------- CPU path
CpuNormPath parse_cpu_norm_path(const std::string& text, const char* where) {
  if (text == "fast") return CpuNormPath::fast;
  if (text == "reference") return CpuNormPath::reference;
  KILN_FAIL(where, ": expected fast or reference, got '", text, "'");
}

static EnvSetting<CpuNormPath>& cpu_norm_path_setting() {
  static EnvSetting<CpuNormPath> setting("KILN_CPU_NORM", CpuNormPath::fast, parse_cpu_norm_path);
  return setting;
}
CpuNormPath cpu_norm_path() { return cpu_norm_path_setting().get(); }
void set_cpu_norm_path(CpuNormPath path) { cpu_norm_path_setting().set(path); }

// An f32 batch norm runs cpu_fast:: when it is chosen and every array it touches has
// contiguous (n, c) planes.
static bool cpu_fast_norm(std::initializer_list<ChannelView> views) {
  if (cpu_norm_path() != CpuNormPath::fast) return false;
  for (const ChannelView& v : views)
    if (!cpu_fast::applies(v)) return false;
  return true;
}

// A per-channel tensor (weight, bias, running stats) must be (C), on x's device,
// in the parameter dtype. Undefined is allowed (the caller decides when).
static void check_per_channel(const char* op, const char* name, const Tensor& t, const Tensor& x) {
  if (!t.defined()) return;
  const int64_t channels = x.size(1);
  // A 1-D shape reads "(32)" here, as in the math, rather than Shape's Python-style "(32,)".
  KILN_CHECK(t.dim() == 1 && t.size(0) == channels, op, ": ", name, " must be (C) = (", channels, "), got ",
             t.dim() == 1 ? str("(", t.size(0), ")") : t.shape().to_string());
  KILN_CHECK(t.device() == x.device(), op, ": ", name, " must be on x's device ", x.device().to_string(),
             ", got ", t.describe());
  const DType want = batch_norm_parameter_dtype(x.dtype());
  KILN_CHECK(t.dtype() == want, op, ": ", name, " must be ", dtype_name(want), " for an x of dtype ",
             dtype_name(x.dtype()), " (statistics and affine parameters stay in f32 for f16/bf16 x), got ",
             t.describe());
}

template <class T> static const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

namespace {

// y = f(batch_norm(x)) and its tape node; `op` names the public op in errors and on the tape.
Tensor normalize_and_activate(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                              const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& options,
                              NormActivation activation) {
  check_defined(op, "x", x);
  KILN_CHECK(x.dim() == 4 || x.dim() == 2, op, ": x must be 4-D (N, C, H, W) or 2-D (N, C), got shape ", x.shape());
  check_dtype_supported(op, x);
  check_per_channel(op, "weight", weight, x);
  check_per_channel(op, "bias", bias, x);
  check_per_channel(op, "running_mean", running_mean, x);
  check_per_channel(op, "running_var", running_var, x);
  KILN_CHECK(running_mean.defined() == running_var.defined(), op,
             ": pass both running_mean and running_var, or neither");
  KILN_CHECK(options.training || running_mean.defined(), op,
             ": eval mode (training = false) needs running_mean and running_var");
  KILN_CHECK(!running_mean.defined() || (!needs_grad(running_mean) && !needs_grad(running_var)), op,
             ": running_mean and running_var are buffers updated in place and must not require grad");
  const ChannelView xv = channel_view(x);
  KILN_CHECK(!options.training || xv.count() > 1, op, ": training needs more than 1 value per channel, got x ",
             x.shape(), " (M = N*H*W = ", xv.count(), ")");
  KILN_CHECK(options.eps > 0, op, ": eps must be > 0, got ", options.eps);

  Tensor y = empty_like(x);
  const TensorOptions stat_options{batch_norm_parameter_dtype(x.dtype()), x.device(), Layout::nchw};
  Tensor save_mean = empty(Shape{xv.C}, stat_options);
  Tensor save_invstd = empty(Shape{xv.C}, stat_options);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
          T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
          if constexpr (std::is_same_v<T, float>) {
            if (cpu_fast_norm({xv, channel_view(y)})) {
              if (options.training)
                cpu_fast::batch_norm_stats(x.data<T>(), xv, options.momentum, options.eps, rm, rv,
                                           save_mean.data<T>(), save_invstd.data<T>());
              else
                cpu::batch_norm_stats<T>(x.data<T>(), xv, false, options.momentum, options.eps, rm, rv,
                                         save_mean.data<T>(), save_invstd.data<T>());
              cpu_fast::batch_norm_forward(x.data<T>(), xv, save_mean.data<T>(), save_invstd.data<T>(),
                                           data_or_null<T>(weight), data_or_null<T>(bias), activation, y.data<T>(),
                                           channel_view(y));
              return;
            }
          }
          cpu::batch_norm_stats<T>(x.data<T>(), xv, options.training, options.momentum, options.eps, rm, rv,
                                   save_mean.data<T>(), save_invstd.data<T>());
          cpu::batch_norm_forward<T>(x.data<T>(), xv, save_mean.data<T>(), save_invstd.data<T>(),
                                     data_or_null<T>(weight), data_or_null<T>(bias), activation, y.data<T>(),
                                     channel_view(y));
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::batch_norm_stats(x, options.training, options.momentum, options.eps, running_mean,
                                              running_var, save_mean, save_invstd));
        KILN_CUDA_ONLY(cuda::batch_norm_forward(x, save_mean, save_invstd, weight, bias, activation, y));
      });

  if (any_needs_grad({x, weight, bias})) {
    const Tensor x_saved = x.detach();
    const Tensor weight_saved = weight.defined() ? weight.detach() : Tensor();
    const bool training = options.training;
    // The fused activation's backward reads f' off y; saved detached, so that the
    // node does not own the tensor that owns it. The rule is fixed now, as relu's is.
    const Tensor y_saved = activation == NormActivation::identity ? Tensor() : y.detach();
    const GradientRule rule = activation != NormActivation::identity && guided_backprop_enabled()
                                  ? GradientRule::guided
                                  : GradientRule::exact;
    record(y, op, {x, weight, bias},
           [x_saved, weight_saved, save_mean, save_invstd, training, activation, rule, y_saved](
               const Tensor& grad_output, const std::vector<bool>& mask) {
             BatchNormGrads grads = batch_norm_backward(grad_output, x_saved, weight_saved, save_mean, save_invstd,
                                                        training, {mask[0], mask[1], mask[2]}, activation, rule,
                                                        y_saved);
             return std::vector<Tensor>{grads.grad_input, grads.grad_weight, grads.grad_bias};
           });
  }
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& options) {
  return normalize_and_activate("batch_norm", x, weight, bias, running_mean, running_var, options,
                                NormActivation::identity);
}

bool batch_norm_can_fuse(Activation activation) {
  return activation == Activation::relu || activation == Activation::relu6;
}

Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                      const Tensor& running_var, const BatchNormOptions& options, Activation activation) {
  KILN_CHECK(batch_norm_can_fuse(activation), "batch_norm_act: the activation must be relu or relu6, got ",
             activation_name(activation), " (call batch_norm, then the activation)");
  return normalize_and_activate("batch_norm_act", x, weight, bias, running_mean, running_var, options,
                                activation == Activation::relu ? NormActivation::relu : NormActivation::relu6);
}

BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool training,
                                   const std::array<bool, 3>& grad_input_mask, NormActivation activation,
                                   GradientRule rule, const Tensor& output) {
  const char* op = "batch_norm_backward";
  KILN_CHECK(grad_output.shape() == x.shape(), op, ": grad_output must have x's shape ", x.shape(), ", got ",
             grad_output.shape());
  check_same_dtype(op, {grad_output, x});
  check_same_device(op, {grad_output, x});
  const bool fused = activation != NormActivation::identity;
  KILN_CHECK(!fused || (output.defined() && output.shape() == x.shape()), op,
             ": a fused activation needs the op's output y, shaped like x ", x.shape());
  if (fused) {
    check_same_dtype(op, {output, x});
    check_same_device(op, {output, x});
  }
  BatchNormGrads grads;
  const TensorOptions param_options{save_mean.dtype(), x.device(), Layout::nchw};
  if (grad_input_mask[0]) grads.grad_input = empty_like(x);
  if (grad_input_mask[1]) grads.grad_weight = empty(save_mean.shape(), param_options);
  if (grad_input_mask[2]) grads.grad_bias = empty(save_mean.shape(), param_options);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          auto out_or_null = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
          const ChannelView giv = grads.grad_input.defined() ? channel_view(grads.grad_input) : channel_view(x);
          ActivationGrad<T> through;
          if (fused) through = {activation, rule == GradientRule::guided, output.data<T>(), channel_view(output)};
          if constexpr (std::is_same_v<T, float>) {
            if (cpu_fast_norm({channel_view(grad_output), channel_view(x), giv,
                               fused ? channel_view(output) : channel_view(x)})) {
              cpu_fast::batch_norm_backward(grad_output.data<T>(), channel_view(grad_output), through, x.data<T>(),
                                            channel_view(x), save_mean.data<T>(), save_invstd.data<T>(),
                                            data_or_null<T>(weight), training, out_or_null(grads.grad_input), giv,
                                            out_or_null(grads.grad_weight), out_or_null(grads.grad_bias));
              return;
            }
          }
          cpu::batch_norm_backward<T>(grad_output.data<T>(), channel_view(grad_output), through, x.data<T>(),
                                      channel_view(x),
                                      save_mean.data<T>(), save_invstd.data<T>(), data_or_null<T>(weight), training,
                                      out_or_null(grads.grad_input), giv, out_or_null(grads.grad_weight),
                                      out_or_null(grads.grad_bias));
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::batch_norm_backward(grad_output, activation, rule, output, x, save_mean, save_invstd,
                                                 weight, training, grads.grad_input, grads.grad_weight,
                                                 grads.grad_bias));
      });
  return grads;
}

}  // namespace kiln
