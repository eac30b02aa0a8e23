// Batch norm's CPU fast path (declared in norm.h under `namespace cpu_fast`): the
// same math as the reference (engine/ops/cpu/norm_cpu.cpp, engine/ops/norm.h), for
// f32 arrays in nchw, where each (n, c) plane of L = H*W values is contiguous.
//
// Why the reference is slow: per element it computes a 3-D index, calls a lambda
// that switches on the fused activation, and converts to double; MobileNetV2's
// training step spent half its time in its backward (docs/benchmarks.md). Here
//   - each plane is one contiguous run, read with `#pragma omp simd` loops the
//     compiler vectorises (the float partial sums of a plane may be reordered:
//     that is what `reduction` allows);
//   - the activation is hoisted out of the loop (one loop per activation);
//   - the statistics sum in double, as the reference does (vectorised: a mean far
//     from 0 must not lose digits, it is subtracted from every value); backward's
//     sums of dz (order-1 values of mixed sign) keep a plane's sum in float
//     (L <= a few thousand values, relative error ~sqrt(L) * 2^-24) and add the
//     planes in double;
//   - the input gradient, scale * (dz - mean(dz) - xhat * mean(dz * xhat)), is
//     folded into one multiply-add per element: a*dz + b*x + c.
// Channels are split over the OpenMP threads (--threads), like the reference.
//
// Bytes moved per element: stats read x twice (mean, then squared deviations);
// forward reads x and writes y; backward reads dy, x (and y when an activation is
// fused) twice and writes dx once.
#include <cmath>
#include <vector>

#include "engine/ops/norm.h"

namespace kiln::cpu_fast {

namespace {

// Work below this many values stays on one thread (the reference's threshold).
constexpr int64_t kParallelValues = 65536;

inline const float* plane(const float* base, const ChannelView& v, int64_t n, int64_t c) {
  return base + n * v.stride_n + c * v.stride_c;
}
inline float* plane(float* base, const ChannelView& v, int64_t n, int64_t c) {
  return base + n * v.stride_n + c * v.stride_c;
}

// dz = dL/dz for one plane: dy itself, or dy through the fused activation's f'
// (read off y), with guided backprop's max(dy, 0) when `guided` (norm.h's
// gradient_through_activation, one loop per case).
// Written without branches (`&` on bools, a select at the end): the signs of dy
// and of y are random, so a branch per element would be mispredicted half the time.
void gradient_through(const ActivationGrad<float>& a, const float* dy, const float* y, float* dz, int64_t L) {
  const bool guided = a.guided;
  const float hi = a.activation == NormActivation::relu6 ? 6.0f : INFINITY;  // relu' = [y > 0], relu6' = [0 < y < 6]
#pragma omp simd
  for (int64_t l = 0; l < L; ++l) {
    const float d = dy[l];
    const bool pass = (y[l] > 0.0f) & (y[l] < hi) & !(guided & (d < 0.0f));
    dz[l] = pass ? d : 0.0f;
  }
}

}  // namespace

bool applies(const ChannelView& v) { return !v.channels_last && v.stride_l == 1; }

void batch_norm_stats(const float* x, const ChannelView& xv, double momentum, double eps, float* running_mean,
                      float* running_var, float* mean, float* invstd) {
  const int64_t count = xv.count(), L = xv.L;
#pragma omp parallel for schedule(static) if (xv.C * count > kParallelValues)
  for (int64_t c = 0; c < xv.C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < xv.N; ++n) {
      const float* p = plane(x, xv, n, c);
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < L; ++l) s += p[l];
      sum += s;
    }
    const double batch_mean = sum / static_cast<double>(count);
    double squares = 0;
    for (int64_t n = 0; n < xv.N; ++n) {
      const float* p = plane(x, xv, n, c);
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < L; ++l) s += (p[l] - batch_mean) * (p[l] - batch_mean);
      squares += s;
    }
    mean[c] = static_cast<float>(batch_mean);
    invstd[c] = static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(count) + eps));
    if (running_mean) {  // PyTorch semantics, as the reference: the unbiased variance
      const double unbiased_var = squares / static_cast<double>(count - 1);
      running_mean[c] = static_cast<float>((1 - momentum) * running_mean[c] + momentum * batch_mean);
      running_var[c] = static_cast<float>((1 - momentum) * running_var[c] + momentum * unbiased_var);
    }
  }
}

