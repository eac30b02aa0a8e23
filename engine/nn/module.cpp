#include "engine/nn/module.h"

#include <functional>

#include "engine/tensor/factory.h"

namespace kiln::nn {

Tensor Module::forward(const Tensor& x) {
  Tensor y;
  try {
    y = forward_impl(x);
  } catch (const OutOfMemoryError& e) {
    // Name where memory ran out (engine/core/error.h): the innermost module says what
    // it is and what it was given; each parent prepends the child's name.
    if (!e.innermost_module()) throw e.in_module(this, str("(", type_name(), ", input ", x.shape(), ")"));
    for (const auto& [name, child] : children_)
      if (child.get() == e.innermost_module()) throw e.in_parent(this, name);
    throw;  // reached through a module that is not our direct child (a shared layer): keep the path
  }
  if (forward_hooks_->hooks.empty()) return y;
  // A copy: a hook may remove itself (or others) while we walk the list.
  const auto hooks = forward_hooks_->hooks;
  for (const auto& entry : hooks) {
    Tensor replacement = entry.second(*this, x, y);
    if (replacement.defined()) y = replacement;
  }
  return y;
}

Module::HookHandle Module::register_forward_hook(ForwardHook hook) {
  KILN_CHECK(hook != nullptr, type_name(), ".register_forward_hook: the hook is empty");
  const int64_t id = forward_hooks_->next_id++;
  forward_hooks_->hooks.emplace_back(id, std::move(hook));
  return HookHandle(forward_hooks_, id);
}

Module::HookHandle& Module::HookHandle::operator=(HookHandle&& other) noexcept {
  if (this != &other) {
    reset();
    hooks_ = std::move(other.hooks_);
    id_ = other.id_;
    other.hooks_.reset();
  }
  return *this;
}

void Module::HookHandle::reset() {
  if (auto hooks = hooks_.lock()) {
    auto& list = hooks->hooks;
    for (auto it = list.begin(); it != list.end(); ++it)
      if (it->first == id_) {
        list.erase(it);
        break;
      }
  }
  hooks_.reset();
}

Tensor& Module::register_parameter(const std::string& name, Tensor* slot, Tensor value) {
  *slot = value.defined() ? value.detach().set_requires_grad(true) : value;
  parameters_.emplace_back(name, slot);
  return *slot;
}

Tensor& Module::register_buffer(const std::string& name, Tensor* slot, Tensor value) {
  *slot = value;
  buffers_.emplace_back(name, slot);
  return *slot;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, slot] : parameters_)
    if (slot->defined()) out.emplace_back(name, *slot);
  for (const auto& [child_name, child] : children_)
    for (auto& [name, t] : child->named_parameters()) out.emplace_back(child_name + "." + name, t);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& entry : named_parameters()) out.push_back(entry.second);
  return out;
}

std::vector<Tensor> Module::trainable_parameters() const {
  std::vector<Tensor> out;
  for (auto& entry : named_parameters())
    if (entry.second.requires_grad()) out.push_back(entry.second);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, slot] : buffers_)
    if (slot->defined()) out.emplace_back(name, *slot);
  for (const auto& [child_name, child] : children_)
    for (auto& [name, t] : child->named_buffers()) out.emplace_back(child_name + "." + name, t);
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  std::string known;
  for (const auto& [child_name, module] : children_) {
    if (child_name == name) return module;
    known += (known.empty() ? "" : ", ") + child_name;
  }
  KILN_FAIL(type_name(), " has no child module '", name, "' (children: ", known, ")");
}

int64_t Module::parameter_count(bool trainable_only) const {
  int64_t count = 0;
  for (auto& [name, t] : named_parameters())
    if (!trainable_only || t.requires_grad()) count += t.numel();
  return count;
}

void Module::train(bool training) {
  training_ = training;
  for (auto& entry : children_) entry.second->train(training);
}

