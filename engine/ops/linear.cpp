// matmul and linear: the public ops (checks, forward, tape node), each with its
// backward functions right below it. The math is in linear.h and docs/ops/linear.md.
#include "engine/ops/linear.h"

#include <climits>
#include <cstdlib>

#include "engine/autograd/autocast.h"
#include "engine/autograd/tape.h"
#include "engine/core/env_setting.h"
#include "engine/ops/conv.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

// ---------------------------------------------------------------- CPU GEMM path
CpuGemmPath parse_cpu_gemm_path(const std::string& text, const char* where) {
  if (text == "onednn") return CpuGemmPath::onednn;
  if (text == "eigen") return CpuGemmPath::eigen;
  KILN_FAIL(where, ": expected onednn (the fast path) or eigen (the reference), got '", text, "'");
}

static EnvSetting<CpuGemmPath>& cpu_gemm_path_setting() {
  static EnvSetting<CpuGemmPath> setting("KILN_CPU_GEMM", CpuGemmPath::onednn, parse_cpu_gemm_path);
  return setting;
}
CpuGemmPath cpu_gemm_path() { return cpu_gemm_path_setting().get(); }
void set_cpu_gemm_path(CpuGemmPath path) { cpu_gemm_path_setting().set(path); }

// c = op(a) · op(b) into a fresh tensor of shape `c_shape` (the GEMM contract is in linear.h).
static Tensor gemm(const char* op, bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   const Tensor& a, const Tensor& b, const Shape& c_shape) {
  // cuBLAS takes int sizes; the CPU would not mind, but one limit for both keeps them alike.
  KILN_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && batch <= INT_MAX, op, ": sizes (M, N, K) = (", M, ", ",
             N, ", ", K, ") exceed the GEMM's int range");
  Tensor c = empty(c_shape, {a.dtype(), a.device(), Layout::nchw});
  on_device(
      a.device(),
      [&] {
        if (a.dtype() == DType::f32 && cpu_gemm_path() == CpuGemmPath::onednn)
          return onednn::gemm(trans_a, trans_b, batch, M, N, K, a.data<float>(), b.data<float>(), c.data<float>());
        cpu_floating(a.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::gemm<T>(trans_a, trans_b, batch, M, N, K, a.data<T>(), b.data<T>(), c.data<T>());
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::gemm(trans_a, trans_b, batch, M, N, K, a, b, c)); });
  return c;
}

static void check_pair(const char* op, const char* check_as, const Tensor& a, const char* a_name, const Tensor& b,
                       const char* b_name) {
  check_defined(op, a_name, a);
  check_defined(op, b_name, b);
  check_same_device(op, {a, b});
  check_same_dtype(op, {a, b});
  check_dtype_supported(check_as, a);
}

// ---------------------------------------------------------------- matmul
// (M, K) x (K, N) or (B, M, K) x (B, K, N); returns the batch count (1 for 2-D).
static int64_t check_matmul(const char* op, const Tensor& a, const Tensor& b) {
  check_pair(op, "matmul", a, "a", b, "b");
  KILN_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), op,
             ": a and b must both be 2-D (M, K) x (K, N) or both 3-D (B, M, K) x (B, K, N), got ", a.shape(),
             " and ", b.shape());
  const int d = a.dim();
  KILN_CHECK(a.shape()[d - 1] == b.shape()[d - 2], op, ": a ", a.shape(), " and b ", b.shape(),
             " do not multiply: a has K = ", a.shape()[d - 1], " columns but b has ", b.shape()[d - 2], " rows");
  KILN_CHECK(d == 2 || a.shape()[0] == b.shape()[0], op, ": batch sizes differ: a ", a.shape(), ", b ", b.shape());
  return d == 2 ? 1 : a.shape()[0];
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (autocast_applies({a, b}))  // mixed precision: engine/autograd/autocast.h
    return autocast_call({a, b}, [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); });
  const int64_t batch = check_matmul("matmul", a, b);
  const int d = a.dim();
  const int64_t M = a.shape()[d - 2], K = a.shape()[d - 1], N = b.shape()[d - 1];
  const Shape c_shape = d == 2 ? Shape{M, N} : Shape{batch, M, N};
  Tensor c = gemm("matmul", false, false, batch, M, N, K, a, b, c_shape);
  if (any_needs_grad({a, b})) {
    // grad_a needs b and grad_b needs a: keep only what backward will use.
    const Tensor a_saved = needs_grad(b) ? a.detach() : Tensor();
    const Tensor b_saved = needs_grad(a) ? b.detach() : Tensor();
    record(c, "matmul", {a, b}, [a_saved, b_saved](const Tensor& grad_output, const std::vector<bool>& mask) {
      Tensor grad_a, grad_b;
      if (mask[0]) grad_a = matmul_backward_a(grad_output, b_saved);
      if (mask[1]) grad_b = matmul_backward_b(grad_output, a_saved);
      return std::vector<Tensor>{grad_a, grad_b};
    });
  }
  return c;
}

