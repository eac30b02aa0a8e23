// import_onnx: the structural matcher described in onnx_import.h.
//   native_units()   step 1, the model's weight-carrying leaves in registration order
//   canonical_order() step 2, the ONNX nodes with each residual's main branch first
//   onnx_units()     step 3, weight-carrying ONNX nodes grouped into units
//   load_*()         step 4, shape checks and copies
#include "weights/onnx_import.h"

#include <cmath>
#include <functional>
#include <set>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/factory.h"

namespace kiln {
namespace {

using onnx::Node;

// ---- step 1: the native model

struct NativeUnit {
  std::string conv_name, bn_name, linear_name;
  nn::Conv2d* conv = nullptr;
  nn::BatchNorm* bn = nullptr;
  nn::Linear* linear = nullptr;
  std::string describe() const {
    if (conv) return str("Conv2d '", conv_name, "'", bn ? str(" + BatchNorm '", bn_name, "'") : "");
    if (linear) return str("Linear '", linear_name, "'");
    return str("BatchNorm '", bn_name, "'");
  }
};

struct NativeModel {
  std::vector<NativeUnit> units;
  std::vector<std::pair<std::string, nn::MaxPool2d*>> max_pools;
};

void collect_leaves(nn::Module& module, const std::string& prefix, std::vector<std::pair<std::string, nn::Module*>>& out) {
  for (auto& [name, child] : module.named_children()) {
    const std::string full = prefix.empty() ? name : prefix + "." + name;
    if (dynamic_cast<nn::Conv2d*>(child.get()) || dynamic_cast<nn::BatchNorm*>(child.get()) ||
        dynamic_cast<nn::Linear*>(child.get()) || dynamic_cast<nn::MaxPool2d*>(child.get()))
      out.emplace_back(full, child.get());
    else
      collect_leaves(*child, full, out);
  }
}

NativeModel native_units(nn::Module& model) {
  std::vector<std::pair<std::string, nn::Module*>> leaves;
  collect_leaves(model, "", leaves);
  NativeModel native;
  for (size_t i = 0; i < leaves.size(); ++i) {
    auto& [name, module] = leaves[i];
    NativeUnit unit;
    if (auto* pool = dynamic_cast<nn::MaxPool2d*>(module)) {
      native.max_pools.emplace_back(name, pool);
      continue;
    } else if (auto* conv = dynamic_cast<nn::Conv2d*>(module)) {
      unit.conv = conv;
      unit.conv_name = name;
      auto* bn = i + 1 < leaves.size() ? dynamic_cast<nn::BatchNorm*>(leaves[i + 1].second) : nullptr;
      if (bn && bn->running_mean.numel() == conv->weight.size(0)) {
        unit.bn = bn;
        unit.bn_name = leaves[++i].first;
      }
    } else if (auto* linear = dynamic_cast<nn::Linear*>(module)) {
      unit.linear = linear;
      unit.linear_name = name;
    } else {
      unit.bn = dynamic_cast<nn::BatchNorm*>(module);
      unit.bn_name = name;
    }
    native.units.push_back(unit);
  }
  return native;
}

// ---- step 2: the ONNX graph in canonical order

bool carries_weights(const Node& n) {
  return n.op_type == "Conv" || n.op_type == "Gemm" || n.op_type == "MatMul" || n.op_type == "BatchNormalization";
}

const std::set<std::string>& supported_ops() {
  static const std::set<std::string> ops = {
      "Conv", "BatchNormalization", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool",
      "GlobalAveragePool", "Flatten", "Reshape", "Expand", "Constant", "Identity", "Dropout"};
  return ops;
}

struct OnnxGraph {
  const onnx::Model& model;
  std::map<std::string, int> producer;             // value -> index of the node that computes it
  std::map<std::string, std::vector<int>> consumers;  // value -> nodes that read it
  std::map<std::string, Tensor> constants;         // initializers and Constant outputs

