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
//
// batch_norm_act (docs/ops/fused.md) is batch_norm followed by relu or relu6 in one
// op and one tape node: y = f(batch_norm(x)). The backend functions below take the
// activation (NormActivation::identity for plain batch_norm), so both ops share one
// CPU reference and one set of CUDA kernels. Backward reads f' off the output y
// (relu: y > 0; relu6: 0 < y < 6) and applies it to dy inside batch norm's own
// reduction and input-gradient pass: the pre-activation batch_norm(x) is never
// stored, and the masked gradient f'(z) * dy is never written out.
#pragma once
#include <array>
#include <cstdint>

#include "engine/core/rng.h"  // KILN_HOST_DEVICE
#include "engine/ops/activation.h"
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

// y = activation(batch_norm(x)) for activation relu or relu6, one tape node. Saves x,
// weight, mean, invstd and y (detached); the gradient rule (exact or guided, see
// engine/autograd/grad_mode.h) is fixed when the op is recorded, as relu's is.
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                      const Tensor& running_var, const BatchNormOptions& options, Activation activation);
// True for the activations batch_norm_act fuses: relu and relu6.
bool batch_norm_can_fuse(Activation activation);

// The activation inside the batch norm kernels: identity for batch_norm itself.
enum class NormActivation { identity, relu, relu6 };

// z -> f(z). Written as relu and relu6 in engine/ops/cpu/activation_cpu.cpp are.
template <class T> KILN_HOST_DEVICE inline T apply_norm_activation(NormActivation a, T z) {
  if (a == NormActivation::relu) return z > T(0) ? z : T(0);
  if (a == NormActivation::relu6) return z > T(0) ? (z < T(6) ? z : T(6)) : T(0);
  return z;
}

// The gradient that reaches batch norm's output z = batch_norm(x) from dy = dL/dy,
// with f'(z) read off y = f(z): relu' = [y > 0], relu6' = [0 < y < 6] (the same
// values relu and relu6 take at their kinks, 0 at z = 0 and at z = 6). guided:
// f'(z) * max(dy, 0), guided backpropagation's rule (GradientRule::guided).
template <class T> KILN_HOST_DEVICE inline T gradient_through_activation(NormActivation a, bool guided, T y, T dy) {
  if (a == NormActivation::identity) return dy;
  const bool active = a == NormActivation::relu ? y > T(0) : (y > T(0) && y < T(6));
  if (guided && dy < T(0)) return T(0);
  return active ? dy : T(0);
}

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
// For batch_norm_act: `activation` and `rule` as recorded, and `output` its y (any
// layout, x's dtype); grad_output is then dL/dy and is taken through f' first.
BatchNormGrads batch_norm_backward(const Tensor& grad_output, const Tensor& x, const Tensor& weight,
                                   const Tensor& save_mean, const Tensor& save_invstd, bool training,
                                   const std::array<bool, 3>& grad_input_mask,
                                   NormActivation activation = NormActivation::identity,
                                   GradientRule rule = GradientRule::exact, const Tensor& output = Tensor());

// x seen as (N, C, L), L = H*W: element (n, c, l) is at n*stride_n + c*stride_c +
// l*stride_l. Both layouts flatten (h, w) with one stride (1 in nchw, C in nhwc).
struct ChannelView {
  int64_t N = 0, C = 0, L = 1;
  int64_t stride_n = 0, stride_c = 0, stride_l = 0;
  bool channels_last = false;  // memory order (n, l, c) instead of (n, c, l)
  constexpr int64_t count() const { return N * L; }  // M: values per channel (constexpr: kernels call it)
};
ChannelView channel_view(const Tensor& t);

// What the backward kernels need to take dy through a fused activation: which one,
// the rule, and the output y it reads f' from (null for identity).
template <class T> struct ActivationGrad {
  NormActivation activation = NormActivation::identity;
  bool guided = false;
  const T* y = nullptr;
  ChannelView yv;
};

// Backend functions. T = x's dtype on the CPU (float or double; statistics in T too).
// Pointers to optional tensors (weight, bias, running stats, gradients) may be null.
namespace cpu {
// mean, invstd: (C). training: batch statistics, and running stats updated if given;
// eval: from running_mean / running_var.
template <class T>
void batch_norm_stats(const T* x, const ChannelView& xv, bool training, double momentum, double eps,
                      T* running_mean, T* running_var, T* mean, T* invstd);
// y = f((x - mean) * invstd * weight + bias), f = activation.
template <class T>
void batch_norm_forward(const T* x, const ChannelView& xv, const T* mean, const T* invstd, const T* weight,
                        const T* bias, NormActivation activation, T* y, const ChannelView& yv);
template <class T>
void batch_norm_backward(const T* grad_output, const ChannelView& gv, const ActivationGrad<T>& activation,
                         const T* x, const ChannelView& xv, const T* mean, const T* invstd, const T* weight,
                         bool training, T* grad_input, const ChannelView& giv, T* grad_weight, T* grad_bias);
}  // namespace cpu
// The fast path (engine/ops/cpu_fast/batch_norm_fast.cpp): the same contracts in f32,
// for arrays whose (n, c) planes are contiguous (nchw: applies(view)); stats for
// training only (eval's statistics are a copy). Tested against cpu:: above
// (tests/ops/test_batch_norm_fast.cpp).
namespace cpu_fast {
bool applies(const ChannelView& v);
void batch_norm_stats(const float* x, const ChannelView& xv, double momentum, double eps, float* running_mean,
                      float* running_var, float* mean, float* invstd);
void batch_norm_forward(const float* x, const ChannelView& xv, const float* mean, const float* invstd,
                        const float* weight, const float* bias, NormActivation activation, float* y,
                        const ChannelView& yv);
void batch_norm_backward(const float* grad_output, const ChannelView& gv, const ActivationGrad<float>& activation,
                         const float* x, const ChannelView& xv, const float* mean, const float* invstd,
                         const float* weight, bool training, float* grad_input, const ChannelView& giv,
                         float* grad_weight, float* grad_bias);
}  // namespace cpu_fast

// Which CPU implementation runs an f32 batch norm: `fast` (cpu_fast::, the default,
// for nchw arrays; nhwc and f64 run the reference) or `reference` (cpu::). The
// starting value comes from the environment variable KILN_CPU_NORM (fast | reference).
enum class CpuNormPath { fast, reference };
CpuNormPath cpu_norm_path();
void set_cpu_norm_path(CpuNormPath path);
CpuNormPath parse_cpu_norm_path(const std::string& text, const char* where);

namespace cuda {
// Same contracts; x, y, grad_output, grad_input in f32/f16/bf16, the rest f32.
void batch_norm_stats(const Tensor& x, bool training, double momentum, double eps, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& mean, const Tensor& invstd);
void batch_norm_forward(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                        const Tensor& bias, NormActivation activation, const Tensor& y);
// output: y of batch_norm_act (undefined for identity).
void batch_norm_backward(const Tensor& grad_output, NormActivation activation, GradientRule rule,
                         const Tensor& output, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                         const Tensor& weight, bool training, const Tensor& grad_input, const Tensor& grad_weight,
                         const Tensor& grad_bias);
}  // namespace cuda

}  // namespace kiln