Tensor matmul_backward_a(const Tensor& grad_output, const Tensor& b) {
  // grad_a (M, K) = grad_output (M, N) · b^T, with b stored (K, N).
  const char* op = "matmul_backward_a";
  check_pair(op, "matmul", grad_output, "grad_output", b, "b");
  KILN_CHECK(grad_output.dim() == b.dim() && (b.dim() == 2 || b.dim() == 3), op,
             ": grad_output and b must both be 2-D or both 3-D, got ", grad_output.shape(), " and ", b.shape());
  const int d = b.dim();
  const int64_t batch = d == 2 ? 1 : b.shape()[0];
  const int64_t M = grad_output.shape()[d - 2], N = grad_output.shape()[d - 1], K = b.shape()[d - 2];
  KILN_CHECK(b.shape()[d - 1] == N && (d == 2 || grad_output.shape()[0] == batch), op, ": grad_output ",
             grad_output.shape(), " does not match b ", b.shape());
  return gemm(op, false, true, batch, M, K, N, grad_output, b, d == 2 ? Shape{M, K} : Shape{batch, M, K});
}

Tensor matmul_backward_b(const Tensor& grad_output, const Tensor& a) {
  // grad_b (K, N) = a^T · grad_output (M, N), with a stored (M, K).
  const char* op = "matmul_backward_b";
  check_pair(op, "matmul", grad_output, "grad_output", a, "a");
  KILN_CHECK(grad_output.dim() == a.dim() && (a.dim() == 2 || a.dim() == 3), op,
             ": grad_output and a must both be 2-D or both 3-D, got ", grad_output.shape(), " and ", a.shape());
  const int d = a.dim();
  const int64_t batch = d == 2 ? 1 : a.shape()[0];
  const int64_t M = a.shape()[d - 2], K = a.shape()[d - 1], N = grad_output.shape()[d - 1];
  KILN_CHECK(grad_output.shape()[d - 2] == M && (d == 2 || grad_output.shape()[0] == batch), op, ": grad_output ",
             grad_output.shape(), " does not match a ", a.shape());
  return gemm(op, true, false, batch, K, N, M, a, grad_output, d == 2 ? Shape{K, N} : Shape{batch, K, N});
}

