// cuDNN descriptor wrappers (see cudnn_util.h).
#include "engine/cuda/cudnn_util.h"

#include <climits>
#include <cstdio>

#include "engine/cuda/cuda_check.h"

namespace kiln::cuda {

namespace {
// Destructors must not throw (a throw during unwinding ends the program): log instead.
void log_if_failed(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS) std::fprintf(stderr, "kiln: %s failed: %s\n", what, cudnnGetErrorString(status));
}
}  // namespace

cudnnDataType_t cudnn_data_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    default: KILN_FAIL(op, ": dtype ", dtype_name(dtype), " has no cuDNN equivalent (f32, f16, bf16, f64)");
  }
}

cudnnTensorFormat_t cudnn_format(Layout layout) {
  return layout == Layout::nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

std::array<int, 4> cudnn_dims4(const Shape& shape, const char* op) {
  KILN_CHECK(shape.dim() >= 1 && shape.dim() <= 4, op, ": cuDNN descriptors here take 1- to 4-D shapes, got ",
             shape);
  std::array<int, 4> dims{1, 1, 1, 1};
  for (int d = 0; d < shape.dim(); ++d) {
    KILN_CHECK(shape[d] <= INT_MAX, op, ": dimension ", d, " of ", shape, " exceeds cuDNN's int range");
    dims[d] = static_cast<int>(shape[d]);
  }
  return dims;
}

// ---------------------------------------------------------------- tensors
TensorDescriptor::TensorDescriptor() { CUDNN_CHECK(cudnnCreateTensorDescriptor(&descriptor_)); }

TensorDescriptor::TensorDescriptor(const Tensor& t, const char* op) : TensorDescriptor() {
  set(t.shape(), t.dtype(), t.layout(), op);
}

TensorDescriptor::TensorDescriptor(const Shape& shape, DType dtype, Layout layout, const char* op)
    : TensorDescriptor() {
  set(shape, dtype, layout, op);
}

TensorDescriptor::~TensorDescriptor() {
  if (descriptor_) log_if_failed(cudnnDestroyTensorDescriptor(descriptor_), "cudnnDestroyTensorDescriptor");
}

void TensorDescriptor::set(const Shape& shape, DType dtype, Layout layout, const char* op) {
  const std::array<int, 4> d = cudnn_dims4(shape, op);
  // Only 4-D tensors can be channels-last; a padded (d0, d1, 1, 1) is the same in both orders.
  const Layout effective = shape.dim() == 4 ? layout : Layout::nchw;
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(descriptor_, cudnn_format(effective), cudnn_data_type(dtype, op), d[0], d[1],
                                         d[2], d[3]));
}

// ---------------------------------------------------------------- filters
FilterDescriptor::FilterDescriptor(const Shape& shape, DType dtype, Layout layout, const char* op) {
  KILN_CHECK(shape.dim() == 4, op, ": a filter is (K, C/groups, R, S), got ", shape);
  // Everything that can throw on bad input runs before the handle exists, so it cannot leak.
  const std::array<int, 4> d = cudnn_dims4(shape, op);
  const cudnnDataType_t data_type = cudnn_data_type(dtype, op);
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&descriptor_));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(descriptor_, data_type, cudnn_format(layout), d[0], d[1], d[2], d[3]));
}

FilterDescriptor::~FilterDescriptor() {
  if (descriptor_) log_if_failed(cudnnDestroyFilterDescriptor(descriptor_), "cudnnDestroyFilterDescriptor");
}

// ---------------------------------------------------------------- alpha / beta
ScalingFactors::ScalingFactors(double alpha, double beta, DType dtype)
    : is_double_(dtype == DType::f64),
      alpha_f_(static_cast<float>(alpha)),
      beta_f_(static_cast<float>(beta)),
      alpha_d_(alpha),
      beta_d_(beta) {}

}  // namespace kiln::cuda
