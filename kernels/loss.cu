// Per-sample loss kernels: cross-entropy (one block per sample) and binary
// cross-entropy with logits (element-wise). The reduction to a scalar (mean, sum,
// weighted mean) is done afterwards by the ordinary sum/div ops (engine/ops/loss.cpp).
//
//   cross_entropy, logits (N, K) row-major, target (N) i64, class_weights (K) f32 or
//   absent, eps = label smoothing, lse_i = log sum_k e^(x_ik), -log p_ik = lse_i - x_ik:
//     losses_i         = (1 - eps) w_{y_i} (lse_i - x_{i,y_i}) + (eps / K) sum_k w_k (lse_i - x_ik)
//     target_weights_i = w_{y_i} (only for the weighted mean)
//     grad_logits_ij   = grad_losses_i [(1 - eps) w_{y_i} (p_ij - [j = y_i]) + (eps / K)(p_ij sum_k w_k - w_j)]
//     A label outside [0, K) gives NaN (the host checks labels only for CPU tensors,
//     to avoid a device-to-host sync every step).
//     Saved: the logits (the backward recomputes lse: cheaper than storing p).
//     Memory: forward reads the row 2-3 times (L1/L2 hits after the first);
//     backward reads it 3 times and writes it once: ~2 * sizeof(T) per logit from DRAM.
//   binary_cross_entropy_with_logits, n elements row-major, target and pos_weight f32:
//     lw = 1 + (pos_weight[i % K] - 1) y_i
//     losses_i      = (1 - y_i) x_i + lw softplus(-x_i)
//     grad_logits_i = grad_losses_i [(1 - y_i) - lw sigmoid(-x_i)]
//     Memory: forward 2 * sizeof(T) + 4 bytes per element; backward 3 * sizeof(T) + 4.
//   sigmoid_focal_loss, n elements row-major, target f32, p = sigmoid(x),
//   m = y sigmoid(-x) + (1 - y) p (= 1 - p_t), a_t = alpha y + (1 - alpha)(1 - y) (1 if alpha < 0),
//   ce = (1 - y) x + softplus(-x):
//     losses_i      = a_t ce m^gamma
//     grad_logits_i = grad_losses_i a_t [(p - y) m^gamma + ce gamma m^(gamma-1) (1 - 2y) p (1 - p)]
//     Memory: as BCE, forward 2 * sizeof(T) + 4 bytes per element; backward 3 * sizeof(T) + 4.
//   Dtypes: logits, losses and gradients f32, f16 or bf16; all math in f32.
#include "engine/cuda/context.h"
#include "engine/cuda/cuda_check.h"
#include "engine/ops/loss.h"
#include "kernels/common.cuh"
#include "kernels/row_reduce.cuh"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float class_weight(const float* class_weights, int64_t k) {
  return class_weights ? class_weights[k] : 1.f;
}

// lse = log sum_k e^(x_k) of one row, shared by every thread of the block.
template <class T>
__device__ float row_log_sum_exp(const T* row, int64_t K) {
  float local_max = -INFINITY;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) local_max = fmaxf(local_max, to_float(row[k]));
  const float max_value = block_max(local_max);
  float local_sum = 0.f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) local_sum += expf(to_float(row[k]) - max_value);
  return max_value + logf(block_sum(local_sum));
}

template <class T>
__global__ void cross_entropy_forward_kernel(const T* __restrict__ logits, const int64_t* __restrict__ target,
                                             const float* __restrict__ class_weights, T* __restrict__ losses,
                                             T* __restrict__ target_weights, int64_t K, float eps) {
  const int64_t i = blockIdx.x;
  const T* row = logits + i * K;
  const int64_t label = target[i];
  const float lse = row_log_sum_exp(row, K);
  float local_smooth = 0.f;  // sum_k w_k (lse - x_k); skipped without smoothing
  if (eps > 0.f)
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) local_smooth += class_weight(class_weights, k) * (lse - to_float(row[k]));
  const float smooth = eps > 0.f ? block_sum(local_smooth) : 0.f;
  if (threadIdx.x != 0) return;
  if (label < 0 || label >= K) {
    losses[i] = from_float<T>(NAN);
    if (target_weights) target_weights[i] = from_float<T>(NAN);
    return;
  }
  const float target_weight = class_weight(class_weights, label);
  const float nll = target_weight * (lse - to_float(row[label]));
  losses[i] = from_float<T>((1.f - eps) * nll + eps / static_cast<float>(K) * smooth);
  if (target_weights) target_weights[i] = from_float<T>(target_weight);
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ logits, const int64_t* __restrict__ target,
                                              const float* __restrict__ class_weights,
                                              const T* __restrict__ grad_losses, T* __restrict__ grad_logits,
                                              int64_t K, float eps) {
  const int64_t i = blockIdx.x;
  const T* row = logits + i * K;
  const int64_t label = target[i];
  const float lse = row_log_sum_exp(row, K);
  float local_weight_total = 0.f;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) local_weight_total += class_weight(class_weights, k);
  const float weight_total = block_sum(local_weight_total);
  const bool valid = label >= 0 && label < K;
  const float target_weight = valid ? class_weight(class_weights, label) : NAN;
  const float g = to_float(grad_losses[i]), smooth_scale = eps / static_cast<float>(K);
  for (int64_t j = threadIdx.x; j < K; j += blockDim.x) {
    const float p = expf(to_float(row[j]) - lse);
    const float hard = target_weight * (p - (j == label ? 1.f : 0.f));
    const float smooth = p * weight_total - class_weight(class_weights, j);
    grad_logits[i * K + j] = from_float<T>(g * ((1.f - eps) * hard + smooth_scale * smooth));
  }
}

