// CPU references for element-wise ops: plain loops, templated on float and double.
#include <cmath>

#include "engine/ops/elementwise.h"

namespace kiln::cpu {

template <class T>
static inline T apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return T(0);
}

template <class T>
void binary_forward(BinaryOp op, const T* a, const T* b, T* out, const Shape& out_shape,
                    const std::vector<int64_t>& a_strides, const std::vector<int64_t>& b_strides,
                    const std::vector<int64_t>& out_strides) {
  const int64_t n = out_shape.numel();
  const int rank = out_shape.dim();
  // No broadcast and one memory order (the residual add of every ResNet block): the
  // index walk below would map i to the same offset in all three arrays, and the
  // arrays are dense, so walking the offsets in memory order visits the same
  // elements without the per-element divisions.
  if (a_strides == out_strides && b_strides == out_strides) {
#pragma omp parallel for if (n > 32768)
    for (int64_t i = 0; i < n; ++i) out[i] = apply(op, a[i], b[i]);
    return;
  }
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    // Walk the logical index from the last dimension to find each operand's offset.
    int64_t rest = i, a_at = 0, b_at = 0, out_at = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t coordinate = rest % out_shape[d];
      rest /= out_shape[d];
      a_at += coordinate * a_strides[d];
      b_at += coordinate * b_strides[d];
      out_at += coordinate * out_strides[d];
    }
    out[out_at] = apply(op, a[a_at], b[b_at]);
  }
}

template <class T>
void affine_scalar_forward(const T* x, T* y, int64_t n, double alpha, double beta) {
  const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b;
}

template <class T>
void pow_scalar_forward(const T* x, T* y, int64_t n, double p) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(std::pow(x[i], static_cast<T>(p)));
}

#define KILN_INSTANTIATE(T)                                                                              \
  template void binary_forward<T>(BinaryOp, const T*, const T*, T*, const Shape&,                       \
                                  const std::vector<int64_t>&, const std::vector<int64_t>&,             \
                                  const std::vector<int64_t>&);                                         \
  template void affine_scalar_forward<T>(const T*, T*, int64_t, double, double);                        \
  template void pow_scalar_forward<T>(const T*, T*, int64_t, double);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
#undef KILN_INSTANTIATE

}  // namespace kiln::cpu