// ---------------------------------------------------------------- linear
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (autocast_applies({x, weight, bias}))  // mixed precision: engine/autograd/autocast.h
    return autocast_call({x, weight, bias}, [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); });
  const char* op = "linear";
  check_pair(op, op, x, "x", weight, "weight");
  check_same_device(op, {x, weight, bias});
  check_same_dtype(op, {x, weight, bias});
  check_dim(op, "x", x, 2, "(N, in)");
  check_dim(op, "weight", weight, 2, "(out, in)");
  const int64_t batch_rows = x.shape()[0], in = x.shape()[1], out = weight.shape()[0];
  KILN_CHECK(weight.shape()[1] == in, op, ": weight must be (out, in) = (", out, ", ", in, "), got ", weight.shape(),
             " (x is ", x.shape(), ")");
  if (bias.defined())
    KILN_CHECK(bias.dim() == 1 && bias.shape()[0] == out, op, ": bias must be (out) = ", Shape{out}, ", got ",
               bias.shape());

  // y = x · weight^T: weight is stored (out, in), so the GEMM reads it transposed.
  Tensor y = gemm(op, false, true, 1, batch_rows, out, in, x, weight, Shape{batch_rows, out});
  if (bias.defined())
    on_device(
        y.device(),
        [&] {
          cpu_floating(y.dtype(), op, [&](auto tag) {
            using T = decltype(tag);
            cpu::add_row_bias<T>(y.data<T>(), bias.data<T>(), batch_rows, out);
          });
        },
        // A (N, out) matrix is a (N, K, P) tensor with K = out channels and P = 1.
        [&] { KILN_CUDA_ONLY(cuda::channel_bias_forward(bias, y, batch_rows, out, 1, false)); });

  if (any_needs_grad({x, weight, bias})) {
    const Tensor x_saved = needs_grad(weight) ? x.detach() : Tensor();
    const Tensor weight_saved = needs_grad(x) ? weight.detach() : Tensor();
    record(y, op, {x, weight, bias},
           [x_saved, weight_saved](const Tensor& grad_output, const std::vector<bool>& mask) {
             Tensor grad_x, grad_weight, grad_bias;
             if (mask[0]) grad_x = linear_backward_input(grad_output, weight_saved);
             if (mask[1]) grad_weight = linear_backward_weight(grad_output, x_saved);
             if (mask[2]) grad_bias = linear_backward_bias(grad_output);
             return std::vector<Tensor>{grad_x, grad_weight, grad_bias};
           });
  }
  return y;
}

Tensor linear_backward_input(const Tensor& grad_output, const Tensor& weight) {
  // grad_x (N, in) = grad_output (N, out) · weight (out, in)
  const char* op = "linear_backward_input";
  check_pair(op, "linear", grad_output, "grad_output", weight, "weight");
  check_dim(op, "grad_output", grad_output, 2, "(N, out)");
  check_dim(op, "weight", weight, 2, "(out, in)");
  const int64_t batch_rows = grad_output.shape()[0], out = weight.shape()[0], in = weight.shape()[1];
  KILN_CHECK(grad_output.shape()[1] == out, op, ": grad_output must be (N, out) = (", batch_rows, ", ", out,
             "), got ", grad_output.shape());
  return gemm(op, false, false, 1, batch_rows, in, out, grad_output, weight, Shape{batch_rows, in});
}

Tensor linear_backward_weight(const Tensor& grad_output, const Tensor& x) {
  // grad_weight (out, in) = grad_output^T (out, N) · x (N, in): a sum over the batch.
  const char* op = "linear_backward_weight";
  check_pair(op, "linear", grad_output, "grad_output", x, "x");
  check_dim(op, "grad_output", grad_output, 2, "(N, out)");
  check_dim(op, "x", x, 2, "(N, in)");
  const int64_t batch_rows = x.shape()[0], in = x.shape()[1], out = grad_output.shape()[1];
  KILN_CHECK(grad_output.shape()[0] == batch_rows, op, ": grad_output must have N = ", batch_rows,
             " rows like x, got ", grad_output.shape());
  return gemm(op, true, false, 1, out, in, batch_rows, grad_output, x, Shape{out, in});
}

Tensor linear_backward_bias(const Tensor& grad_output) {
  const char* op = "linear_backward_bias";
  check_defined(op, "grad_output", grad_output);
  check_dim(op, "grad_output", grad_output, 2, "(N, out)");
  check_dtype_supported("linear", grad_output);
  const int64_t batch_rows = grad_output.shape()[0], out = grad_output.shape()[1];
  Tensor grad_bias = empty({out}, {grad_output.dtype(), grad_output.device(), Layout::nchw});
  // The same per-channel sum as conv2d's bias, with out channels and P = 1 pixel.
  on_device(
      grad_output.device(),
      [&] {
        cpu_floating(grad_output.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::conv2d_backward_bias<T>(grad_output.data<T>(), grad_bias.data<T>(), batch_rows, out, 1);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::channel_bias_backward(grad_output, grad_bias, batch_rows, out, 1, false)); });
  return grad_bias;
}

}  // namespace kiln