__device__ __forceinline__ float softplus_of(float z) { return fmaxf(z, 0.f) + log1pf(expf(-fabsf(z))); }
__device__ __forceinline__ float sigmoid_of(float z) {
  return z >= 0.f ? 1.f / (1.f + expf(-z)) : expf(z) / (1.f + expf(z));
}

template <class T>
__global__ void bce_with_logits_forward_kernel(const T* __restrict__ logits, const float* __restrict__ target,
                                               const float* __restrict__ pos_weight, T* __restrict__ losses,
                                               int64_t n, int64_t K) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float x = to_float(logits[i]), y = target[i];
    const float log_weight = 1.f + ((pos_weight ? pos_weight[i % K] : 1.f) - 1.f) * y;
    losses[i] = from_float<T>((1.f - y) * x + log_weight * softplus_of(-x));
  }
}

template <class T>
__global__ void bce_with_logits_backward_kernel(const T* __restrict__ logits, const float* __restrict__ target,
                                                const float* __restrict__ pos_weight,
                                                const T* __restrict__ grad_losses, T* __restrict__ grad_logits,
                                                int64_t n, int64_t K) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float x = to_float(logits[i]), y = target[i];
    const float log_weight = 1.f + ((pos_weight ? pos_weight[i % K] : 1.f) - 1.f) * y;
    grad_logits[i] = from_float<T>(to_float(grad_losses[i]) * ((1.f - y) - log_weight * sigmoid_of(-x)));
  }
}

struct FocalTerms {
  float p, ce, m, alpha_t;
};
__device__ __forceinline__ FocalTerms focal_terms(float x, float y, float alpha) {
  FocalTerms t;
  t.p = sigmoid_of(x);
  t.ce = (1.f - y) * x + softplus_of(-x);
  t.m = y * sigmoid_of(-x) + (1.f - y) * t.p;
  t.alpha_t = alpha >= 0.f ? alpha * y + (1.f - alpha) * (1.f - y) : 1.f;
  return t;
}

template <class T>
__global__ void focal_loss_forward_kernel(const T* __restrict__ logits, const float* __restrict__ target,
                                          T* __restrict__ losses, int64_t n, float gamma, float alpha) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const FocalTerms t = focal_terms(to_float(logits[i]), target[i], alpha);
    losses[i] = from_float<T>(t.alpha_t * t.ce * powf(t.m, gamma));
  }
}

template <class T>
__global__ void focal_loss_backward_kernel(const T* __restrict__ logits, const float* __restrict__ target,
                                           const T* __restrict__ grad_losses, T* __restrict__ grad_logits,
                                           int64_t n, float gamma, float alpha) {
  KILN_GRID_STRIDE_LOOP(i, n) {
    const float y = target[i];
    const FocalTerms t = focal_terms(to_float(logits[i]), y, alpha);
    // gamma m^(gamma - 1) is 0 for gamma = 0 and, where m = 0, p (1 - p) = 0 too.
    const float dm_power = (gamma == 0.f || t.m == 0.f) ? 0.f : gamma * powf(t.m, gamma - 1.f);
    const float d = (t.p - y) * powf(t.m, gamma) + t.ce * dm_power * (1.f - 2.f * y) * t.p * (1.f - t.p);
    grad_logits[i] = from_float<T>(to_float(grad_losses[i]) * t.alpha_t * d);
  }
}

const float* f32_or_null(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) return nullptr;
  KILN_CHECK(t.dtype() == DType::f32, op, ": the CUDA kernel reads ", name, " as f32, got ", t.describe());
  return t.data<float>();
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& target, const Tensor& class_weights,
                           const Tensor& losses, const Tensor& target_weights, double label_smoothing) {
  const int64_t N = logits.size(0), K = logits.size(1);
  KILN_CHECK(N < (int64_t(1) << 31), "cross_entropy: N = ", N, " exceeds the CUDA grid limit of 2^31 - 1 rows");
  if (N == 0) return;
  const float* weights = f32_or_null(class_weights, "cross_entropy", "class_weights");
  Context& ctx = context_for(logits);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(logits.dtype(), "cross_entropy", {
    KILN_LAUNCH(static_cast<unsigned>(N), row_block_threads(K), 0, ctx.stream(), cross_entropy_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(logits.raw_data()), target.data<int64_t>(), weights,
        static_cast<scalar_t*>(losses.raw_data()),
        target_weights.defined() ? static_cast<scalar_t*>(target_weights.raw_data()) : nullptr, K,
        static_cast<float>(label_smoothing));
  });
  KILN_CHECK_LAUNCH("cross_entropy");
}

