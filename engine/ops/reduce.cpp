// sum, mean, broadcast_to and sum_to: each other's backward.
#include "engine/ops/reduce.h"

#include <algorithm>

#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/factory.h"

namespace kiln {

// Sum over the marked dims, keepdim shape, no autograd. Works on the row-major form.
static Tensor sum_keepdim_forward(const Tensor& x_any_layout, const std::vector<bool>& reduce) {
  const Tensor x = x_any_layout.contiguous();
  std::vector<int64_t> out_dims = x.shape().dims();
  for (int d = 0; d < x.dim(); ++d)
    if (reduce[d]) out_dims[d] = 1;
  Tensor out = empty(Shape(out_dims), {x.dtype(), x.device(), Layout::nchw});
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), "sum", [&](auto tag) {
          using T = decltype(tag);
          cpu::sum_forward<T>(x.data<T>(), out.data<T>(), x.shape(), reduce);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::sum_forward(x, out, reduce)); });
  return out;
}

Tensor sum(const Tensor& x, std::vector<int> dims, bool keepdim) {
  check_defined("sum", "x", x);
  check_dtype_supported("sum", x);
  std::vector<bool> reduce(static_cast<size_t>(x.dim()), dims.empty());
  for (int& d : dims) reduce[wrap_dim(d, x.dim(), "sum")] = true;
  Tensor out = sum_keepdim_forward(x, reduce);
  if (!keepdim) {
    std::vector<int64_t> kept;
    for (int d = 0; d < x.dim(); ++d)
      if (!reduce[d]) kept.push_back(x.shape()[d]);
    out = reshape(out.detach(), Shape(kept)).detach();
  }
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    std::vector<int64_t> keep_shape = x_shape.dims();
    for (int d = 0; d < x.dim(); ++d)
      if (reduce[d]) keep_shape[d] = 1;
    record(out, "sum", {x}, [x_shape, keep_shape](const Tensor& g, const std::vector<bool>&) {
      // Every input element contributed once: its gradient is g, broadcast back.
      return std::vector<Tensor>{broadcast_to(reshape(g, Shape(keep_shape)), x_shape)};
    });
  }
  return out;
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim) {
  check_defined("mean", "x", x);
  check_dtype_supported("mean", x);
  int64_t count = 1;
  if (dims.empty()) {
    count = x.numel();
  } else {
    for (int d : dims) count *= x.shape()[wrap_dim(d, x.dim(), "mean")];
  }
  return mul_scalar(sum(x, dims, keepdim), 1.0 / static_cast<double>(std::max<int64_t>(count, 1)));
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor broadcast_to(const Tensor& x_any_layout, const Shape& shape) {
  check_defined("broadcast_to", "x", x_any_layout);
  if (x_any_layout.shape() == shape) return x_any_layout;
  const Shape checked = broadcast_shapes(x_any_layout.shape(), shape, "broadcast_to");
  KILN_CHECK(checked == shape, "broadcast_to: cannot broadcast ", x_any_layout.shape(), " to ", shape);
  const Tensor x = x_any_layout.contiguous();
  Tensor out = empty(shape, {x.dtype(), x.device(), Layout::nchw});
  const std::vector<int64_t> x_strides = broadcast_strides(x, shape);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), "broadcast_to", [&](auto tag) {
          using T = decltype(tag);
          cpu::broadcast_copy<T>(x.data<T>(), out.data<T>(), shape, x_strides);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::broadcast_copy(x, out, x_strides)); });
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    record(out, "broadcast_to", {x}, [x_shape](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{sum_to(g, x_shape)};
    });
  }
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  // Dims that broadcasting added on the left, and dims that were 1 in `shape`.
  const int lead = g.dim() - shape.dim();
  KILN_CHECK(lead >= 0, "sum_to: cannot reduce ", g.shape(), " to the larger shape ", shape);
  std::vector<int> dims;
  for (int d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) dims.push_back(d);
  Tensor summed = dims.empty() ? g : sum(g, dims, /*keepdim=*/true);
  return reshape(summed, shape);
}

}  // namespace kiln