static int set_requires_grad_by_prefix(const Module& m, const std::string& prefix, bool value, const char* verb) {
  int changed = 0;
  for (auto& [name, t] : m.named_parameters()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    Tensor handle = t;  // shares the TensorImpl with the module's slot
    handle.set_requires_grad(value);
    ++changed;
  }
  KILN_CHECK(changed > 0, verb, "('", prefix, "'): no parameter name starts with '", prefix, "'");
  return changed;
}

int Module::freeze(const std::string& prefix) { return set_requires_grad_by_prefix(*this, prefix, false, "freeze"); }
int Module::unfreeze(const std::string& prefix) { return set_requires_grad_by_prefix(*this, prefix, true, "unfreeze"); }

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, bool> used;
  for (auto& [key, value] : state) used[key] = false;
  std::string missing;
  auto load_into = [&](const std::string& name, Tensor& slot) {
    auto found = state.find(name);
    if (found == state.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
      return;
    }
    used[name] = true;
    KILN_CHECK(found->second.shape() == slot.shape(), "load_state_dict: '", name, "' has shape ",
               found->second.shape(), " in the state, but the model expects ", slot.shape());
    copy_(slot, found->second);
  };
  for (auto& [name, t] : named_parameters()) load_into(name, t);
  for (auto& [name, t] : named_buffers()) load_into(name, t);
  if (!strict) return;
  KILN_CHECK(missing.empty(), "load_state_dict: the state has no value for ", missing);
  std::string unexpected;
  for (auto& [key, was_used] : used)
    if (!was_used) unexpected += (unexpected.empty() ? "" : ", ") + key;
  KILN_CHECK(unexpected.empty(), "load_state_dict: the state has keys the model does not: ", unexpected);
}

void Module::for_each_tensor(const std::function<void(Tensor& slot, bool is_parameter)>& fn) {
  for (auto& [name, slot] : parameters_)
    if (slot->defined()) fn(*slot, true);
  for (auto& [name, slot] : buffers_)
    if (slot->defined()) fn(*slot, false);
  for (auto& entry : children_) entry.second->for_each_tensor(fn);
}

// Moving a parameter makes a new leaf with the same requires_grad.
static void replace(Tensor& slot, const Tensor& moved, bool is_parameter) {
  const bool requires_grad = slot.requires_grad();
  slot = moved.detach();
  if (is_parameter) slot.set_requires_grad(requires_grad);
}

void Module::to(const Device& device) {
  for_each_tensor([&](Tensor& slot, bool is_parameter) { replace(slot, slot.detach().to(device), is_parameter); });
}

void Module::to(DType dtype) {
  for_each_tensor([&](Tensor& slot, bool is_parameter) {
    if (is_floating(slot.dtype())) replace(slot, slot.detach().to(dtype), is_parameter);
  });
}

void Module::to(Layout layout) {
  for_each_tensor([&](Tensor& slot, bool is_parameter) {
    if (slot.dim() == 4) replace(slot, slot.detach().to(layout), is_parameter);
  });
}

std::map<std::string, int64_t> Module::extra_state() const {
  std::map<std::string, int64_t> out = own_extra_state();
  for (const auto& [child_name, child] : children_)
    for (auto& [name, value] : child->extra_state()) out[child_name + "." + name] = value;
  return out;
}

void Module::load_extra_state(const std::map<std::string, int64_t>& state) {
  std::map<std::string, int64_t> own;
  std::map<std::string, std::map<std::string, int64_t>> by_child;
  for (const auto& [name, value] : state) {
    const size_t dot = name.find('.');
    if (dot == std::string::npos)
      own[name] = value;
    else
      by_child[name.substr(0, dot)][name.substr(dot + 1)] = value;
  }
  load_own_extra_state(own);
  for (auto& [child_name, child_state] : by_child) child(child_name)->load_extra_state(child_state);
}

std::string Module::to_string(int indent) const {
  std::string out = type_name() + "(" + extra_repr();
  if (children_.empty()) return out + ")";
  out += "\n";
  for (const auto& [name, child] : children_)
    out += std::string(static_cast<size_t>(indent + 2), ' ') + "(" + name + "): " + child->to_string(indent + 2) + "\n";
  return out + std::string(static_cast<size_t>(indent), ' ') + ")";
}

}  // namespace kiln::nn
