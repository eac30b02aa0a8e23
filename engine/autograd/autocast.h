// Autocast: mixed-precision forward passes with f32 master weights, as
// torch.autocast does it.
//
//   {
//     AutocastGuard autocast(DType::bf16);   // this thread, this scope
//     Tensor logits = model.forward(x);      // convolutions and GEMMs in bf16
//     loss = cross_entropy(logits, labels);  // the loss in f32
//   }
//   loss.backward();                         // gradients land in the f32 parameters
//
// Inside a scope, the ops whose cost is all multiply-adds (conv2d, linear, matmul)
// take their f32 operands (input, weight, bias) through the differentiable
// to(dtype): they compute in the low dtype (tensor cores, half the memory traffic),
// and the backward of to(dtype) converts each gradient back to f32, so the
// parameters, their gradients and the optimizer state stay f32 ("master weights").
// Everything else runs in the dtype it is given. Batch norm keeps f32 statistics
// and affine parameters for a 16-bit input (engine/ops/norm.h), and cross_entropy
// converts 16-bit logits to f32 first, so the softmax and the loss are f32.
//
// The CPU kernels compute in f32/f64 only (f16/bf16 are storage types there), so on
// the CPU an autocast op rounds its operands to the low dtype, computes in f32, and
// rounds its result: its inputs and outputs are the values a GPU stores, its
// arithmetic is f32. (The ops in between stay f32 on the CPU, where a GPU would keep
// them 16-bit.) That is what lets a CPU test check that autocast training tracks f32
// training.
//
// The state is one thread-local dtype, like NoGradGuard's flag: nothing global, no
// device state; a loader thread never sees the trainer's scope. f64 tensors
// (gradient checks) and tensors already in a 16-bit dtype are never converted.
#pragma once
#include <initializer_list>
#include <optional>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln {

// The low dtype of the innermost autocast scope on this thread, or nullopt outside
// any (and inside an AutocastGuard(std::nullopt), which turns it off).
std::optional<DType> autocast_dtype();

class AutocastGuard {
 public:
  // f16 or bf16 turns autocast on for the scope; nullopt turns it off.
  explicit AutocastGuard(std::optional<DType> low);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  std::optional<DType> previous_;
};

// For the autocast ops. True inside a scope when one of `operands` (undefined ones
// ignored) is f32 and none is f64.
bool autocast_applies(std::initializer_list<Tensor> operands);
// An operand as the op computes with it: an f32 t converted to the scope's dtype on
// a GPU, rounded to it (and kept f32) on the CPU; anything else unchanged.
Tensor autocast_operand(const Tensor& t);
// A result as the op returns it: unchanged on a GPU (it is already 16-bit), rounded
// to the scope's dtype on the CPU.
Tensor autocast_result(const Tensor& y);

// The usual shape of an autocast op: with `operands` converted, run `op` outside
// the scope (so it does not convert again) and pass its result through
// autocast_result.
//   if (autocast_applies({x, w, b}))
//     return autocast_call({x, w, b}, [&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); });
template <class Op>
Tensor autocast_call(std::initializer_list<Tensor> operands, Op&& op) {
  std::vector<Tensor> converted;
  for (const Tensor& t : operands) converted.push_back(autocast_operand(t));
  Tensor y;
  {
    AutocastGuard off(std::nullopt);
    y = op(static_cast<const std::vector<Tensor>&>(converted));
  }
  return autocast_result(y);
}

}  // namespace kiln
