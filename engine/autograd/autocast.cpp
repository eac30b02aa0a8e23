// The thread-local autocast scope and the operand conversions (see autocast.h).
#include "engine/autograd/autocast.h"

#include "engine/core/check.h"

namespace kiln {

namespace {
thread_local std::optional<DType> scope_dtype;
}

std::optional<DType> autocast_dtype() { return scope_dtype; }

AutocastGuard::AutocastGuard(std::optional<DType> low) : previous_(scope_dtype) {
  KILN_CHECK(!low || *low == DType::bf16 || *low == DType::f16, "autocast: the low dtype must be bf16 or f16, got ",
             dtype_name(*low));
  scope_dtype = low;
}

AutocastGuard::~AutocastGuard() { scope_dtype = previous_; }

bool autocast_applies(std::initializer_list<Tensor> operands) {
  if (!scope_dtype) return false;
  bool any_f32 = false;
  for (const Tensor& t : operands) {
    if (!t.defined()) continue;
    if (t.dtype() == DType::f64) return false;
    any_f32 = any_f32 || t.dtype() == DType::f32;
  }
  return any_f32;
}

Tensor autocast_operand(const Tensor& t) {
  if (!scope_dtype || !t.defined() || t.dtype() != DType::f32) return t;
  if (t.device().is_cuda()) return t.to(*scope_dtype);
  return t.to(*scope_dtype).to(DType::f32);  // the CPU computes in f32 on the rounded values
}

Tensor autocast_result(const Tensor& y) {
  if (!scope_dtype || !y.defined() || y.dtype() != DType::f32 || y.device().is_cuda()) return y;
  return y.to(*scope_dtype).to(DType::f32);
}

}  // namespace kiln
