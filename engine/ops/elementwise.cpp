// Element-wise arithmetic: the public ops, each with its backward right below.
#include "engine/ops/elementwise.h"

#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"
#include "engine/tensor/factory.h"

namespace kiln {

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "?";
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int rank = std::max(a.dim(), b.dim());
  std::vector<int64_t> out(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) {  // align from the right
    const int64_t da = i < rank - a.dim() ? 1 : a[i - (rank - a.dim())];
    const int64_t db = i < rank - b.dim() ? 1 : b[i - (rank - b.dim())];
    KILN_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " do not broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return Shape(out);
}

std::vector<int64_t> broadcast_strides(const Tensor& t, const Shape& out) {
  const std::vector<int64_t> own = t.strides();
  std::vector<int64_t> strides(static_cast<size_t>(out.dim()), 0);
  const int shift = out.dim() - t.dim();
  for (int d = 0; d < t.dim(); ++d) strides[d + shift] = t.shape()[d] == 1 ? 0 : own[d];
  return strides;
}

// out = a (op) b with no autograd.
static Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_defined(name, "a", a);
  check_defined(name, "b", b);
  check_same_device(name, {a, b});
  check_same_dtype(name, {a, b});
  check_dtype_supported(name, a);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  const Layout layout = out_shape == a.shape() ? a.layout() : (out_shape == b.shape() ? b.layout() : Layout::nchw);
  Tensor out = empty(out_shape, {a.dtype(), a.device(), layout});
  on_device(
      a.device(),
      [&] {
        cpu_floating(a.dtype(), name, [&](auto tag) {
          using T = decltype(tag);
          cpu::binary_forward<T>(op, a.data<T>(), b.data<T>(), out.data<T>(), out_shape,
                                 broadcast_strides(a, out_shape), broadcast_strides(b, out_shape), out.strides());
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::binary_forward(op, a, b, out)); });
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(op, a, b);
  if (any_needs_grad({a, b})) {
    // mul and div need the inputs; add and sub need only their shapes.
    const Shape a_shape = a.shape(), b_shape = b.shape();
    const bool saves = op == BinaryOp::mul || op == BinaryOp::div;
    const Tensor a_saved = saves ? a.detach() : Tensor(), b_saved = saves ? b.detach() : Tensor();
    record(out, binary_op_name(op), {a, b},
           [op, a_shape, b_shape, a_saved, b_saved](const Tensor& g, const std::vector<bool>& mask) {
             Tensor grad_a, grad_b;
             switch (op) {
               case BinaryOp::add:
                 if (mask[0]) grad_a = sum_to(g, a_shape);
                 if (mask[1]) grad_b = sum_to(g, b_shape);
                 break;
               case BinaryOp::sub:
                 if (mask[0]) grad_a = sum_to(g, a_shape);
                 if (mask[1]) grad_b = sum_to(neg(g), b_shape);
                 break;
               case BinaryOp::mul:
                 if (mask[0]) grad_a = sum_to(mul(g, b_saved), a_shape);
                 if (mask[1]) grad_b = sum_to(mul(g, a_saved), b_shape);
                 break;
               case BinaryOp::div:
                 if (mask[0]) grad_a = sum_to(div(g, b_saved), a_shape);
                 // d(a/b)/db = -a / b^2
                 if (mask[1]) grad_b = sum_to(neg(div(mul(g, a_saved), mul(b_saved, b_saved))), b_shape);
                 break;
             }
             return std::vector<Tensor>{grad_a, grad_b};
           });
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }

Tensor affine_scalar(const Tensor& x, double alpha, double beta) {
  check_defined("affine_scalar", "x", x);
  check_dtype_supported("affine_scalar", x);
  Tensor y = empty_like(x);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), "affine_scalar", [&](auto tag) {
          using T = decltype(tag);
          cpu::affine_scalar_forward<T>(x.data<T>(), y.data<T>(), x.numel(), alpha, beta);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::affine_scalar_forward(x, y, alpha, beta)); });
  if (needs_grad(x))
    record(y, "affine_scalar", {x}, [alpha](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{affine_scalar(g, alpha, 0.0)};  // dy/dx = alpha
    });
  return y;
}

Tensor add_scalar(const Tensor& x, double s) { return affine_scalar(x, 1.0, s); }
Tensor mul_scalar(const Tensor& x, double s) { return affine_scalar(x, s, 0.0); }
Tensor neg(const Tensor& x) { return affine_scalar(x, -1.0, 0.0); }

Tensor pow_scalar(const Tensor& x, double p) {
  check_defined("pow_scalar", "x", x);
  check_dtype_supported("pow_scalar", x);
  Tensor y = empty_like(x);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), "pow_scalar", [&](auto tag) {
          using T = decltype(tag);
          cpu::pow_scalar_forward<T>(x.data<T>(), y.data<T>(), x.numel(), p);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::pow_scalar_forward(x, y, p)); });
  if (needs_grad(x)) {
    const Tensor x_saved = x.detach();
    record(y, "pow_scalar", {x}, [x_saved, p](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{mul(g, mul_scalar(pow_scalar(x_saved, p - 1.0), p))};  // p * x^(p-1)
    });
  }
  return y;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }
Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace kiln