void batch_norm_forward(const float* x, const ChannelView& xv, const float* mean, const float* invstd,
                        const float* weight, const float* bias, NormActivation activation, float* y,
                        const ChannelView& yv) {
  const int64_t L = xv.L;
#pragma omp parallel for schedule(static) if (xv.C * xv.count() > kParallelValues)
  for (int64_t c = 0; c < xv.C; ++c) {
    const float scale = invstd[c] * (weight ? weight[c] : 1.0f);
    const float shift = (bias ? bias[c] : 0.0f) - mean[c] * scale;
    for (int64_t n = 0; n < xv.N; ++n) {
      const float* in = plane(x, xv, n, c);
      float* out = plane(y, yv, n, c);
      if (activation == NormActivation::identity) {
#pragma omp simd
        for (int64_t l = 0; l < L; ++l) out[l] = in[l] * scale + shift;
      } else {
        const float hi = activation == NormActivation::relu6 ? 6.0f : INFINITY;
#pragma omp simd
        for (int64_t l = 0; l < L; ++l) {
          const float z = in[l] * scale + shift;
          out[l] = z > 0.0f ? (z < hi ? z : hi) : 0.0f;  // maxps/minps; NaN -> 0 as the reference
        }
      }
    }
  }
}

void batch_norm_backward(const float* grad_output, const ChannelView& gv, const ActivationGrad<float>& activation,
                         const float* x, const ChannelView& xv, const float* mean, const float* invstd,
                         const float* weight, bool training, float* grad_input, const ChannelView& giv,
                         float* grad_weight, float* grad_bias) {
  const int64_t L = xv.L;
  const double count = static_cast<double>(xv.count());
  const bool fused = activation.y != nullptr && activation.activation != NormActivation::identity;
#pragma omp parallel for schedule(static) if (xv.C * xv.count() > kParallelValues)
  for (int64_t c = 0; c < xv.C; ++c) {
    std::vector<float> dz_buffer(fused ? L : 0);  // one plane of dz, when f' must be applied first
    auto dz_of = [&](int64_t n) -> const float* {
      const float* dy = plane(grad_output, gv, n, c);
      if (!fused) return dy;
      gradient_through(activation, dy, plane(activation.y, activation.yv, n, c), dz_buffer.data(), L);
      return dz_buffer.data();
    };
    const float m = mean[c];
    double sum_dz = 0, sum_dz_centered = 0;  // sum dz and sum dz * (x - mean)
    for (int64_t n = 0; n < xv.N; ++n) {
      const float* dz = dz_of(n);
      const float* p = plane(x, xv, n, c);
      float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t l = 0; l < L; ++l) {
        s1 += dz[l];
        s2 += dz[l] * (p[l] - m);
      }
      sum_dz += s1;
      sum_dz_centered += s2;
    }
    const double sum_dz_xhat = sum_dz_centered * invstd[c];
    if (grad_bias) grad_bias[c] = static_cast<float>(sum_dz);
    if (grad_weight) grad_weight[c] = static_cast<float>(sum_dz_xhat);
    if (!grad_input) continue;
    // dx = scale * (dz - sum_dz/M - xhat * sum_dz_xhat/M), xhat = (x - mean) * invstd,
    //    = a*dz + b*(x - mean) + k  (eval: mean and invstd are constants, dx = scale * dz).
    // x - mean stays a difference: folding b*mean into k would cancel when |mean| >> std.
    const double scale = static_cast<double>(invstd[c]) * (weight ? weight[c] : 1.0);
    const double b = training ? -scale * invstd[c] * sum_dz_xhat / count : 0.0;
    const double k = training ? -scale * sum_dz / count : 0.0;
    const float af = static_cast<float>(scale), bf = static_cast<float>(b), kf = static_cast<float>(k);
    for (int64_t n = 0; n < xv.N; ++n) {
      const float* dz = dz_of(n);
      const float* p = plane(x, xv, n, c);
      float* out = plane(grad_input, giv, n, c);
#pragma omp simd
      for (int64_t l = 0; l < L; ++l) out[l] = af * dz[l] + bf * (p[l] - m) + kf;
    }
  }
}

}  // namespace kiln::cpu_fast