  explicit OnnxGraph(const onnx::Model& m) : model(m) {
    const auto& nodes = m.graph.nodes;
    constants = m.graph.initializers;
    for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
      const Node& n = nodes[i];
      KILN_CHECK(n.domain.empty() || n.domain == "ai.onnx", "onnx import: ", m.path, ": ", n.describe(),
                 " is in domain '", n.domain, "'; kiln maps only standard ONNX ops");
      KILN_CHECK(supported_ops().count(n.op_type), "onnx import: ", m.path, ": op ", n.op_type, " (", n.describe(),
                 ") is not supported; kiln maps ", join_ops());
      // The inputs and outputs every mapped op needs (onnx.proto's operator specs), checked
      // once here so the mapping below can index them (an Add with one input made it read
      // past its inputs: found by tests/fuzz/fuzz_onnx.cpp).
      static const std::map<std::string, size_t> kMinInputs = {
          {"Conv", 2}, {"BatchNormalization", 5}, {"Gemm", 2}, {"MatMul", 2}, {"Add", 2}, {"Reshape", 2}, {"Expand", 2}};
      const auto min_inputs = kMinInputs.find(n.op_type);
      const size_t need = min_inputs == kMinInputs.end() ? (n.op_type == "Constant" ? 0 : 1) : min_inputs->second;
      KILN_CHECK(n.inputs.size() >= need && !n.outputs.empty() && !n.outputs[0].empty(), "onnx import: ", m.path, ": ",
                 n.describe(), " has ", n.inputs.size(), " inputs and ", n.outputs.size(), " outputs; ", n.op_type,
                 " needs at least ", need, " inputs and one output");
      for (const std::string& out : n.outputs) producer[out] = i;
      for (const std::string& in : n.inputs)
        if (!in.empty()) consumers[in].push_back(i);
      if (n.op_type == "Constant") {
        const onnx::Attribute* value = n.find("value");
        KILN_CHECK(value && value->t.defined(), "onnx import: ", m.path, ": ", n.describe(), " has no tensor 'value'");
        constants[n.outputs.at(0)] = value->t;
      }
    }
    // An Identity of a constant is that constant. torch.onnx stores equal initializers
    // once and names the others with Identity nodes (VGG's zero biases at random
    // init: 'classifier.3.bias' = Identity('classifier.0.bias')); a chain may come in
    // any order, so repeat until nothing changes.
    for (bool changed = true; changed;) {
      changed = false;
      for (const Node& n : nodes)
        if (n.op_type == "Identity" && n.inputs.size() == 1 && constants.count(n.inputs[0]) &&
            !constants.count(n.outputs.at(0))) {
          constants[n.outputs[0]] = constants.at(n.inputs[0]);
          changed = true;
        }
    }
  }
  static std::string join_ops() {
    std::string s;
    for (const std::string& op : supported_ops()) s += (s.empty() ? "" : ", ") + op;
    return s;
  }
  const Node& node(int i) const { return model.graph.nodes[i]; }
  bool is_computed(const std::string& value) const { return producer.count(value) && !constants.count(value); }
  // Weight-carrying nodes among the ancestors of `value` (the node producing it included).
  int weighted_ancestors(const std::string& value) const {
    std::set<int> seen;
    std::vector<std::string> stack = {value};
    int count = 0;
    while (!stack.empty()) {
      const std::string v = stack.back();
      stack.pop_back();
      auto it = producer.find(v);
      if (it == producer.end() || !seen.insert(it->second).second) continue;
      count += carries_weights(node(it->second));
      for (const std::string& in : node(it->second).inputs) stack.push_back(in);
    }
    return count;
  }
};

std::vector<int> canonical_order(const OnnxGraph& g) {
  std::vector<int> order;
  std::vector<char> visited(g.model.graph.nodes.size(), 0);
  // Recursion depth is bounded by the longest path (a few hundred nodes for ResNet-101).
  std::function<void(const std::string&)> visit = [&](const std::string& value) {
    auto it = g.producer.find(value);
    if (it == g.producer.end() || visited[it->second]) return;
    visited[it->second] = 1;
    const Node& n = g.node(it->second);
    std::vector<std::string> inputs = n.inputs;
    if (n.op_type == "Add" && inputs.size() == 2 && g.is_computed(inputs[0]) && g.is_computed(inputs[1]) &&
        g.weighted_ancestors(inputs[1]) > g.weighted_ancestors(inputs[0]))
      std::swap(inputs[0], inputs[1]);  // main branch first, shortcut second
    for (const std::string& in : inputs) visit(in);
    order.push_back(it->second);
  };
  for (const std::string& out : g.model.graph.outputs) visit(out);
  return order;
}

// ---- step 3: ONNX units

struct OnnxUnit {
  const Node* conv = nullptr;    // Conv
  const Node* bn = nullptr;      // BatchNormalization (after the conv, or alone)
  const Node* linear = nullptr;  // Gemm or MatMul
  Tensor linear_weight, linear_bias;  // (K, C) and (K) as Linear stores them; bias may be undefined
  const Node* main() const { return conv ? conv : linear ? linear : bn; }
};

Tensor constant(const OnnxGraph& g, const Node& n, size_t input, const char* what) {
  KILN_CHECK(input < n.inputs.size() && g.constants.count(n.inputs[input]), "onnx import: ", g.model.path, ": ",
             n.describe(), ": its ", what, " (input ", input, ") must be an initializer or a Constant");
  return g.constants.at(n.inputs[input]);
}

Tensor transpose2d(const Tensor& m) {  // (A, B) -> (B, A), host f32
  const Tensor src = m.to(DType::f32);
  Tensor out = empty({m.size(1), m.size(0)});
  for (int64_t a = 0; a < m.size(0); ++a)
    for (int64_t b = 0; b < m.size(1); ++b) out.data<float>()[b * m.size(0) + a] = src.data<float>()[a * m.size(1) + b];
  return out;
}

// Checks the ops that carry no weights but change the function (Clip bounds, Gemm flags).
void check_clip(const OnnxGraph& g, const Node& n) {
  double lo = n.get_float("min", -INFINITY), hi = n.get_float("max", INFINITY);  // opset < 11: attributes
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) lo = constant(g, n, 1, "min").to(DType::f64).item();
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) hi = constant(g, n, 2, "max").to(DType::f64).item();
  KILN_CHECK(lo == 0 && (hi == 6 || std::isinf(hi)), "onnx import: ", g.model.path, ": ", n.describe(),
             " clips to [", lo, ", ", hi, "]; kiln maps Clip only as ReLU6 [0, 6] or ReLU [0, inf)");
}

