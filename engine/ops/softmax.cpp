// softmax and log_softmax, each with its backward right below.
#include "engine/ops/softmax.h"

#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

SoftmaxGeometry softmax_geometry(const Tensor& t, int dim) {
  const int d = wrap_dim(dim, t.dim(), "softmax");
  SoftmaxGeometry geometry;
  geometry.size = t.shape()[d];
  geometry.inner = t.strides()[d];
  geometry.outer = geometry.size * geometry.inner == 0 ? 0 : t.numel() / (geometry.size * geometry.inner);
  return geometry;
}

namespace {

Tensor softmax_op(const Tensor& x, int dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_defined(name, "x", x);
  check_dtype_supported(name, x);
  KILN_CHECK(x.dim() >= 1, name, ": x must have at least one dimension, got shape ", x.shape());
  KILN_CHECK(dim >= -x.dim() && dim < x.dim(), name, ": dim ", dim, " is out of range for shape ", x.shape());
  const SoftmaxGeometry geometry = softmax_geometry(x, dim);
  Tensor y = empty_like(x);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), name, [&](auto tag) {
          using T = decltype(tag);
          cpu::softmax_forward<T>(x.data<T>(), y.data<T>(), geometry, log);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::softmax_forward(x, y, geometry, log)); });
  if (needs_grad(x)) {
    const Tensor y_saved = y.detach();  // the backward needs only the output
    record(y, name, {x}, [y_saved, dim, log](const Tensor& grad_output, const std::vector<bool>&) {
      return std::vector<Tensor>{softmax_backward(y_saved, grad_output, dim, log)};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int dim) { return softmax_op(x, dim, false); }
Tensor log_softmax(const Tensor& x, int dim) { return softmax_op(x, dim, true); }

Tensor softmax_backward(const Tensor& y, const Tensor& grad_output, int dim, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  KILN_CHECK(grad_output.shape() == y.shape(), name, ": grad_output has shape ", grad_output.shape(), ", expected ",
             y.shape());
  // The geometry is y's: grad_output must be read in the same memory order and dtype.
  const Tensor g = grad_output.to(y.layout()).to(y.dtype());
  const SoftmaxGeometry geometry = softmax_geometry(y, dim);
  Tensor grad_input = empty_like(y);
  on_device(
      y.device(),
      [&] {
        cpu_floating(y.dtype(), name, [&](auto tag) {
          using T = decltype(tag);
          cpu::softmax_backward<T>(y.data<T>(), g.data<T>(), grad_input.data<T>(), geometry, log);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::softmax_backward(y, g, grad_input, geometry, log)); });
  return grad_input;
}

}  // namespace kiln
