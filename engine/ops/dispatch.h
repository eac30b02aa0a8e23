// The one place that branches on the device, and the CPU dtype switch.
//
//   on_device(x.device(),
//             [&] { cpu_floating(x.dtype(), "relu", [&](auto tag) {
//                     using T = decltype(tag);
//                     cpu::relu_forward<T>(x.data<T>(), y.data<T>(), x.numel()); }); },
//             [&] { KILN_CUDA_ONLY(cuda::relu_forward(x, y)); });
//
// KILN_CUDA_ONLY compiles its argument only in CUDA builds; a CPU-only build turns
// a CUDA tensor reaching that branch into an error naming the build option. There
// is no global mode and no #ifdef inside the ops themselves.
#pragma once
#include <initializer_list>

#include "engine/core/check.h"
#include "engine/tensor/tensor.h"

namespace kiln {

[[noreturn]] void throw_built_without_cuda(const char* file, int line);

template <class CpuFn, class CudaFn>
void on_device(const Device& device, CpuFn&& cpu_fn, CudaFn&& cuda_fn) {
  if (device.is_cuda()) {
    cuda_fn();
  } else {
    cpu_fn();
  }
}

#if KILN_WITH_CUDA
#define KILN_CUDA_ONLY(...) __VA_ARGS__
#else
#define KILN_CUDA_ONLY(...) ::kiln::throw_built_without_cuda(__FILE__, __LINE__)
#endif

// Calls fn(T{}) with T = float or double for the CPU reference kernels.
template <class Fn>
void cpu_floating(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f32: fn(float{}); break;
    case DType::f64: fn(double{}); break;
    default:
      KILN_FAIL(op, ": dtype ", dtype_name(dtype), " is not supported on the cpu (supported: f32, f64; ",
                "f16/bf16 are GPU storage types: convert with .to(DType::f32))");
  }
}

// Checks shared by the ops' boundaries; messages name the op and the tensors.
void check_defined(const char* op, const char* name, const Tensor& t);
void check_same_device(const char* op, std::initializer_list<Tensor> tensors);
void check_same_dtype(const char* op, std::initializer_list<Tensor> tensors);
void check_floating(const char* op, const char* name, const Tensor& t);
void check_dim(const char* op, const char* name, const Tensor& t, int expected_dim, const char* letters);
// Checks t's dtype against the op table's list for t's backend.
void check_dtype_supported(const char* op, const Tensor& t);

}  // namespace kiln
