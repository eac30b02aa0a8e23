// Batch normalisation (Ioffe & Szegedy 2015), as torch.nn.functional.batch_norm.
//
//   x: (N, C, H, W) in nchw or nhwc, or (N, C). Per channel c, over the M = N*H*W
//   values x_i of that channel:
//     mean = (1/M) sum x_i        var = (1/M) sum (x_i - mean)^2   (biased)
//     invstd = 1 / sqrt(var + eps)
//     y_i = (x_i - mean) * invstd * weight[c] + bias[c]
//   training: mean/var are the batch's; the running buffers are updated in place
//     (no autograd) with the *unbiased* variance var * M / (M - 1):
//       running_mean = (1 - momentum) * running_mean + momentum * mean
//       running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)
//   eval: mean = running_mean, var = running_var; nothing is updated.
//
//   Backward (derived in docs/ops/norm.md), with xhat_i = (x_i - mean) * invstd:
//     grad_bias[c]   = sum dy_i
//     grad_weight[c] = sum dy_i * xhat_i
//     training: grad_x_i = weight * invstd / M * (M dy_i - sum dy - xhat_i sum dy xhat)
//     eval:     grad_x_i = weight * invstd * dy_i      (mean and var are constants)
//   Saved for backward: x, weight, and the per-channel mean and invstd used.
//
// Dtypes ("parameter dtype"): weight, bias, running_mean, running_var and the saved
// statistics are f64 when x is f64 and f32 otherwise, so that on the GPU an f16 or
// bf16 x keeps its statistics and affine parameters in f32 (as cuDNN and PyTorch's
// mixed-precision batch norm do). Output layout = input layout.
#pragma once
#include <array>
#include <cstdint>

#include "engine/tensor/tensor.h"

namespace kiln {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
};

// x: (N, C, H, W) or (N, C); weight, bias: (C) or undefined (affine off);
// running_mean, running_var: (C) or undefined (allowed only when training: then
// nothing is updated). Returns y, shaped and laid out like x.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, const BatchNormOptions& options);

// The dtype weight, bias, running stats and saved statistics have for an x of `x_dtype`.
DType batch_norm_parameter_dtype(DType x_dtype);

// Gradients of batch_norm; each is undefined where grad_input_mask (x, weight, bias)
// says it is not needed. All are returned freshly allocated (overwritten, never
// accumulated): the tape accumulates into leaves.
struct BatchNormGrads {
  Tensor grad_input;   // (N, C, H, W) or (N, C), x's layout
  Tensor grad_weight;  // (C)
  Tensor grad_bias;    // (C)
};
// grad_output: like x (any layout); weight: (C) or undefined; save_mean, save_invstd: (C).
BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool training,
                                   const std::array<bool, 3>& grad_input_mask);

// x seen as (N, C, L), L = H*W: element (n, c, l) is at n*stride_n + c*stride_c +
// l*stride_l. Both layouts flatten (h, w) with one stride (1 in nchw, C in nhwc).
struct ChannelView {
  int64_t N = 0, C = 0, L = 1;
  int64_t stride_n = 0, stride_c = 0, stride_l = 0;
  bool channels_last = false;  // memory order (n, l, c) instead of (n, c, l)
  constexpr int64_t count() const { return N * L; }  // M: values per channel (constexpr: kernels call it)
};
ChannelView channel_view(const Tensor& t);

// Backend functions. T = x's dtype on the CPU (float or double; statistics in T too).
// Pointers to optional tensors (weight, bias, running stats, gradients) may be null.
namespace cpu {
// mean, invstd: (C). training: batch statistics, and running stats updated if given;
// eval: from running_mean / running_var.
template <class T>
void batch_norm_stats(const T* x, const ChannelView& xv, bool training, double momentum, double eps,
                      T* running_mean, T* running_var, T* mean, T* invstd);
template <class T>
void batch_norm_forward(const T* x, const ChannelView& xv, const T* mean, const T* invstd, const T* weight,
                        const T* bias, T* y, const ChannelView& yv);
template <class T>
void batch_norm_backward(const T* grad_output, const ChannelView& gv, const T* x, const ChannelView& xv,
                         const T* mean, const T* invstd, const T* weight, bool training, T* grad_input,
                         const ChannelView& giv, T* grad_weight, T* grad_bias);
}  // namespace cpu
namespace cuda {
// Same contracts; x, y, grad_output, grad_input in f32/f16/bf16, the rest f32.
void batch_norm_stats(const Tensor& x, bool training, double momentum, double eps, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& mean, const Tensor& invstd);
void batch_norm_forward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                        const Tensor& bias, const Tensor& y);
void batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                         const Tensor& weight, bool training, const Tensor& grad_input, const Tensor& grad_weight,
                         const Tensor& grad_bias);
}  // namespace cuda

}  // namespace kiln