std::vector<OnnxUnit> onnx_units(const OnnxGraph& g, const std::vector<int>& order, std::vector<const Node*>& max_pools) {
  std::vector<OnnxUnit> units;
  std::set<const Node*> absorbed;  // BatchNormalization after a Conv, Add after a MatMul
  const auto sole_consumer = [&](const Node& n, const char* op) -> const Node* {
    auto it = g.consumers.find(n.outputs.at(0));
    if (it == g.consumers.end() || it->second.size() != 1) return nullptr;
    const Node& next = g.node(it->second[0]);
    return next.op_type == op ? &next : nullptr;
  };
  for (int index : order) {
    const Node& n = g.node(index);
    if (absorbed.count(&n)) continue;
    OnnxUnit unit;
    if (n.op_type == "Conv") {
      unit.conv = &n;
      unit.bn = sole_consumer(n, "BatchNormalization");
      if (unit.bn) absorbed.insert(unit.bn);
    } else if (n.op_type == "BatchNormalization") {
      unit.bn = &n;
    } else if (n.op_type == "Gemm") {
      KILN_CHECK(n.get_int("transA", 0) == 0 && n.get_float("alpha", 1) == 1 && n.get_float("beta", 1) == 1,
                 "onnx import: ", g.model.path, ": ", n.describe(), " has transA/alpha/beta other than 0/1/1, "
                 "which a Linear layer cannot express");
      const Tensor b = constant(g, n, 1, "weight B");
      KILN_CHECK(b.dim() == 2, "onnx import: ", g.model.path, ": ", n.describe(), ": weight must be 2-D, got ", b.shape());
      unit.linear = &n;
      unit.linear_weight = n.get_int("transB", 0) ? b : transpose2d(b);  // Linear stores (K, C); Gemm B is (C, K) unless transB
      if (n.inputs.size() > 2 && !n.inputs[2].empty()) unit.linear_bias = constant(g, n, 2, "bias C");
    } else if (n.op_type == "MatMul") {
      const Tensor b = constant(g, n, 1, "weight");
      KILN_CHECK(b.dim() == 2, "onnx import: ", g.model.path, ": ", n.describe(), ": weight must be 2-D, got ", b.shape());
      unit.linear = &n;
      unit.linear_weight = transpose2d(b);  // MatMul computes x (N, C) @ B (C, K)
      if (const Node* add = sole_consumer(n, "Add")) {
        const std::string& other = add->inputs[add->inputs[0] == n.outputs[0] ? 1 : 0];
        if (g.constants.count(other)) {
          unit.linear_bias = g.constants.at(other);
          absorbed.insert(add);
        }
      }
    } else {
      if (n.op_type == "Clip") check_clip(g, n);
      if (n.op_type == "MaxPool") max_pools.push_back(&n);
      KILN_CHECK(n.op_type != "Add" || (g.is_computed(n.inputs.at(0)) && g.is_computed(n.inputs.at(1))),
                 "onnx import: ", g.model.path, ": ", n.describe(), " adds a constant that is not the bias of a MatMul");
      continue;
    }
    units.push_back(unit);
  }
  return units;
}

