// Element-wise arithmetic with NumPy/PyTorch broadcasting, and scalar ops.
//
//   out = a (op) b, op in {add, sub, mul, div}; shapes broadcast from the right
//   (a (N, C, H, W) with b (C, 1, 1) gives (N, C, H, W)).
//   Backward: grad_a = sum_to(d out/d a * grad_output, a.shape), likewise for b:
//     add: (g, g)   sub: (g, -g)   mul: (g*b, g*a)   div: (g/b, -g*a/b^2)
//   sum_to sums over the broadcast dimensions (engine/ops/reduce.h).
//
// Layout: same-shape inputs in the same layout give an output in that layout; when
// the output has the shape of `a`, it takes a's layout; otherwise it is row-major.
#pragma once
#include "engine/tensor/tensor.h"

namespace kiln {

enum class BinaryOp { add, sub, mul, div };
const char* binary_op_name(BinaryOp op);

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);

// y = alpha * x + beta (covers x + s, x - s, x * s, -x).
Tensor affine_scalar(const Tensor& x, double alpha, double beta);
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor neg(const Tensor& x);
// y = x^p, elementwise, for real p (x > 0 for non-integer p).
Tensor pow_scalar(const Tensor& x, double p);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator-(const Tensor& a);

// The shape a and b broadcast to; throws naming the op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Element strides of t read as if it had shape `out` (0 along broadcast dims).
std::vector<int64_t> broadcast_strides(const Tensor& t, const Shape& out);

// Backend functions. Shapes: out has the broadcast shape; a_strides/b_strides are
// broadcast_strides() of a and b for out's shape, out_strides out's own.
namespace cpu {
template <class T>
void binary_forward(BinaryOp op, const T* a, const T* b, T* out, const Shape& out_shape,
                    const std::vector<int64_t>& a_strides, const std::vector<int64_t>& b_strides,
                    const std::vector<int64_t>& out_strides);
template <class T> void affine_scalar_forward(const T* x, T* y, int64_t n, double alpha, double beta);
template <class T> void pow_scalar_forward(const T* x, T* y, int64_t n, double p);
}  // namespace cpu
namespace cuda {
void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void affine_scalar_forward(const Tensor& x, const Tensor& y, double alpha, double beta);
void pow_scalar_forward(const Tensor& x, const Tensor& y, double p);
}  // namespace cuda

}  // namespace kiln
