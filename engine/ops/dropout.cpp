// dropout with its backward right below. The backward recomputes the mask from
// (seed, index) instead of saving it: no memory is held between the passes.
#include "engine/ops/dropout.h"

#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln {

DropoutIndexing dropout_indexing(const Tensor& t) {
  DropoutIndexing indexing;
  if (t.layout() == Layout::nhwc) {
    indexing.nhwc = true;
    indexing.C = t.size(1);
    indexing.H = t.size(2);
    indexing.W = t.size(3);
  }
  return indexing;
}

namespace {

// y = mask(seed) * x / (1 - p), laid out like x. Forward and backward both call it.
Tensor apply_dropout_mask(const Tensor& x, double p, uint64_t seed, const char* op) {
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;  // p = 1 drops everything
  const DropoutIndexing indexing = dropout_indexing(x);
  Tensor y = empty_like(x);
  on_device(
      x.device(),
      [&] {
        cpu_floating(x.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::dropout_forward<T>(x.data<T>(), y.data<T>(), x.numel(), static_cast<float>(p), scale, seed,
                                  indexing);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::dropout_forward(x, y, static_cast<float>(p), scale, seed, indexing)); });
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed) {
  check_defined("dropout", "x", x);
  check_dtype_supported("dropout", x);
  KILN_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
  // Identity: the same tensor, so gradients flow through unchanged (as in torch).
  if (!training || p == 0.0) return x;
  Tensor y = apply_dropout_mask(x, p, seed, "dropout");
  if (needs_grad(x))
    record(y, "dropout", {x}, [p, seed](const Tensor& grad_output, const std::vector<bool>&) {
      return std::vector<Tensor>{dropout_backward(grad_output, p, seed)};
    });
  return y;
}

Tensor dropout_backward(const Tensor& grad_output, double p, uint64_t seed) {
  // The mask follows logical indices, so grad_output may be in any layout.
  return apply_dropout_mask(grad_output, p, seed, "dropout_backward");
}

}  // namespace kiln
