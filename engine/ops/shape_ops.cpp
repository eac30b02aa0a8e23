// reshape, flatten, permute, transpose, concat, slice — and their backwards.
#include "engine/ops/shape_ops.h"

#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

Tensor reshape(const Tensor& x_any_layout, const Shape& requested) {
  check_defined("reshape", "x", x_any_layout);
  // Resolve one -1 from the element count.
  std::vector<int64_t> dims = requested.dims();
  int64_t known = 1;
  int infer = -1;
  for (int d = 0; d < requested.dim(); ++d) {
    if (dims[d] == -1) {
      KILN_CHECK(infer < 0, "reshape: only one dimension can be -1, got ", requested);
      infer = d;
    } else {
      known *= dims[d];
    }
  }
  if (infer >= 0) {
    KILN_CHECK(known > 0 && x_any_layout.numel() % known == 0, "reshape: cannot reshape ", x_any_layout.shape(),
               " to ", requested);
    dims[infer] = x_any_layout.numel() / known;
  }
  const Shape shape(dims);
  KILN_CHECK(shape.numel() == x_any_layout.numel(), "reshape: cannot reshape ", x_any_layout.shape(), " (",
             x_any_layout.numel(), " elements) to ", shape, " (", shape.numel(), " elements)");
  // Row-major data can be re-read in any shape: a view. Channels-last is made
  // row-major first (a copy), since its memory order is not the logical order.
  const Tensor x = x_any_layout.contiguous();
  auto impl = std::make_shared<TensorImpl>(x.impl());
  impl->autograd = nullptr;
  impl->shape = shape;
  impl->layout = Layout::nchw;
  Tensor y(std::move(impl));
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    record(y, "reshape", {x}, [x_shape](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{reshape(g, x_shape)};
    });
  }
  return y;
}

Tensor flatten(const Tensor& x, int start_dim) {
  start_dim = wrap_dim(start_dim, x.dim(), "flatten");
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().begin() + start_dim);
  int64_t rest = 1;
  for (int d = start_dim; d < x.dim(); ++d) rest *= x.shape()[d];
  dims.push_back(rest);
  return reshape(x, Shape(dims));
}

Tensor permute(const Tensor& x_any_layout, const std::vector<int>& order_in) {
  check_defined("permute", "x", x_any_layout);
  check_dtype_supported("permute", x_any_layout);
  KILN_CHECK(static_cast<int>(order_in.size()) == x_any_layout.dim(), "permute: order has ", order_in.size(),
             " entries for a ", x_any_layout.dim(), "-D tensor");
  std::vector<int> order(order_in.size());
  std::vector<bool> seen(order_in.size(), false);
  for (size_t k = 0; k < order.size(); ++k) {
    order[k] = wrap_dim(order_in[k], x_any_layout.dim(), "permute");
    KILN_CHECK(!seen[order[k]], "permute: dimension ", order[k], " appears twice in the order");
    seen[order[k]] = true;
  }
  const Tensor x = x_any_layout.contiguous();
  std::vector<int64_t> y_dims(order.size());
  for (size_t k = 0; k < order.size(); ++k) y_dims[k] = x.shape()[order[k]];
  Tensor y = empty(Shape(y_dims), {x.dtype(), x.device(), Layout::nchw});
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), "permute", [&](auto tag) {
          using T = decltype(tag);
          cpu::permute_forward<T>(x.data<T>(), y.data<T>(), x.shape(), order);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::permute_forward(x, y, order)); });
  if (needs_grad(x)) {
    std::vector<int> inverse(order.size());
    for (size_t k = 0; k < order.size(); ++k) inverse[order[k]] = static_cast<int>(k);
    record(y, "permute", {x}, [inverse](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{permute(g, inverse)};
    });
  }
  return y;
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  check_defined("transpose", "x", x);
  check_dtype_supported("transpose", x);
  std::vector<int> order(static_cast<size_t>(x.dim()));
  for (int d = 0; d < x.dim(); ++d) order[d] = d;
  std::swap(order[wrap_dim(dim0, x.dim(), "transpose")], order[wrap_dim(dim1, x.dim(), "transpose")]);
  return permute(x, order);
}

