// CPU references for the per-sample losses (formulas in engine/ops/loss.h), with
// every sum in double.
#include <cmath>

#include "engine/ops/loss.h"

namespace kiln::cpu {

namespace {

// log sum_k e^(x_k) of one row, shifted by the max so that no exponential overflows.
template <class T> double log_sum_exp(const T* row, int64_t K) {
  double max_value = -INFINITY;
  for (int64_t k = 0; k < K; ++k) max_value = std::max(max_value, static_cast<double>(row[k]));
  double sum = 0;
  for (int64_t k = 0; k < K; ++k) sum += std::exp(row[k] - max_value);
  return max_value + std::log(sum);
}

template <class T> double class_weight(const T* class_weights, int64_t k) {
  return class_weights ? static_cast<double>(class_weights[k]) : 1.0;
}

// softplus(z) = log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|).
inline double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }
inline double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z)); }

}  // namespace

template <class T>
void cross_entropy_forward(const T* logits, const int64_t* target, const T* class_weights, T* losses,
                           T* target_weights, int64_t N, int64_t K, double label_smoothing) {
  const double eps = label_smoothing;
  for (int64_t i = 0; i < N; ++i) {
    const T* row = logits + i * K;
    const int64_t label = target[i];
    const double lse = log_sum_exp(row, K);
    // -log p_k = lse - x_k
    const double nll = class_weight(class_weights, label) * (lse - row[label]);
    double smooth = 0;  // sum_k w_k * (-log p_k)
    if (eps > 0)
      for (int64_t k = 0; k < K; ++k) smooth += class_weight(class_weights, k) * (lse - row[k]);
    losses[i] = static_cast<T>((1 - eps) * nll + eps / static_cast<double>(K) * smooth);
    if (target_weights) target_weights[i] = static_cast<T>(class_weight(class_weights, label));
  }
}

template <class T>
void cross_entropy_backward(const T* logits, const int64_t* target, const T* class_weights, const T* grad_losses,
                            T* grad_logits, int64_t N, int64_t K, double label_smoothing) {
  const double eps = label_smoothing;
  for (int64_t i = 0; i < N; ++i) {
    const T* row = logits + i * K;
    const int64_t label = target[i];
    const double lse = log_sum_exp(row, K);
    double weight_total = 0;  // sum_k w_k (K without class weights)
    for (int64_t k = 0; k < K; ++k) weight_total += class_weight(class_weights, k);
    const double target_weight = class_weight(class_weights, label);
    for (int64_t j = 0; j < K; ++j) {
      const double p = std::exp(row[j] - lse);
      const double hard = target_weight * (p - (j == label ? 1.0 : 0.0));
      const double smooth = p * weight_total - class_weight(class_weights, j);
      grad_logits[i * K + j] =
          static_cast<T>(grad_losses[i] * ((1 - eps) * hard + eps / static_cast<double>(K) * smooth));
    }
  }
}

template <class T>
void bce_with_logits_forward(const T* logits, const T* target, const T* pos_weight, T* losses, int64_t n,
                             int64_t K) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const double x = logits[i], y = target[i];
    const double log_weight = 1 + ((pos_weight ? static_cast<double>(pos_weight[i % K]) : 1.0) - 1) * y;
    // -log sigma(x) = softplus(-x) and -log(1 - sigma(x)) = x + softplus(-x).
    losses[i] = static_cast<T>((1 - y) * x + log_weight * softplus(-x));
  }
}

template <class T>
void bce_with_logits_backward(const T* logits, const T* target, const T* pos_weight, const T* grad_losses,
                              T* grad_logits, int64_t n, int64_t K) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const double x = logits[i], y = target[i];
    const double log_weight = 1 + ((pos_weight ? static_cast<double>(pos_weight[i % K]) : 1.0) - 1) * y;
    // d softplus(-x) / dx = -sigma(-x)
    grad_logits[i] = static_cast<T>(grad_losses[i] * ((1 - y) - log_weight * sigmoid(-x)));
  }
}

// The focal loss's pieces at one element (formulas in engine/ops/loss.h).
struct FocalTerms {
  double p, ce, m, alpha_t;
};
inline FocalTerms focal_terms(double x, double y, double alpha) {
  FocalTerms t;
  t.p = sigmoid(x);
  t.ce = (1 - y) * x + softplus(-x);
  t.m = y * sigmoid(-x) + (1 - y) * t.p;  // 1 - p_t, with 1 - p as sigma(-x) so it keeps its digits
  t.alpha_t = alpha >= 0 ? alpha * y + (1 - alpha) * (1 - y) : 1.0;
  return t;
}

template <class T>
void focal_loss_forward(const T* logits, const T* target, T* losses, int64_t n, double gamma, double alpha) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const FocalTerms t = focal_terms(logits[i], target[i], alpha);
    losses[i] = static_cast<T>(t.alpha_t * t.ce * std::pow(t.m, gamma));
  }
}

template <class T>
void focal_loss_backward(const T* logits, const T* target, const T* grad_losses, T* grad_logits, int64_t n,
                         double gamma, double alpha) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const double y = target[i];
    const FocalTerms t = focal_terms(logits[i], y, alpha);
    // gamma * m^(gamma - 1) is 0 for gamma = 0 and, where m = 0, p (1 - p) = 0 too.
    const double dm_power = (gamma == 0 || t.m == 0) ? 0.0 : gamma * std::pow(t.m, gamma - 1);
    const double d = (t.p - y) * std::pow(t.m, gamma) + t.ce * dm_power * (1 - 2 * y) * t.p * (1 - t.p);
    grad_logits[i] = static_cast<T>(grad_losses[i] * t.alpha_t * d);
  }
}

#define KILN_INSTANTIATE(T)                                                                                      \
  template void cross_entropy_forward<T>(const T*, const int64_t*, const T*, T*, T*, int64_t, int64_t, double); \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const T*, const T*, T*, int64_t, int64_t,   \
                                          double);                                                              \
  template void bce_with_logits_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t);                 \
  template void bce_with_logits_backward<T>(const T*, const T*, const T*, const T*, T*, int64_t, int64_t);      \
  template void focal_loss_forward<T>(const T*, const T*, T*, int64_t, double, double);                        \
  template void focal_loss_backward<T>(const T*, const T*, const T*, T*, int64_t, double, double);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