// ---- step 4: checks and copies

struct Loader {
  const std::string& path;
  ImportReport& report;

  // Copies `value` into `slot` (keeping the slot's device, dtype and layout).
  void copy(Tensor& slot, const Tensor& value, const Node& node, const std::string& module, const char* what) {
    const Tensor v = value.dim() == 2 && value.size(0) == 1 && slot.dim() == 1 ? reshape(value, Shape{value.size(1)}) : value;
    KILN_CHECK(v.shape() == slot.shape(), "onnx import: ", path, ": ", node.describe(), " does not match ", module,
               ": ", what, " is ", v.shape(), " in ONNX, ", slot.shape(), " in the model");
    NoGradGuard no_grad;
    copy_(slot, v);
    report.tensors_loaded += 1;
    report.elements_loaded += slot.numel();
  }
  void fill(Tensor& slot, double value) {
    NoGradGuard no_grad;
    fill_(slot, value);
    report.tensors_loaded += 1;
    report.elements_loaded += slot.numel();
  }
};

void check_conv_params(const std::string& path, const Node& n, const std::string& module, const Conv2dParams& p) {
  const std::string auto_pad = n.find("auto_pad") ? n.find("auto_pad")->s : "NOTSET";
  KILN_CHECK(auto_pad == "NOTSET", "onnx import: ", path, ": ", n.describe(), " uses auto_pad ", auto_pad,
             "; kiln needs explicit pads");
  const std::vector<int64_t> strides = n.get_ints("strides", {1, 1}), dilations = n.get_ints("dilations", {1, 1});
  const std::vector<int64_t> pads = n.get_ints("pads", {0, 0, 0, 0});  // (top, left, bottom, right)
  KILN_CHECK(strides.size() == 2 && dilations.size() == 2 && pads.size() == 4, "onnx import: ", path, ": ",
             n.describe(), " is not a 2-D convolution");
  KILN_CHECK(pads[0] == pads[2] && pads[1] == pads[3], "onnx import: ", path, ": ", n.describe(),
             " pads unevenly (", pads[0], ", ", pads[1], ", ", pads[2], ", ", pads[3], "); kiln pads each side equally");
  Conv2dParams onnx_params;
  onnx_params.stride = {static_cast<int>(strides[0]), static_cast<int>(strides[1])};
  onnx_params.padding = {static_cast<int>(pads[0]), static_cast<int>(pads[1])};
  onnx_params.dilation = {static_cast<int>(dilations[0]), static_cast<int>(dilations[1])};
  onnx_params.groups = static_cast<int>(n.get_int("group", 1));
  KILN_CHECK(onnx_params.to_string() == p.to_string(), "onnx import: ", path, ": ", n.describe(), " does not match ",
             module, ": ", onnx_params.to_string(), " in ONNX, ", p.to_string(), " in the model");
}

