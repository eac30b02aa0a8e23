// batch_norm: boundary checks, device dispatch, and its backward right below.
#include "engine/ops/norm.h"

#include "engine/autograd/tape.h"
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

// A per-channel tensor (weight, bias, running stats) must be (C), on x's device,
// in the parameter dtype. Undefined is allowed (the caller decides when).
static void check_per_channel(const char* name, const Tensor& t, const Tensor& x) {
  if (!t.defined()) return;
  const int64_t channels = x.size(1);
  // A 1-D shape reads "(32)" here, as in the math, rather than Shape's Python-style "(32,)".
  KILN_CHECK(t.dim() == 1 && t.size(0) == channels, "batch_norm: ", name, " must be (C) = (", channels, "), got ",
             t.dim() == 1 ? str("(", t.size(0), ")") : t.shape().to_string());
  KILN_CHECK(t.device() == x.device(), "batch_norm: ", name, " must be on x's device ", x.device().to_string(),
             ", got ", t.describe());
  const DType want = batch_norm_parameter_dtype(x.dtype());
  KILN_CHECK(t.dtype() == want, "batch_norm: ", name, " must be ", dtype_name(want), " for an x of dtype ",
             dtype_name(x.dtype()), " (statistics and affine parameters stay in f32 for f16/bf16 x), got ",
             t.describe());
}

template <class T> static const T* data_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& options) {
  const char* op = "batch_norm";
  check_defined(op, "x", x);
  KILN_CHECK(x.dim() == 4 || x.dim() == 2, "batch_norm: x must be 4-D (N, C, H, W) or 2-D (N, C), got shape ",
             x.shape());
  check_dtype_supported(op, x);
  check_per_channel("weight", weight, x);
  check_per_channel("bias", bias, x);
  check_per_channel("running_mean", running_mean, x);
  check_per_channel("running_var", running_var, x);
  KILN_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: pass both running_mean and running_var, or neither");
  KILN_CHECK(options.training || running_mean.defined(),
             "batch_norm: eval mode (training = false) needs running_mean and running_var");
  KILN_CHECK(!running_mean.defined() || (!needs_grad(running_mean) && !needs_grad(running_var)),
             "batch_norm: running_mean and running_var are buffers updated in place and must not require grad");
  const ChannelView xv = channel_view(x);
  KILN_CHECK(!options.training || xv.count() > 1, "batch_norm: training needs more than 1 value per channel, got x ",
             x.shape(), " (M = N*H*W = ", xv.count(), ")");
  KILN_CHECK(options.eps > 0, "batch_norm: eps must be > 0, got ", options.eps);

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
          cpu::batch_norm_stats<T>(x.data<T>(), xv, options.training, options.momentum, options.eps, rm, rv,
                                   save_mean.data<T>(), save_invstd.data<T>());
          cpu::batch_norm_forward<T>(x.data<T>(), xv, save_mean.data<T>(), save_invstd.data<T>(),
                                     data_or_null<T>(weight), data_or_null<T>(bias), y.data<T>(), channel_view(y));
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::batch_norm_stats(x, options.training, options.momentum, options.eps, running_mean,
                                              running_var, save_mean, save_invstd));
        KILN_CUDA_ONLY(cuda::batch_norm_forward(x, save_mean, save_invstd, weight, bias, y));
      });

  if (any_needs_grad({x, weight, bias})) {
    const Tensor x_saved = x.detach();
    const Tensor weight_saved = weight.defined() ? weight.detach() : Tensor();
    const bool training = options.training;
    record(y, op, {x, weight, bias},
           [x_saved, weight_saved, save_mean, save_invstd, training](const Tensor& grad_output,
                                                                    const std::vector<bool>& mask) {
             BatchNormGrads grads = batch_norm_backward(grad_output, x_saved, weight_saved, save_mean, save_invstd,
                                                        training, {mask[0], mask[1], mask[2]});
             return std::vector<Tensor>{grads.grad_input, grads.grad_weight, grads.grad_bias};
           });
  }
  return y;
}

BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool training,
                                   const std::array<bool, 3>& grad_input_mask) {
  const char* op = "batch_norm_backward";
  KILN_CHECK(grad_output.shape() == x.shape(), op, ": grad_output must have x's shape ", x.shape(), ", got ",
             grad_output.shape());
  check_same_dtype(op, {grad_output, x});
  check_same_device(op, {grad_output, x});
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
          cpu::batch_norm_backward<T>(grad_output.data<T>(), channel_view(grad_output), x.data<T>(), channel_view(x),
                                      save_mean.data<T>(), save_invstd.data<T>(), data_or_null<T>(weight), training,
                                      out_or_null(grads.grad_input), giv, out_or_null(grads.grad_weight),
                                      out_or_null(grads.grad_bias));
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::batch_norm_backward(grad_output, x, save_mean, save_invstd, weight, training,
                                                 grads.grad_input, grads.grad_weight, grads.grad_bias));
      });
  return grads;
}

}  // namespace kiln
