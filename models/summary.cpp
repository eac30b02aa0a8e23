#include "models/summary.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/conv.h"
#include "engine/tensor/factory.h"

namespace kiln::models {
namespace {

// K * (C/groups) * R * S * Ho * Wo for a conv applied to input_shape (1, C, H, W).
int64_t conv_macs(const nn::Conv2d& conv, const Shape& input_shape) {
  const Conv2dGeometry g = conv2d_geometry("summary", input_shape, conv.weight.shape(), conv.params);
  return g.K * g.C_per_group() * g.R * g.S * g.Ho * g.Wo;
}

// Every module of the tree in pre-order with its mode, so that setting them back in
// the same order restores mixed modes (a parent's train() would overwrite its children).
void collect_modes(const nn::ModulePtr& module, std::vector<std::pair<nn::ModulePtr, bool>>& out) {
  out.emplace_back(module, module->is_training());
  for (const auto& [name, child] : module->named_children()) collect_modes(child, out);
}

// A module module_macs() counts: its calls are rows, its children (a separable
// conv's two convs) are not.
bool is_counted_leaf(const nn::ModulePtr& m) {
  return std::dynamic_pointer_cast<nn::Conv2d>(m) || std::dynamic_pointer_cast<nn::SeparableConv2d>(m) ||
         std::dynamic_pointer_cast<nn::Linear>(m) || std::dynamic_pointer_cast<nn::BatchNorm>(m) ||
         std::dynamic_pointer_cast<nn::ActivationLayer>(m) || std::dynamic_pointer_cast<nn::MaxPool2d>(m) ||
         std::dynamic_pointer_cast<nn::AvgPool2d>(m) || std::dynamic_pointer_cast<nn::AdaptiveAvgPool2d>(m) ||
         std::dynamic_pointer_cast<nn::Flatten>(m) || std::dynamic_pointer_cast<nn::Dropout>(m);
}

}  // namespace

int64_t module_macs(const nn::ModulePtr& module, const Shape& input_shape, const Shape& output_shape) {
  if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(module)) return conv_macs(*conv, input_shape);
  if (auto separable = std::dynamic_pointer_cast<nn::SeparableConv2d>(module)) {
    const int64_t depthwise = conv_macs(*separable->depthwise, input_shape);
    // The pointwise conv sees the depthwise output: C channels at the output's Ho x Wo.
    const Shape between{input_shape[0], input_shape[1], output_shape[2], output_shape[3]};
    return depthwise + conv_macs(*separable->pointwise, between);
  }
  if (auto linear = std::dynamic_pointer_cast<nn::Linear>(module))
    return linear->weight.size(0) * linear->weight.size(1);  // out * in
  // No multiply-accumulates: normalisation, activations, pooling, reshaping, dropout.
  if (std::dynamic_pointer_cast<nn::BatchNorm>(module) || std::dynamic_pointer_cast<nn::ActivationLayer>(module) ||
      std::dynamic_pointer_cast<nn::MaxPool2d>(module) || std::dynamic_pointer_cast<nn::AvgPool2d>(module) ||
      std::dynamic_pointer_cast<nn::AdaptiveAvgPool2d>(module) || std::dynamic_pointer_cast<nn::Flatten>(module) ||
      std::dynamic_pointer_cast<nn::Dropout>(module))
    return 0;
  return -1;
}

