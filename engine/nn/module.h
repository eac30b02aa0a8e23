// nn::Module: a layer or a network, with named parameters, buffers and children.
//
// A Module registers its parameters (learned tensors) and buffers (state such as
// batch norm's running statistics) by name, and its sub-modules as children, so
// that the whole tree can be walked: named_parameters() gives "features.0.weight",
// state_dict() gives every tensor to save, freeze("layer1") stops gradients for a
// prefix. train()/eval() switch the mode of the tree (dropout, batch norm).
//
// Modules live behind std::shared_ptr and are not copyable: the registry holds
// pointers to the members it names.
//
// forward() is not virtual: a layer implements forward_impl(), and forward() runs it
// and then the module's forward hooks (as torch's __call__ runs forward and hooks).
// Every caller, whether a network calling its children (`conv1->forward(x)`) or a
// tool calling the root, goes through forward(), so a hook on any sub-module fires
// however its parent calls it. report/visualize.h captures feature maps this way.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor/tensor.h"

namespace kiln::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // forward_impl(x), then each forward hook in registration order.
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  virtual std::string type_name() const = 0;  // "Conv2d"
  virtual std::string extra_repr() const { return ""; }  // "3, 64, kernel=(7, 7), stride=(2, 2)"

  // ---- the tree
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;  // recursive, "a.b.weight"
  std::vector<Tensor> parameters() const;
  std::vector<Tensor> trainable_parameters() const;  // requires_grad only
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::shared_ptr<Module> child(const std::string& name) const;  // throws listing the children
  int64_t parameter_count(bool trainable_only = false) const;

  // ---- modes
  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Sets requires_grad=false on every parameter whose name starts with `prefix`
  // ("" = all). Returns how many were changed; throws if the prefix matches none.
  int freeze(const std::string& prefix = "");
  int unfreeze(const std::string& prefix = "");

  // ---- state
  std::map<std::string, Tensor> state_dict() const;  // parameters and buffers by name
  // Copies values in (keeping each tensor's device/dtype/layout). With strict, a
  // missing or unexpected key is an error; a shape mismatch always is. Each error
  // names the key and both shapes.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  // Moves every parameter and buffer (parameters stay leaves that require grad as before).
  void to(const Device& device);
  void to(DType dtype);  // floating parameters and buffers only
  void to(Layout layout);  // 4-D parameters (conv weights) only

  std::string to_string(int indent = 0) const;  // a printable tree, like PyTorch's repr

  // ---- forward hooks (torch's register_forward_hook)
  // hook(module, input, output) runs after every forward() of this module. It may
  // return a replacement for the output (the rest of the network then sees that
  // tensor), or an undefined Tensor to keep the output as it is. The hook stays
  // until the returned handle is destroyed or reset. A module called more than
  // once per network forward (ResNet's shared relu) runs its hooks at every call.
  using ForwardHook = std::function<Tensor(Module& module, const Tensor& input, const Tensor& output)>;
  class HookHandle;
  [[nodiscard]] HookHandle register_forward_hook(ForwardHook hook);
  // True while a hook is registered. Code that would compute this module's output
  // without calling forward() (a fused op, engine/nn/layers.h) must not do so then.
  bool has_forward_hooks() const { return !forward_hooks_->hooks.empty(); }

  // Integer state that is neither a parameter nor a buffer but must survive a
  // checkpoint for an exact resume (how many masks a Dropout has drawn), by
  // dotted name. Modules with such state override own_extra_state().
  std::map<std::string, int64_t> extra_state() const;
  void load_extra_state(const std::map<std::string, int64_t>& state);

 protected:
  // The layer's computation; called only through forward(), so hooks cannot be bypassed.
  virtual Tensor forward_impl(const Tensor& x) = 0;

  Tensor& register_parameter(const std::string& name, Tensor* slot, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor* slot, Tensor value);
  virtual std::map<std::string, int64_t> own_extra_state() const { return {}; }
  virtual void load_own_extra_state(const std::map<std::string, int64_t>& state) {}

  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }

 private:
  void for_each_tensor(const std::function<void(Tensor& slot, bool is_parameter)>& fn);

  bool training_ = true;
  std::vector<std::pair<std::string, Tensor*>> parameters_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  // Shared with the HookHandles (through weak pointers), so a handle that outlives
  // its module, or a module that outlives its handle, is safe either way round.
  struct ForwardHooks {
    int64_t next_id = 0;
    std::vector<std::pair<int64_t, ForwardHook>> hooks;
  };
  std::shared_ptr<ForwardHooks> forward_hooks_ = std::make_shared<ForwardHooks>();
};

// Removes its hook when destroyed (RAII, like NoGradGuard); move-only.
class Module::HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<ForwardHooks> hooks, int64_t id) : hooks_(std::move(hooks)), id_(id) {}
  HookHandle(HookHandle&& other) noexcept : hooks_(std::move(other.hooks_)), id_(other.id_) { other.hooks_.reset(); }
  HookHandle& operator=(HookHandle&& other) noexcept;
  HookHandle(const HookHandle&) = delete;
  HookHandle& operator=(const HookHandle&) = delete;
  ~HookHandle() { reset(); }
  void reset();  // removes the hook now

 private:
  std::weak_ptr<ForwardHooks> hooks_;
  int64_t id_ = -1;
};

using ModulePtr = std::shared_ptr<Module>;

}  // namespace kiln::nn
