// Making tensors. Every factory names its dtype, device and layout (defaults: f32,
// cpu, nchw); random factories take an explicit Rng so that runs are reproducible.
#pragma once
#include <vector>

#include "engine/core/rng.h"
#include "engine/tensor/tensor.h"

namespace kiln {

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  Layout layout = Layout::nchw;
};
TensorOptions options_of(const Tensor& t);  // same dtype, device and layout as t

Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor empty_like(const Tensor& t);
// A CPU tensor in page-locked memory (see pinned_host_allocator()): the staging
// buffer for host-to-GPU copies that should overlap with compute.
Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);
// True for a tensor made by empty_pinned in a CUDA build (without CUDA nothing is pinned).
bool is_pinned(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

// Values in logical row-major order (whatever the layout asked for).
Tensor from_vector(const std::vector<double>& values, const Shape& shape, TensorOptions options = {});
Tensor scalar(double value, TensorOptions options = {});  // shape ()
Tensor arange(int64_t n, TensorOptions options = {});     // 0, 1, ..., n-1

// Random tensors, drawn on the host from `rng` then moved to options.device: the
// same seed gives the same values on every device.
Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng, TensorOptions options = {});
Tensor randn(const Shape& shape, Rng& rng, TensorOptions options = {});

// In-place fill and copy (no autograd): dst keeps its dtype, device and layout.
void fill_(const Tensor& dst, double value);
void copy_(const Tensor& dst, const Tensor& src);  // same shape; converts dtype, layout, device

}  // namespace kiln
