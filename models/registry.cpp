#include "models/registry.h"

#include "engine/core/checked_math.h"

#include <algorithm>
#include <cmath>

#include <map>

#include "engine/tensor/factory.h"

namespace kiln::models {

namespace {

std::map<std::string, ModelEntry>& entries() {
  static std::map<std::string, ModelEntry> registry;
  return registry;
}

// Runs every model file's hook once, the first time the registry is read.
const std::map<std::string, ModelEntry>& registry() {
  static const bool registered = [] {
    register_resnet_models();
    register_vgg_models();
    register_mobilenet_v2_models();
    return true;
  }();
  (void)registered;
  return entries();
}

std::string joined_names() {
  std::string out;
  for (const std::string& name : model_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

void register_model(ModelEntry entry) {
  KILN_CHECK(!entries().count(entry.name), "register_model: '", entry.name, "' is registered twice");
  const std::string name = entry.name;
  entries().emplace(name, std::move(entry));
}

const ModelEntry& model_entry(const std::string& name) {
  const auto found = registry().find(name);
  KILN_CHECK(found != registry().end(), "unknown model '", name, "' (valid: ", joined_names(), ")");
  return found->second;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, int64_t num_classes, const ModelOptions& options) {
  const ModelEntry& entry = model_entry(name);
  KILN_CHECK(num_classes >= 1 && num_classes <= kMaxClasses, name, ": num_classes must be 1 to ", kMaxClasses,
             ", got ", num_classes);
  return entry.build(num_classes, options);
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& entry : registry()) out.push_back(entry.first);
  return out;
}

std::vector<std::string> stage_names(const std::string& arch) { return model_entry(arch).stages; }

void reset_head(nn::Module& model, const std::string& arch, int64_t num_classes) {
  const ModelEntry& entry = model_entry(arch);
  KILN_CHECK(num_classes >= 1, "reset_head: num_classes must be at least 1, got ", num_classes);
  auto head = std::dynamic_pointer_cast<nn::Linear>(find_module(model, entry.head));
  KILN_CHECK(head != nullptr, "reset_head: '", entry.head, "' of ", arch, " is not a Linear");
  // Module keeps a pointer to each parameter slot, so assigning new tensors to the
  // head's weight and bias swaps the head without touching the module tree: every
  // name ("fc.weight") stays where it was, only the shapes change to (num_classes, in).
  nn::Linear fresh(head->weight.shape()[1], num_classes, head->bias.defined());
  init_linear(fresh, entry.head_init);
  auto place_like = [](const Tensor& value, const Tensor& old) {
    Tensor moved = value.to(old.dtype()).to(old.device()).detach();
    moved.set_requires_grad(true);
    return moved;
  };
  const Tensor old_weight = head->weight;
  head->weight = place_like(fresh.weight, old_weight);
  if (head->bias.defined()) head->bias = place_like(fresh.bias, old_weight);
  head->train(model.is_training());
}

std::vector<optim::ParamGroup> stage_param_groups(const nn::Module& model, const std::string& arch, double lr,
                                                  double weight_decay, double decay) {
  KILN_CHECK(decay > 0 && decay <= 1, "stage learning rates: the decay must be in (0, 1], got ", decay);
  const std::vector<std::string> stages = stage_names(arch);
  const int64_t n = static_cast<int64_t>(stages.size());
  // Two groups per stage (with and without weight decay), in stage order.
  std::vector<optim::ParamGroup> groups(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i)
    for (int no_decay = 0; no_decay < 2; ++no_decay) {
      optim::ParamGroup& g = groups[static_cast<size_t>(2 * i + no_decay)];
      g.name = stages[i] + (no_decay ? " (no decay)" : "");
      g.lr = lr * std::pow(decay, static_cast<double>(n - 1 - i));
      g.weight_decay = no_decay ? 0.0 : weight_decay;
    }
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    int64_t stage = -1;
    for (int64_t i = 0; i < n && stage < 0; ++i)
      if (name.rfind(stages[i] + ".", 0) == 0) stage = i;
    KILN_CHECK(stage >= 0, "stage learning rates: parameter '", name, "' belongs to no stage of ", arch);
    groups[static_cast<size_t>(2 * stage + (p.dim() <= 1 ? 1 : 0))].params.push_back(p);
  }
  std::vector<optim::ParamGroup> used;
  for (auto& g : groups)
    if (!g.params.empty()) used.push_back(std::move(g));
  return used;
}

void apply_finetune(nn::Module& model, const std::string& arch, const std::string& strategy) {
  if (strategy == "all") return;
  const std::vector<std::string> stages = stage_names(arch);
  std::string first;
  if (strategy == "head") {
    first = model_entry(arch).head;
  } else {
    KILN_CHECK(strategy.rfind("from:", 0) == 0, "--finetune must be all, head or from:STAGE, got '", strategy, "'");
    first = strategy.substr(5);
  }
  auto start = std::find(stages.begin(), stages.end(), first);
  if (strategy == "head" && start == stages.end()) start = stages.end() - 1;  // the head is the last stage
  std::string listed;
  for (const std::string& s : stages) listed += (listed.empty() ? "" : ", ") + s;
  KILN_CHECK(start != stages.end(), "--finetune ", strategy, ": ", arch, " has no stage '", first, "' (stages: ",
             listed, ")");
  model.freeze("");
  for (auto stage = start; stage != stages.end(); ++stage) {
    bool has_parameters = false;
    for (auto& [name, t] : model.named_parameters()) has_parameters |= name.rfind(*stage + ".", 0) == 0;
    if (has_parameters) model.unfreeze(*stage + ".");  // the dot keeps features.1 from matching features.10
  }
}

}  // namespace kiln::models
