// Recording ops and running backward. How an op uses it (engine/ops/activation.cpp):
//
//   Tensor relu(const Tensor& x) {
//     Tensor y = ...forward...;
//     if (needs_grad(x))
//       record(y, "relu", {x}, [x](const Tensor& grad_output, const std::vector<bool>&) {
//         return std::vector<Tensor>{relu_backward(x, grad_output)};
//       });
//     return y;
//   }
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/tensor/tensor.h"

namespace kiln {

// True when grad mode is on and t is defined and requires grad (a leaf that asked
// for it, or the output of a recorded op).
bool needs_grad(const Tensor& t);
bool any_needs_grad(std::initializer_list<Tensor> tensors);
bool any_needs_grad(const std::vector<Tensor>& tensors);

// Attach a Node to `output`: it now requires grad, and backward through it calls
// `backward` with a mask saying which of `inputs` need gradients.
void record(const Tensor& output, const std::string& op, const std::vector<Tensor>& inputs,
            BackwardFn backward);

// Reverse-mode sweep from `root` (Tensor::backward calls this).
void run_backward(const Tensor& root, const Tensor& grad_output);

}  // namespace kiln