// The four BatchNormalization inputs (scale, B, mean, var) and epsilon into a BatchNorm.
void load_batchnorm(const OnnxGraph& g, Loader& loader, const Node& n, nn::BatchNorm& bn, const std::string& name,
                    const Tensor& conv_bias) {
  loader.copy(bn.weight, constant(g, n, 1, "scale"), n, name, "scale");
  loader.copy(bn.bias, constant(g, n, 2, "bias"), n, name, "bias");
  Tensor mean = constant(g, n, 3, "mean");
  // A conv bias before a kept batch norm shifts the mean it subtracts: BN(z + b) uses z - (mean - b).
  if (conv_bias.defined()) mean = from_vector([&] {
      std::vector<double> m = mean.to_vector(), b = conv_bias.to_vector();
      for (size_t i = 0; i < m.size() && i < b.size(); ++i) m[i] -= b[i];
      return m;
    }(), mean.shape());
  loader.copy(bn.running_mean, mean, n, name, "running mean");
  loader.copy(bn.running_var, constant(g, n, 4, "var"), n, name, "running var");
  bn.eps = n.get_float("epsilon", 1e-5f);
  loader.report.batchnorms += 1;
}

void load_unit(const OnnxGraph& g, Loader& loader, const OnnxUnit& o, const NativeUnit& m) {
  const std::string& path = g.model.path;
  const Node& node = *o.main();
  const auto kind = [](bool conv, bool bn, bool linear) { return conv ? (bn ? "Conv + BatchNormalization" : "Conv") : linear ? "Gemm/MatMul" : "BatchNormalization"; };
  KILN_CHECK(!!o.conv == !!m.conv && !!o.linear == !!m.linear && (o.conv || o.linear || m.bn),
             "onnx import: ", path, ": ", node.describe(), " (", kind(o.conv, o.bn, o.linear),
             ") meets ", m.describe(), " of the model: the graph and the model differ in structure here");
  if (o.linear) {
    loader.copy(m.linear->weight, o.linear_weight, node, m.describe(), "weight (K, C)");
    if (m.linear->bias.defined())
      o.linear_bias.defined() ? loader.copy(m.linear->bias, o.linear_bias, node, m.describe(), "bias")
                              : loader.fill(m.linear->bias, 0);
    else
      KILN_CHECK(!o.linear_bias.defined(), "onnx import: ", path, ": ", node.describe(), " has a bias but ",
                 m.describe(), " was built without one");
    loader.report.linears += 1;
    return;
  }
  if (!o.conv) {  // a batch norm on its own
    load_batchnorm(g, loader, *o.bn, *m.bn, m.bn_name, Tensor());
    return;
  }
  check_conv_params(path, node, m.describe(), m.conv->params);
  loader.copy(m.conv->weight, constant(g, node, 1, "weight"), node, m.describe(), "weight (K, C/groups, R, S)");
  const Tensor bias = node.inputs.size() > 2 && !node.inputs[2].empty() ? constant(g, node, 2, "bias") : Tensor();
  loader.report.convs += 1;
  if (o.bn) {  // batch norm kept in the export
    KILN_CHECK(m.bn != nullptr, "onnx import: ", path, ": ", o.bn->describe(), " follows ", node.describe(), ", but ",
               m.describe(), " has no BatchNorm after it");
    if (m.conv->bias.defined()) {
      bias.defined() ? loader.copy(m.conv->bias, bias, node, m.describe(), "bias") : loader.fill(m.conv->bias, 0);
      load_batchnorm(g, loader, *o.bn, *m.bn, m.bn_name, Tensor());
    } else {
      load_batchnorm(g, loader, *o.bn, *m.bn, m.bn_name, bias);
    }
    return;
  }
  if (!m.bn) {  // a plain conv on both sides
    if (m.conv->bias.defined())
      bias.defined() ? loader.copy(m.conv->bias, bias, node, m.describe(), "bias") : loader.fill(m.conv->bias, 0);
    else
      KILN_CHECK(!bias.defined(), "onnx import: ", path, ": ", node.describe(), " has a bias but ", m.describe(),
                 " was built without one and has no BatchNorm to carry it");
    return;
  }
  // Folded batch norm: identity statistics carrying the folded bias (see onnx_import.h).
  if (m.conv->bias.defined()) loader.fill(m.conv->bias, 0);
  loader.fill(m.bn->weight, 1);
  bias.defined() ? loader.copy(m.bn->bias, bias, node, m.bn_name, "bias (folded into the conv)") : loader.fill(m.bn->bias, 0);
  loader.fill(m.bn->running_mean, 0);
  loader.fill(m.bn->running_var, 1 - m.bn->eps);
  m.bn->freeze_statistics = true;
  loader.report.batchnorms += 1;
  loader.report.folded_batchnorms += 1;
  loader.report.frozen_batchnorms.push_back(m.bn_name);
}

