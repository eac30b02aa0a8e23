#include "engine/ops/dispatch.h"

#include "engine/ops/op_table.h"

namespace kiln {

void throw_built_without_cuda(const char* file, int line) {
  throw_error("a CUDA tensor reached an op, but kiln was built without CUDA (KILN_CUDA=OFF, or AUTO found no "
              "nvcc/cuDNN); rebuild with -DKILN_CUDA=ON on a machine with the CUDA toolkit and cuDNN",
              file, line);
}

void check_defined(const char* op, const char* name, const Tensor& t) {
  KILN_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
}

void check_same_device(const char* op, std::initializer_list<Tensor> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (!first) { first = &t; continue; }
    KILN_CHECK(t.device() == first->device(), op, ": all tensors must be on one device; got ", first->describe(),
               " and ", t.describe(), " (move one with .to(device))");
  }
}

void check_same_dtype(const char* op, std::initializer_list<Tensor> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (!first) { first = &t; continue; }
    KILN_CHECK(t.dtype() == first->dtype(), op, ": all tensors must have one dtype; got ", first->describe(),
               " and ", t.describe(), " (convert one with .to(dtype))");
  }
}

void check_floating(const char* op, const char* name, const Tensor& t) {
  KILN_CHECK(is_floating(t.dtype()), op, ": ", name, " must be a floating tensor, got ", t.describe());
}

void check_dim(const char* op, const char* name, const Tensor& t, int expected_dim, const char* letters) {
  KILN_CHECK(t.dim() == expected_dim, op, ": ", name, " must be ", expected_dim, "-D ", letters, ", got shape ",
             t.shape());
}

void check_dtype_supported(const char* op, const Tensor& t) {
  const OpCase& row = op_case(op);
  const DTypeSet& supported = t.device().is_cpu() ? row.cpu_dtypes : row.cuda_dtypes;
  KILN_CHECK(supported.contains(t.dtype()), op, ": dtype ", dtype_name(t.dtype()), " is not supported on ",
             t.device().is_cpu() ? "the cpu" : "cuda", " (supported: ", supported.to_string(), ")");
}

}  // namespace kiln
