// The autograd graph: AutogradMeta hangs off a tensor, Node records one op.
//
// An op whose inputs need gradients records a Node: the op's name, one edge per
// input (that input's AutogradMeta, or null when the input needs no gradient) and a
// backward closure. The closure captures the tensors the backward needs ("saved
// tensors") by value and calls the op's named backward functions, e.g.
// conv2d_backward_input / conv2d_backward_weight. tape.cpp walks Nodes in reverse
// topological order; see there.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

class Tensor;
struct Node;

// Per-tensor autograd state. A leaf (parameter, input) has requires_grad and no
// grad_fn, and receives its gradient in `grad` (accumulated, +=). A non-leaf has
// the grad_fn of the op that made it.
struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<Tensor> grad;      // leaves only; null until the first backward
  std::shared_ptr<Node> grad_fn;     // null for leaves
};

// backward(grad_output, grad_input_mask) returns one gradient per input; an entry
// may be undefined where grad_input_mask says that input needs none (frozen
// weights, data). It *returns* gradients; accumulation into leaves is the tape's job.
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<bool>& grad_input_mask)>;

struct Node {
  std::string op;                                    // "conv2d", for messages and graph dumps
  std::vector<std::shared_ptr<AutogradMeta>> inputs;  // null: that input needs no gradient
  BackwardFn backward;                               // reset after use: frees the saved tensors
};

}  // namespace kiln