void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& class_weights,
                            const Tensor& grad_losses, const Tensor& grad_logits, double label_smoothing) {
  const int64_t N = logits.size(0), K = logits.size(1);
  KILN_CHECK(grad_losses.dtype() == logits.dtype() && grad_logits.dtype() == logits.dtype(),
             "cross_entropy_backward: dtypes differ: logits ", logits.describe(), ", grad_losses ",
             grad_losses.describe(), ", grad_logits ", grad_logits.describe());
  KILN_CHECK(N < (int64_t(1) << 31), "cross_entropy_backward: N = ", N,
             " exceeds the CUDA grid limit of 2^31 - 1 rows");
  if (N == 0) return;
  const float* weights = f32_or_null(class_weights, "cross_entropy_backward", "class_weights");
  Context& ctx = context_for(logits);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(logits.dtype(), "cross_entropy_backward", {
    KILN_LAUNCH(static_cast<unsigned>(N), row_block_threads(K), 0, ctx.stream(), cross_entropy_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(logits.raw_data()), target.data<int64_t>(), weights,
        static_cast<const scalar_t*>(grad_losses.raw_data()), static_cast<scalar_t*>(grad_logits.raw_data()), K,
        static_cast<float>(label_smoothing));
  });
  KILN_CHECK_LAUNCH("cross_entropy_backward");
}

void bce_with_logits_forward(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                             const Tensor& losses) {
  const char* op = "binary_cross_entropy_with_logits";
  const int64_t n = logits.numel(), K = logits.size(-1);
  if (n == 0) return;
  const float* targets = f32_or_null(target, op, "target");
  const float* weights = f32_or_null(pos_weight, op, "pos_weight");
  Context& ctx = context_for(logits);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(logits.dtype(), op, {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), bce_with_logits_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(logits.raw_data()), targets, weights, static_cast<scalar_t*>(losses.raw_data()),
        n, K);
  });
  KILN_CHECK_LAUNCH(op);
}

void bce_with_logits_backward(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                              const Tensor& grad_losses, const Tensor& grad_logits) {
  const char* op = "binary_cross_entropy_with_logits_backward";
  const int64_t n = logits.numel(), K = logits.size(-1);
  KILN_CHECK(grad_losses.dtype() == logits.dtype() && grad_losses.layout() == logits.layout(), op,
             ": grad_losses must match logits, got ", grad_losses.describe(), " and ", logits.describe());
  if (n == 0) return;
  const float* targets = f32_or_null(target, op, "target");
  const float* weights = f32_or_null(pos_weight, op, "pos_weight");
  Context& ctx = context_for(logits);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(logits.dtype(), op, {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), bce_with_logits_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(logits.raw_data()), targets, weights,
        static_cast<const scalar_t*>(grad_losses.raw_data()), static_cast<scalar_t*>(grad_logits.raw_data()), n, K);
  });
  KILN_CHECK_LAUNCH(op);
}

void focal_loss_forward(const Tensor& logits, const Tensor& target, const Tensor& losses, double gamma,
                        double alpha) {
  const char* op = "sigmoid_focal_loss";
  const int64_t n = logits.numel();
  if (n == 0) return;
  const float* targets = f32_or_null(target, op, "target");
  Context& ctx = context_for(logits);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(logits.dtype(), op, {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), focal_loss_forward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(logits.raw_data()), targets, static_cast<scalar_t*>(losses.raw_data()), n,
        static_cast<float>(gamma), static_cast<float>(alpha));
  });
  KILN_CHECK_LAUNCH(op);
}

void focal_loss_backward(const Tensor& logits, const Tensor& target, const Tensor& grad_losses,
                         const Tensor& grad_logits, double gamma, double alpha) {
  const char* op = "sigmoid_focal_loss_backward";
  const int64_t n = logits.numel();
  KILN_CHECK(grad_losses.dtype() == logits.dtype() && grad_losses.layout() == logits.layout(), op,
             ": grad_losses must match logits, got ", grad_losses.describe(), " and ", logits.describe());
  if (n == 0) return;
  const float* targets = f32_or_null(target, op, "target");
  Context& ctx = context_for(logits);
  set_device(ctx);
  KILN_DISPATCH_CUDA_FLOAT(logits.dtype(), op, {
    KILN_LAUNCH(grid_size(n), kThreads, 0, ctx.stream(), focal_loss_backward_kernel<scalar_t>)(
        static_cast<const scalar_t*>(logits.raw_data()), targets,
        static_cast<const scalar_t*>(grad_losses.raw_data()), static_cast<scalar_t*>(grad_logits.raw_data()), n,
        static_cast<float>(gamma), static_cast<float>(alpha));
  });
  KILN_CHECK_LAUNCH(op);
}

}  // namespace kiln::cuda
