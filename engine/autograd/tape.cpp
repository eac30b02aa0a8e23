// The backward sweep, in the spirit of micrograd's Value.backward():
//
//   1. Order the graph: a depth-first walk from the root's grad_fn gives every Node
//      after all the Nodes that consume its output (reverse topological order).
//   2. Seed the root with grad_output (1 for a scalar loss).
//   3. Visit Nodes in that order. Each Node's backward returns one gradient per
//      input; a gradient for a non-leaf is summed into the pending gradient of the
//      input's grad_fn (branches and residual adds meet here), a gradient for a leaf
//      is accumulated into leaf.grad (+=, so several backward calls add up).
//   4. Right after a Node has run, its closure is dropped, which frees its saved
//      tensors: activations live only until backward has used them.
//
// Frozen parts cost nothing: an op records a Node only if some input needs grad,
// so a frozen backbone fed with data that needs no grad has no Nodes at all.
#include "engine/autograd/tape.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"

namespace kiln {

bool needs_grad(const Tensor& t) { return grad_mode_enabled() && t.defined() && t.requires_grad(); }

bool any_needs_grad(std::initializer_list<Tensor> tensors) {
  for (const Tensor& t : tensors)
    if (needs_grad(t)) return true;
  return false;
}

bool any_needs_grad(const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors)
    if (needs_grad(t)) return true;
  return false;
}

void record(const Tensor& output, const std::string& op, const std::vector<Tensor>& inputs,
            BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->op = op;
  for (const Tensor& input : inputs)
    node->inputs.push_back(needs_grad(input) ? input.ensure_autograd_meta() : nullptr);
  node->backward = std::move(backward);
  auto meta = output.ensure_autograd_meta();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
}

namespace {

// Nodes in the order backward must visit them (every consumer before its producers).
std::vector<Node*> reverse_topological_order(Node* root) {
  std::vector<Node*> post_order;
  std::unordered_set<Node*> visited;
  // Iterative DFS: deep networks (ResNet-101 has ~500 nodes) must not overflow the stack.
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  visited.insert(root);
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      const auto& meta = node->inputs[next_input++];
      Node* child = meta ? meta->grad_fn.get() : nullptr;
      if (child && visited.insert(child).second) stack.push_back({child, 0});
    } else {
      post_order.push_back(node);
      stack.pop_back();
    }
  }
  return {post_order.rbegin(), post_order.rend()};
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_output) {
  KILN_CHECK(root.requires_grad(), "backward: the tensor does not require grad (no input of the ops ",
             "that made it requires grad, or it was made under NoGradGuard)");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    KILN_CHECK(root.numel() == 1, "backward: grad_output can be omitted only for a one-element tensor (a loss); ",
               "got shape ", root.shape(), ", pass a gradient of that shape");
    seed = ones_like(root);
  }
  KILN_CHECK(seed.shape() == root.shape(), "backward: grad_output has shape ", seed.shape(),
             ", expected the root's shape ", root.shape());

  NoGradGuard no_grad;  // gradient arithmetic is not itself recorded
  auto root_meta = root.autograd_meta();
  if (!root_meta->grad_fn) {  // backward on a leaf: its gradient is the seed
    root.set_grad(root.grad().defined() ? add(root.grad(), seed) : seed);
    return;
  }

  std::unordered_map<Node*, Tensor> pending;  // summed gradient w.r.t. each node's output
  pending[root_meta->grad_fn.get()] = seed;
  for (Node* node : reverse_topological_order(root_meta->grad_fn.get())) {
    auto found = pending.find(node);
    if (found == pending.end()) continue;  // no gradient flowed here
    Tensor grad = found->second;
    pending.erase(found);
    KILN_CHECK(node->backward, "backward through '", node->op,
               "' a second time: its saved tensors were freed by the first backward");
    std::vector<bool> mask;
    for (const auto& meta : node->inputs) mask.push_back(meta != nullptr);
    std::vector<Tensor> grads;
    try {
      grads = node->backward(grad, mask);
    } catch (const OutOfMemoryError& e) {
      throw e.in_backward(str("the backward of '", node->op, "' (gradient ", grad.shape(), ")"));
    }
    node->backward = nullptr;  // free the saved tensors now
    KILN_CHECK(grads.size() == node->inputs.size(), "backward of '", node->op, "' returned ", grads.size(),
               " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const auto& meta = node->inputs[i];
      if (!meta || !grads[i].defined()) continue;
      if (meta->grad_fn) {
        Tensor& slot = pending[meta->grad_fn.get()];
        slot = slot.defined() ? add(slot, grads[i]) : grads[i];
      } else if (meta->requires_grad) {
        // A backward may hand its incoming gradient straight through (add does);
        // copy it then, so that an optimizer scaling one leaf's grad in place
        // (clipping, weight decay) cannot reach another tensor.
        Tensor fresh = grads[i].same_storage(grad) ? grads[i].clone() : grads[i];
        meta->grad = std::make_shared<Tensor>(meta->grad ? add(*meta->grad, fresh) : fresh);
      }
    }
  }
}

}  // namespace kiln