ModelSummary summarize(nn::Module& model, const Shape& input_shape, uint64_t seed) {
  KILN_CHECK(input_shape.dim() == 3 || (input_shape.dim() == 4 && input_shape[0] == 1),
             "summary: input shape must be (C, H, W) or (1, C, H, W), got ", input_shape);
  ModelSummary summary;
  summary.input_shape = input_shape.dim() == 3 ? Shape{1, input_shape[0], input_shape[1], input_shape[2]} : input_shape;

  TensorOptions options;  // the input goes where the weights are, so the walk never mixes devices
  const std::vector<Tensor> parameters = model.parameters();
  if (!parameters.empty()) {
    options.device = parameters.front().device();
    options.dtype = parameters.front().dtype();
  }
  Rng rng(seed);
  Tensor x = uniform(summary.input_shape, 0.5, 1.5, rng, options);

  // The walk needs a shared_ptr to cast children; the root is wrapped without owning it.
  nn::ModulePtr root(&model, [](nn::Module*) {});
  std::vector<std::pair<nn::ModulePtr, bool>> modes;
  collect_modes(root, modes);
  NoGradGuard no_grad;
  model.eval();

  const auto add_row = [&](const std::string& name, const nn::ModulePtr& module, const Shape& in_shape,
                           const Shape& out_shape, bool count_parameters) {
    LayerSummary row;
    row.name = name.empty() ? module->type_name() : name;
    row.type = module->type_name();
    row.output_shape = out_shape;
    row.parameters = count_parameters ? module->parameter_count() : 0;
    row.trainable_parameters = count_parameters ? module->parameter_count(true) : 0;
    row.macs = module_macs(module, in_shape, out_shape);
    if (row.macs < 0) {
      summary.uncounted.push_back(row.name);
      row.macs = 0;
    }
    summary.total_parameters += row.parameters;
    summary.trainable_parameters += row.trainable_parameters;
    summary.total_macs += row.macs;
    summary.layers.push_back(row);
  };
  // A container that is not a Sequential (a residual block, a whole ResNet) has no
  // order of children to feed by hand: its leaves get forward hooks, the container
  // runs once, and each leaf call becomes a row in call order, with the shapes it
  // really saw. A leaf called twice (a shared relu) gives two rows, its parameters
  // counted at the first.
  const auto walk_with_hooks = [&](const std::string& name, const nn::ModulePtr& container) {
    std::vector<nn::Module::HookHandle> handles;
    std::vector<std::pair<std::string, nn::ModulePtr>> leaves;
    std::function<void(const std::string&, const nn::ModulePtr&)> find_leaves = [&](const std::string& path,
                                                                                    const nn::ModulePtr& m) {
      const bool known = is_counted_leaf(m) || m->named_children().empty();
      if (known && m != container) {
        leaves.emplace_back(path, m);
        return;
      }
      for (const auto& [child_name, child] : m->named_children())
        find_leaves(path.empty() ? child_name : path + "." + child_name, child);
    };
    find_leaves(name, container);
    std::map<const nn::Module*, bool> seen;
    for (const auto& [path, leaf] : leaves) {
      const std::string leaf_path = path;
      const nn::ModulePtr leaf_module = leaf;
      handles.push_back(leaf->register_forward_hook([&, leaf_path, leaf_module](nn::Module& m, const Tensor& input,
                                                                                   const Tensor& output) {
        add_row(leaf_path, leaf_module, input.shape(), output.shape(), !seen[&m]);
        seen[&m] = true;
        return Tensor();
      }));
    }
    x = container->forward(x);
  };
  std::function<void(const std::string&, const nn::ModulePtr&)> walk = [&](const std::string& name,
                                                                            const nn::ModulePtr& module) {
    if (std::dynamic_pointer_cast<nn::Sequential>(module)) {
      for (const auto& [child_name, child] : module->named_children())
        walk(name.empty() ? child_name : name + "." + child_name, child);
      return;
    }
    if (!is_counted_leaf(module) && !module->named_children().empty()) {
      walk_with_hooks(name, module);
      return;
    }
    const Shape in_shape = x.shape();
    x = module->forward(x);
    add_row(name, module, in_shape, x.shape(), true);
  };
  try {
    walk("", root);
  } catch (...) {
    for (auto& [module, training] : modes) module->train(training);
    throw;
  }
  for (auto& [module, training] : modes) module->train(training);
  return summary;
}

std::string with_thousands(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string human_count(double value) {
  const char* units[] = {"", " K", " M", " G", " T"};
  int unit = 0;
  while (value >= 1000 && unit < 4) {
    value /= 1000;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, unit == 0 ? "%.0f%s" : "%.2f%s", value, units[unit]);
  return buffer;
}

std::string ModelSummary::to_table() const {
  // Column widths follow the longest entry, so long layer names never break the grid.
  size_t name_w = 5, type_w = 4, shape_w = 12, params_w = 10, train_w = 9, macs_w = 4;
  for (const LayerSummary& l : layers) {
    name_w = std::max(name_w, l.name.size());
    type_w = std::max(type_w, l.type.size());
    shape_w = std::max(shape_w, l.output_shape.to_string().size());
  }
  params_w = std::max(params_w, with_thousands(total_parameters).size());
  train_w = std::max(train_w, with_thousands(trainable_parameters).size());
  macs_w = std::max(macs_w, with_thousands(total_macs).size());
  std::ostringstream out;
  char line[512];
  auto row = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& d,
                 const std::string& e, const std::string& f) {
    std::snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %*s  %*s  %*s\n", static_cast<int>(name_w), a.c_str(),
                  static_cast<int>(type_w), b.c_str(), static_cast<int>(shape_w), c.c_str(),
                  static_cast<int>(params_w), d.c_str(), static_cast<int>(train_w), e.c_str(),
                  static_cast<int>(macs_w), f.c_str());
    out << line;
  };
  const size_t total_w = name_w + type_w + shape_w + params_w + train_w + macs_w + 10;
  out << "input " << input_shape.to_string() << "\n";
  row("layer", "type", "output shape", "parameters", "trainable", "MACs");
  out << std::string(total_w, '-') << '\n';
  for (const LayerSummary& l : layers)
    row(l.name, l.type, l.output_shape.to_string(), with_thousands(l.parameters),
        with_thousands(l.trainable_parameters), with_thousands(l.macs));
  out << std::string(total_w, '-') << '\n';
  row("total", "", "", with_thousands(total_parameters), with_thousands(trainable_parameters),
      with_thousands(total_macs));
  std::snprintf(line, sizeof line, "\nparameters: %s (%s trainable, %s frozen), %.2f MiB as f32\n",
                with_thousands(total_parameters).c_str(), with_thousands(trainable_parameters).c_str(),
                with_thousands(total_parameters - trainable_parameters).c_str(),
                static_cast<double>(total_parameters) * 4 / (1024.0 * 1024.0));
  out << line;
  out << "MACs per image: " << with_thousands(total_macs) << " (" << human_count(static_cast<double>(total_macs))
      << "), about twice that in FLOPs\n";
  if (!uncounted.empty()) {
    out << "MACs not counted (unknown layer type, taken as 0):";
    for (const std::string& name : uncounted) out << ' ' << name;
    out << '\n';
  }
  return out.str();
}

}  // namespace kiln::models
