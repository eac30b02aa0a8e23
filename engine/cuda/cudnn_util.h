// Small RAII wrappers over cuDNN's legacy descriptors, shared by every op that
// calls cuDNN (convolution here; batch norm and pooling reuse them).
//
// A descriptor tells cuDNN the dtype, the logical (N, C, H, W) sizes and the memory
// order of a buffer. kiln tensors are dense in nchw or nhwc (engine/core/shape.h),
// which map one to one onto CUDNN_TENSOR_NCHW and CUDNN_TENSOR_NHWC. Tensors with
// fewer than 4 dims are described as (d0, d1, 1, 1): a (N, C) matrix or a (C)
// vector of per-channel parameters reads the same in both orders.
//
// Each wrapper owns its handle: copy is deleted, destruction logs instead of throwing.
#pragma once
#include <cudnn.h>

#include <array>

#include "engine/tensor/tensor.h"

namespace kiln::cuda {

// f32 -> CUDNN_DATA_FLOAT, f16 -> HALF, bf16 -> BFLOAT16, f64 -> DOUBLE; other dtypes throw naming `op`.
cudnnDataType_t cudnn_data_type(DType dtype, const char* op);
cudnnTensorFormat_t cudnn_format(Layout layout);  // nchw -> NCHW, nhwc -> NHWC
// The 4 sizes cuDNN is given for `shape`: padded with trailing 1s, each checked to fit an int.
std::array<int, 4> cudnn_dims4(const Shape& shape, const char* op);

class TensorDescriptor {
 public:
  TensorDescriptor();
  // Describes t: its dtype, its shape (padded to 4-D) and its layout.
  TensorDescriptor(const Tensor& t, const char* op);
  TensorDescriptor(const Shape& shape, DType dtype, Layout layout, const char* op);
  ~TensorDescriptor();
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;

  void set(const Shape& shape, DType dtype, Layout layout, const char* op);
  cudnnTensorDescriptor_t get() const { return descriptor_; }

 private:
  cudnnTensorDescriptor_t descriptor_ = nullptr;
};

// A convolution filter (K, C/groups, R, S); layout nhwc means cuDNN's KRSC order.
class FilterDescriptor {
 public:
  FilterDescriptor(const Shape& shape, DType dtype, Layout layout, const char* op);
  ~FilterDescriptor();
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;

  cudnnFilterDescriptor_t get() const { return descriptor_; }

 private:
  cudnnFilterDescriptor_t descriptor_ = nullptr;
};

// The scaling factors cuDNN reads as alpha/beta: double for f64 data, float otherwise
// (f16/bf16 data still take float scalars, as the compute type is f32).
struct ScalingFactors {
  ScalingFactors(double alpha, double beta, DType dtype);
  const void* alpha() const { return is_double_ ? static_cast<const void*>(&alpha_d_) : &alpha_f_; }
  const void* beta() const { return is_double_ ? static_cast<const void*>(&beta_d_) : &beta_f_; }

 private:
  bool is_double_;
  float alpha_f_, beta_f_;
  double alpha_d_, beta_d_;
};

}  // namespace kiln::cuda