// Copy x (row-major) into the block of y that starts at `offset` along `dim`, or
// (when reading) take that block of x into y: both are "rows" of a 2-D view where
// dim and everything after it form the inner part.
static void copy_block(const Tensor& x, const Tensor& y, int dim, int64_t x_offset, int64_t y_offset, int64_t length) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= x.shape()[d];
  for (int d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[d];
  const int64_t x_inner = x.shape()[dim] * inner, y_inner = y.shape()[dim] * inner;
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), "concat", [&](auto tag) {
          using T = decltype(tag);
          cpu::copy_rows<T>(x.data<T>(), y.data<T>(), outer, x_inner, y_inner, x_offset * inner, y_offset * inner,
                            length * inner);
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::copy_rows(x, y, outer, x_inner, y_inner, x_offset * inner, y_offset * inner,
                                       length * inner));
      });
}

Tensor concat(const std::vector<Tensor>& xs_any_layout, int dim) {
  KILN_CHECK(!xs_any_layout.empty(), "concat: no tensors given");
  const Tensor& first = xs_any_layout[0];
  check_defined("concat", "xs[0]", first);
  check_dtype_supported("concat", first);
  dim = wrap_dim(dim, first.dim(), "concat");
  std::vector<Tensor> xs;
  std::vector<int64_t> out_dims = first.shape().dims();
  out_dims[dim] = 0;
  for (size_t i = 0; i < xs_any_layout.size(); ++i) {
    const Tensor& x = xs_any_layout[i];
    check_same_device("concat", {first, x});
    check_same_dtype("concat", {first, x});
    KILN_CHECK(x.dim() == first.dim(), "concat: xs[", i, "] has shape ", x.shape(), ", xs[0] has ", first.shape());
    for (int d = 0; d < x.dim(); ++d)
      KILN_CHECK(d == dim || x.shape()[d] == first.shape()[d], "concat: xs[", i, "] has shape ", x.shape(),
                 ", which differs from xs[0] ", first.shape(), " outside dim ", dim);
    out_dims[dim] += x.shape()[dim];
    xs.push_back(x.contiguous());
  }
  Tensor y = empty(Shape(out_dims), {first.dtype(), first.device(), Layout::nchw});
  int64_t offset = 0;
  std::vector<int64_t> lengths;
  for (const Tensor& x : xs) {
    copy_block(x, y, dim, 0, offset, x.shape()[dim]);
    offset += x.shape()[dim];
    lengths.push_back(x.shape()[dim]);
  }
  if (any_needs_grad(xs)) {
    record(y, "concat", xs, [dim, lengths](const Tensor& g, const std::vector<bool>& mask) {
      std::vector<Tensor> grads(lengths.size());
      int64_t start = 0;
      for (size_t i = 0; i < lengths.size(); ++i) {
        if (mask[i]) grads[i] = slice(g, dim, start, lengths[i]);
        start += lengths[i];
      }
      return grads;
    });
  }
  // A concat of channels-last images stays channels-last.
  return first.layout() == Layout::nhwc ? y.to(Layout::nhwc) : y;
}

Tensor slice(const Tensor& x_any_layout, int dim, int64_t start, int64_t length) {
  check_defined("slice", "x", x_any_layout);
  check_dtype_supported("slice", x_any_layout);
  dim = wrap_dim(dim, x_any_layout.dim(), "slice");
  KILN_CHECK(start >= 0 && length >= 0 && start + length <= x_any_layout.shape()[dim], "slice: [", start, ", ",
             start + length, ") is out of range for dim ", dim, " of ", x_any_layout.shape());
  const Tensor x = x_any_layout.contiguous();
  std::vector<int64_t> dims = x.shape().dims();
  dims[dim] = length;
  Tensor y = empty(Shape(dims), {x.dtype(), x.device(), Layout::nchw});
  copy_block(x, y, dim, start, 0, length);
  if (needs_grad(x)) {
    const Shape x_shape = x.shape();
    record(y, "slice", {x}, [x_shape, dim, start](const Tensor& g, const std::vector<bool>&) {
      // The gradient of a slice is g placed back into zeros of the input's shape.
      Tensor grad_input = zeros(x_shape, {g.dtype(), g.device(), Layout::nchw});
      copy_block(g.contiguous(), grad_input, dim, 0, start, g.shape()[dim]);
      return std::vector<Tensor>{grad_input};
    });
  }
  return y;
}

}  // namespace kiln