void check_max_pool(const std::string& path, const Node& n, const std::string& name, const Pool2dParams& p) {
  const std::vector<int64_t> k = n.get_ints("kernel_shape", {}), s = n.get_ints("strides", {1, 1}),
                             pads = n.get_ints("pads", {0, 0, 0, 0});
  KILN_CHECK(k.size() == 2 && s.size() == 2 && pads.size() == 4 && pads[0] == pads[2] && pads[1] == pads[3],
             "onnx import: ", path, ": ", n.describe(), " is not a symmetric 2-D max pool");
  Pool2dParams q;
  q.kernel = {static_cast<int>(k[0]), static_cast<int>(k[1])};
  q.stride = {static_cast<int>(s[0]), static_cast<int>(s[1])};
  q.padding = {static_cast<int>(pads[0]), static_cast<int>(pads[1])};
  q.ceil_mode = n.get_int("ceil_mode", 0) != 0;
  KILN_CHECK(q.to_string() == p.to_string(), "onnx import: ", path, ": ", n.describe(), " does not match MaxPool2d '",
             name, "': ", q.to_string(), " in ONNX, ", p.to_string(), " in the model");
}

}  // namespace

ImportReport import_onnx(const onnx::Model& onnx_model, nn::Module& model) {
  ImportReport report;
  for (const onnx::Node& n : onnx_model.graph.nodes) report.ops_seen[n.op_type] += 1;
  const OnnxGraph graph(onnx_model);
  std::vector<const onnx::Node*> onnx_pools;
  const std::vector<OnnxUnit> units = onnx_units(graph, canonical_order(graph), onnx_pools);
  const NativeModel native = native_units(model);
  const std::string& path = onnx_model.path;
  Loader loader{path, report};
  for (size_t i = 0; i < units.size() && i < native.units.size(); ++i) load_unit(graph, loader, units[i], native.units[i]);
  KILN_CHECK(units.size() == native.units.size(), "onnx import: ", path, ": the graph has ", units.size(),
             " weight-carrying layers and the model ", native.units.size(), "; the first unmatched is ",
             units.size() > native.units.size() ? units[native.units.size()].main()->describe()
                                                : native.units[units.size()].describe());
  KILN_CHECK(onnx_pools.size() == native.max_pools.size(), "onnx import: ", path, ": the graph has ", onnx_pools.size(),
             " MaxPool nodes and the model ", native.max_pools.size(), " MaxPool2d layers");
  for (size_t i = 0; i < onnx_pools.size(); ++i)
    check_max_pool(path, *onnx_pools[i], native.max_pools[i].first, native.max_pools[i].second->params);
  return report;
}

ImportReport import_onnx(const std::string& onnx_path, nn::Module& model) {
  return import_onnx(onnx::read_onnx(onnx_path), model);
}

std::string ImportReport::to_string() const {
  std::ostringstream out;
  out << "loaded " << tensors_loaded << " tensors (" << elements_loaded << " values): " << convs << " conv, "
      << batchnorms << " batch norm (" << folded_batchnorms << " from folded conv biases, statistics frozen), "
      << linears << " linear\nONNX ops:";
  for (auto& [op, count] : ops_seen) out << " " << op << " " << count;
  return out.str();
}

}  // namespace kiln
