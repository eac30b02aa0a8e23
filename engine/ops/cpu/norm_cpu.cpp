// CPU reference for batch_norm: plain loops over (N, C, L), templated on float and
// double. Statistics use two passes (mean first, then sum of squared deviations),
// which avoids the cancellation of E[x^2] - E[x]^2. Math: engine/ops/norm.h.
// The same loops serve batch_norm_act: the forward applies the activation as it
// writes y, the backward takes dy through it (gradient_through_activation) where it
// reads dy, in both passes, so nothing in between is stored.
#include <cmath>

#include "engine/ops/norm.h"

namespace kiln::cpu {

static inline int64_t at(const ChannelView& v, int64_t n, int64_t c, int64_t l) {
  return n * v.stride_n + c * v.stride_c + l * v.stride_l;
}

template <class T>
void batch_norm_stats(const T* x, const ChannelView& xv, bool training, double momentum, double eps,
                      T* running_mean, T* running_var, T* mean, T* invstd) {
  const int64_t count = xv.count();
#pragma omp parallel for if (xv.C * count > 65536)
  for (int64_t c = 0; c < xv.C; ++c) {
    if (!training) {
      mean[c] = running_mean[c];
      invstd[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
      continue;
    }
    double sum = 0;  // accumulate in double: M can be 10^5 and more
    for (int64_t n = 0; n < xv.N; ++n)
      for (int64_t l = 0; l < xv.L; ++l) sum += x[at(xv, n, c, l)];
    const double batch_mean = sum / static_cast<double>(count);
    double squares = 0;
    for (int64_t n = 0; n < xv.N; ++n)
      for (int64_t l = 0; l < xv.L; ++l) {
        const double d = x[at(xv, n, c, l)] - batch_mean;
        squares += d * d;
      }
    const double biased_var = squares / static_cast<double>(count);
    mean[c] = static_cast<T>(batch_mean);
    invstd[c] = static_cast<T>(1.0 / std::sqrt(biased_var + eps));
    if (running_mean) {
      // PyTorch semantics: the running variance estimates the population, so it
      // takes the unbiased batch variance (Bessel's correction M / (M - 1)).
      const double unbiased_var = squares / static_cast<double>(count - 1);
      running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * batch_mean);
      running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased_var);
    }
  }
}

template <class T>
void batch_norm_forward(const T* x, const ChannelView& xv, const T* mean, const T* invstd, const T* weight,
                        const T* bias, NormActivation activation, T* y, const ChannelView& yv) {
#pragma omp parallel for if (xv.C * xv.count() > 65536)
  for (int64_t c = 0; c < xv.C; ++c) {
    // Fold the affine map into one scale and shift per channel: y = x * scale + shift.
    const T scale = invstd[c] * (weight ? weight[c] : T(1));
    const T shift = (bias ? bias[c] : T(0)) - mean[c] * scale;
    for (int64_t n = 0; n < xv.N; ++n)
      for (int64_t l = 0; l < xv.L; ++l)
        y[at(yv, n, c, l)] = apply_norm_activation(activation, x[at(xv, n, c, l)] * scale + shift);
  }
}

template <class T>
void batch_norm_backward(const T* grad_output, const ChannelView& gv, const ActivationGrad<T>& activation,
                         const T* x, const ChannelView& xv, const T* mean, const T* invstd, const T* weight,
                         bool training, T* grad_input, const ChannelView& giv, T* grad_weight, T* grad_bias) {
  const double count = static_cast<double>(xv.count());
  // dL/dz at (n, c, l), z = batch_norm(x): dy itself, or dy taken through f'.
  auto grad_z = [&](int64_t n, int64_t c, int64_t l) -> double {
    const T dy = grad_output[at(gv, n, c, l)];
    if (!activation.y) return dy;
    return gradient_through_activation(activation.activation, activation.guided,
                                       activation.y[at(activation.yv, n, c, l)], dy);
  };
#pragma omp parallel for if (xv.C * xv.count() > 65536)
  for (int64_t c = 0; c < xv.C; ++c) {
    // The two per-channel sums every gradient is built from.
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < xv.N; ++n)
      for (int64_t l = 0; l < xv.L; ++l) {
        const double dy = grad_z(n, c, l);
        sum_dy += dy;
        sum_dy_xhat += dy * (x[at(xv, n, c, l)] - mean[c]) * invstd[c];
      }
    if (grad_bias) grad_bias[c] = static_cast<T>(sum_dy);
    if (grad_weight) grad_weight[c] = static_cast<T>(sum_dy_xhat);
    if (!grad_input) continue;
    const double scale = static_cast<double>(invstd[c]) * (weight ? weight[c] : 1.0);
    for (int64_t n = 0; n < xv.N; ++n)
      for (int64_t l = 0; l < xv.L; ++l) {
        const double dy = grad_z(n, c, l);
        double grad;
        if (training) {
          // mean and var depend on every x of the channel: subtract the mean of dy
          // and the projection of dy on xhat (docs/ops/norm.md derives this).
          const double xhat = (x[at(xv, n, c, l)] - mean[c]) * invstd[c];
          grad = scale * (dy - sum_dy / count - xhat * sum_dy_xhat / count);
        } else {
          grad = scale * dy;  // eval: mean and invstd are constants
        }
        grad_input[at(giv, n, c, l)] = static_cast<T>(grad);
      }
  }
}

#define KILN_INSTANTIATE(T)                                                                                     \
  template void batch_norm_stats<T>(const T*, const ChannelView&, bool, double, double, T*, T*, T*, T*);        \
  template void batch_norm_forward<T>(const T*, const ChannelView&, const T*, const T*, const T*, const T*,     \
                                      NormActivation, T*, const ChannelView&);                                   \
  template void batch_norm_backward<T>(const T*, const ChannelView&, const ActivationGrad<T>&, const T*,        \
                                       const ChannelView&, const T*, const T*, const T*, bool, T*,              \
                                       const ChannelView&, T*, T*);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
