// export_onnx: the module-by-module mapping described in onnx_export.h.
//
// Exporter::module() dispatches on the module's type. Containers (Sequential) and
// the model classes (ResNet, VGG, MobileNetV2 and their blocks) are walked the way
// their forward() runs them; leaves emit nodes. Every value carries its shape
// without the batch dimension, so each step can check its input and compute the
// sizes that ONNX attributes need (pool windows, Flatten, Expand).
#include "weights/onnx_export.h"

#include <cmath>
#include <set>
#include <sstream>

#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "models/mobilenet_v2.h"
#include "models/resnet.h"
#include "models/vgg.h"

namespace kiln {
namespace {

using onnx::Attribute;
using onnx::Node;

// A value in the graph: its name and its shape without the batch dimension N.
struct Value {
  std::string name;
  std::vector<int64_t> dims;  // (C, H, W) or (F)
};

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string text = "(N";
  for (int64_t d : dims) text += ", " + std::to_string(d);
  return text + ")";
}

std::string child_path(const std::string& path, const std::string& name) { return path.empty() ? name : path + "." + name; }

class Exporter {
 public:
  Exporter(const OnnxExportOptions& options, OnnxExport& out) : options_(options), out_(out), model_(out.model) {}

  Value module(nn::Module& m, const std::string& path, const Value& x) {
    if (auto* seq = dynamic_cast<nn::Sequential*>(&m)) return sequential(*seq, path, x);
    if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) return conv2d(*conv, path, x);
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) return batchnorm(*bn, path, x);
    if (auto* act = dynamic_cast<nn::ActivationLayer*>(&m)) return activation(act->activation, path, x);
    if (auto* pool = dynamic_cast<nn::MaxPool2d*>(&m)) return max_pool(pool->params, path, x);
    if (auto* pool = dynamic_cast<nn::AdaptiveAvgPool2d*>(&m)) return adaptive_avg_pool(pool->out_h, pool->out_w, path, x);
    if (dynamic_cast<nn::Flatten*>(&m)) return flatten(path, x);
    if (auto* linear = dynamic_cast<nn::Linear*>(&m)) return gemm(*linear, path, x);
    if (dynamic_cast<nn::Dropout*>(&m)) return x;  // the identity at inference
    if (auto* block = dynamic_cast<models::BasicBlock*>(&m)) return basic_block(*block, path, x);
    if (auto* block = dynamic_cast<models::Bottleneck*>(&m)) return bottleneck(*block, path, x);
    if (auto* block = dynamic_cast<models::InvertedResidual*>(&m)) return inverted_residual(*block, path, x);
    if (auto* net = dynamic_cast<models::ResNet*>(&m)) return resnet(*net, path, x);
    if (auto* net = dynamic_cast<models::VGG*>(&m)) return vgg(*net, path, x);
    if (auto* net = dynamic_cast<models::MobileNetV2*>(&m)) return mobilenet_v2(*net, path, x);
    KILN_FAIL("onnx export: module '", path.empty() ? "(the model)" : path, "' (", m.type_name(),
              ") has no ONNX mapping; kiln exports Sequential, Conv2d, BatchNorm, activations, MaxPool2d, "
              "AdaptiveAvgPool2d, Flatten, Linear, Dropout and the ResNet, VGG and MobileNetV2 models");
  }

  // Names the graph output "logits" (it is the last node's output).
  void finish(const Value& input, const Value& output) {
    KILN_CHECK(output.name != input.name && output.dims.size() == 1, "onnx export: the model must map (N, C, H, W) "
               "to logits (N, K); it gives ", dims_text(output.dims));
    for (Node& n : model_.nodes)
      for (std::string& name : n.outputs)
        if (name == output.name) name = "logits";
    model_.inputs.push_back(value_info(input));
    model_.outputs.push_back(value_info(Value{"logits", output.dims}));
  }

 private:
  // ---- containers and models, walked as their forward() runs

  Value sequential(nn::Sequential& seq, const std::string& path, Value x) {
    for (auto& [name, child] : seq.named_children()) x = module(*child, child_path(path, name), x);
    return x;
  }

  Value basic_block(models::BasicBlock& b, const std::string& path, const Value& x) {
    Value out = activation(Activation::relu, child_path(path, "relu"),
                           batchnorm(*b.bn1, child_path(path, "bn1"), conv2d(*b.conv1, child_path(path, "conv1"), x)));
    out = batchnorm(*b.bn2, child_path(path, "bn2"), conv2d(*b.conv2, child_path(path, "conv2"), out));
    const Value identity = b.downsample ? sequential(*b.downsample, child_path(path, "downsample"), x) : x;
    return activation(Activation::relu, child_path(path, "relu"), add(out, identity, path));
  }

  Value bottleneck(models::Bottleneck& b, const std::string& path, const Value& x) {
    const std::string relu = child_path(path, "relu");
    Value out = activation(Activation::relu, relu,
                           batchnorm(*b.bn1, child_path(path, "bn1"), conv2d(*b.conv1, child_path(path, "conv1"), x)));
    out = activation(Activation::relu, relu,
                     batchnorm(*b.bn2, child_path(path, "bn2"), conv2d(*b.conv2, child_path(path, "conv2"), out)));
    out = batchnorm(*b.bn3, child_path(path, "bn3"), conv2d(*b.conv3, child_path(path, "conv3"), out));
    const Value identity = b.downsample ? sequential(*b.downsample, child_path(path, "downsample"), x) : x;
    return activation(Activation::relu, relu, add(out, identity, path));
  }

  Value inverted_residual(models::InvertedResidual& b, const std::string& path, const Value& x) {
    const Value out = sequential(*b.conv, child_path(path, "conv"), x);
    return b.use_residual ? add(x, out, path) : out;
  }

  Value resnet(models::ResNet& net, const std::string& path, const Value& x) {
    Value h = conv2d(*net.conv1, child_path(path, "conv1"), x);
    h = batchnorm(*net.bn1, child_path(path, "bn1"), h);
    h = activation(Activation::relu, child_path(path, "relu"), h);
    h = max_pool(net.maxpool->params, child_path(path, "maxpool"), h);
    for (const char* layer : {"layer1", "layer2", "layer3", "layer4"})
      h = module(*net.child(layer), child_path(path, layer), h);
    h = adaptive_avg_pool(net.avgpool->out_h, net.avgpool->out_w, child_path(path, "avgpool"), h);
    return gemm(*net.fc, child_path(path, "fc"), flatten(child_path(path, "flatten"), h));
  }

  Value vgg(models::VGG& net, const std::string& path, const Value& x) {
    Value h = sequential(*net.features, child_path(path, "features"), x);
    h = adaptive_avg_pool(net.avgpool->out_h, net.avgpool->out_w, child_path(path, "avgpool"), h);
    return sequential(*net.classifier, child_path(path, "classifier"), flatten(child_path(path, "flatten"), h));
  }

  Value mobilenet_v2(models::MobileNetV2& net, const std::string& path, const Value& x) {
    Value h = sequential(*net.features, child_path(path, "features"), x);
    h = adaptive_avg_pool(1, 1, child_path(path, "avgpool"), h);  // functional in forward()
    return sequential(*net.classifier, child_path(path, "classifier"), flatten(child_path(path, "flatten"), h));
  }

  // ---- leaves

  Value conv2d(nn::Conv2d& conv, const std::string& path, const Value& x) {
    const Conv2dParams& p = conv.params;
    const Shape& w = conv.weight.shape();  // (K, C/groups, R, S)
    KILN_CHECK(x.dims.size() == 3 && x.dims[0] == w[1] * p.groups, "onnx export: Conv2d '", path, "' takes ",
               w[1] * p.groups, " channels (N, C, H, W), its input is ", dims_text(x.dims));
    std::vector<std::string> inputs = {x.name, initializer(path + ".weight", conv.weight)};
    if (conv.bias.defined()) inputs.push_back(initializer(path + ".bias", conv.bias));
    const std::vector<int64_t> dims = {
        w[0], conv2d_output_size(x.dims[1], w[2], p.stride[0], p.padding[0], p.dilation[0]),
        conv2d_output_size(x.dims[2], w[3], p.stride[1], p.padding[1], p.dilation[1])};
    KILN_CHECK(dims[1] >= 1 && dims[2] >= 1, "onnx export: Conv2d '", path, "' leaves no pixels of ", dims_text(x.dims));
    const Value y = node("Conv", path, inputs, dims,
                         {onnx::ints_attribute("dilations", {p.dilation[0], p.dilation[1]}),
                          onnx::int_attribute("group", p.groups), onnx::ints_attribute("kernel_shape", {w[2], w[3]}),
                          onnx::ints_attribute("pads", {p.padding[0], p.padding[1], p.padding[0], p.padding[1]}),
                          onnx::ints_attribute("strides", {p.stride[0], p.stride[1]})});
    conv_producing_[y.name] = {&conv, model_.nodes.size() - 1, path};
    return y;
  }

  Value batchnorm(nn::BatchNorm& bn, const std::string& path, const Value& x) {
    const int64_t channels = bn.running_mean.numel();
    KILN_CHECK(!x.dims.empty() && x.dims[0] == channels, "onnx export: BatchNorm '", path, "' normalises ", channels,
               " channels, its input is ", dims_text(x.dims));
    const Tensor gamma = bn.weight.defined() ? bn.weight : ones({channels});  // affine = false: scale 1, shift 0
    const Tensor beta = bn.bias.defined() ? bn.bias : zeros({channels});
    auto conv = conv_producing_.find(x.name);
    if (options_.fold_batchnorm && conv != conv_producing_.end() && !consumed_.count(x.name)) {
      fold(conv->second, gamma, beta, bn);
      out_.folded_batchnorms += 1;
      return x;  // the conv's output now is the batch norm's
    }
    out_.kept_batchnorms += 1;
    return node("BatchNormalization", path,
                {x.name, initializer(path + ".weight", gamma), initializer(path + ".bias", beta),
                 initializer(path + ".running_mean", bn.running_mean), initializer(path + ".running_var", bn.running_var)},
                x.dims, {onnx::float_attribute("epsilon", static_cast<float>(bn.eps))});
  }

  struct ConvRecord {
    nn::Conv2d* conv;
    size_t node;       // index of its Conv node
    std::string path;  // module path, for initializer names
  };

  // Replaces the conv's weight and bias initializers by the folded ones (in double,
  // rounded once to f32):  s = gamma / sqrt(var + eps),  w' = w s,  b' = (b - mean) s + beta.
  void fold(const ConvRecord& c, const Tensor& gamma_t, const Tensor& beta_t, const nn::BatchNorm& bn) {
    const std::vector<double> gamma = gamma_t.to_vector(), beta = beta_t.to_vector(),
                              mean = bn.running_mean.to_vector(), var = bn.running_var.to_vector();
    std::vector<double> w = c.conv->weight.to_vector();
    std::vector<double> b = c.conv->bias.defined() ? c.conv->bias.to_vector() : std::vector<double>(gamma.size(), 0.0);
    const size_t per_channel = w.size() / gamma.size();  // C/groups * R * S
    for (size_t k = 0; k < gamma.size(); ++k) {
      const double s = gamma[k] / std::sqrt(var[k] + bn.eps);
      for (size_t i = 0; i < per_channel; ++i) w[k * per_channel + i] *= s;
      b[k] = (b[k] - mean[k]) * s + beta[k];
    }
    Node& conv_node = model_.nodes[c.node];
    model_.initializers[initializer_index_.at(conv_node.inputs[1])].second = from_vector(w, c.conv->weight.shape());
    const Tensor bias = from_vector(b, Shape{static_cast<int64_t>(b.size())});
    if (conv_node.inputs.size() > 2)
      model_.initializers[initializer_index_.at(conv_node.inputs[2])].second = bias;
    else
      conv_node.inputs.push_back(initializer(c.path + ".bias", bias));
  }

  Value activation(Activation a, const std::string& path, const Value& x) {
    switch (a) {
      case Activation::relu: return node("Relu", path, {x.name}, x.dims);
      case Activation::relu6:  // Clip takes its bounds as inputs since opset 11
        return node("Clip", path, {x.name, constant(0), constant(6)}, x.dims);
      case Activation::leaky_relu: return node("LeakyRelu", path, {x.name}, x.dims, {onnx::float_attribute("alpha", 0.01f)});
      case Activation::elu: return node("Elu", path, {x.name}, x.dims, {onnx::float_attribute("alpha", 1.0f)});
      case Activation::sigmoid: return node("Sigmoid", path, {x.name}, x.dims);
      case Activation::tanh: return node("Tanh", path, {x.name}, x.dims);
      case Activation::silu: return node("Mul", path, {x.name, node("Sigmoid", path, {x.name}, x.dims).name}, x.dims);
      case Activation::mish: {
        const Value softplus = node("Softplus", path, {x.name}, x.dims);
        return node("Mul", path, {x.name, node("Tanh", path, {softplus.name}, x.dims).name}, x.dims);
      }
      case Activation::gelu: {  // x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt 2))
        const Value scaled = node("Div", path, {x.name, constant(std::sqrt(2.0))}, x.dims);
        const Value erf = node("Erf", path, {scaled.name}, x.dims);
        const Value phi2 = node("Add", path, {erf.name, constant(1)}, x.dims);
        const Value x_phi2 = node("Mul", path, {x.name, phi2.name}, x.dims);
        return node("Mul", path, {x_phi2.name, constant(0.5)}, x.dims);
      }
      case Activation::hardswish: {  // x * relu6(x + 3) / 6 = x * clip(x / 6 + 1/2, 0, 1)
        if (options_.opset >= 14) return node("HardSwish", path, {x.name}, x.dims);
        const Value gate = node("HardSigmoid", path, {x.name}, x.dims,
                                {onnx::float_attribute("alpha", 1.0f / 6), onnx::float_attribute("beta", 0.5f)});
        return node("Mul", path, {x.name, gate.name}, x.dims);
      }
    }
    KILN_FAIL("onnx export: activation ", activation_name(a), " of '", path, "' has no ONNX mapping");
  }

  Value max_pool(const Pool2dParams& p, const std::string& path, const Value& x) {
    KILN_CHECK(x.dims.size() == 3, "onnx export: MaxPool2d '", path, "' needs (N, C, H, W), got ", dims_text(x.dims));
    std::vector<Attribute> attributes = {
        onnx::ints_attribute("kernel_shape", {p.kernel[0], p.kernel[1]}),
        onnx::ints_attribute("pads", {p.padding[0], p.padding[1], p.padding[0], p.padding[1]}),
        onnx::ints_attribute("strides", {p.stride[0], p.stride[1]})};
    if (p.ceil_mode) attributes.push_back(onnx::int_attribute("ceil_mode", 1));
    const std::vector<int64_t> dims = {
        x.dims[0], pool_output_size(x.dims[1], p.kernel[0], p.stride[0], p.padding[0], p.ceil_mode, "MaxPool2d"),
        pool_output_size(x.dims[2], p.kernel[1], p.stride[1], p.padding[1], p.ceil_mode, "MaxPool2d")};
    return node("MaxPool", path, {x.name}, dims, attributes);
  }

  // Adaptive average pooling has no ONNX op; the sizes where it equals one are exported.
  Value adaptive_avg_pool(int out_h, int out_w, const std::string& path, const Value& x) {
    KILN_CHECK(x.dims.size() == 3, "onnx export: AdaptiveAvgPool2d '", path, "' needs (N, C, H, W), got ",
               dims_text(x.dims));
    const int64_t c = x.dims[0], h = x.dims[1], w = x.dims[2];
    if (out_h == 1 && out_w == 1) return node("GlobalAveragePool", path, {x.name}, {c, 1, 1});
    if (h == out_h && w == out_w) return x;  // every window is one pixel
    if (h % out_h == 0 && w % out_w == 0) {  // equal, disjoint windows: a plain average pool
      const int64_t kh = h / out_h, kw = w / out_w;
      return node("AveragePool", path, {x.name}, {c, out_h, out_w},
                  {onnx::ints_attribute("kernel_shape", {kh, kw}), onnx::ints_attribute("strides", {kh, kw})});
    }
    if (h == 1 && w == 1) {  // every window is the one pixel: broadcast it
      const Tensor shape = from_vector({1, 1, static_cast<double>(out_h), static_cast<double>(out_w)}, Shape{4},
                                       {DType::i64});
      return node("Expand", path, {x.name, initializer(path + ".expand_shape", shape)}, {c, out_h, out_w});
    }
    KILN_FAIL("onnx export: AdaptiveAvgPool2d '", path, "' pools ", h, "x", w, " to ", out_h, "x", out_w,
              "; ONNX has no adaptive pooling, and kiln exports it only where it is exact: to 1x1, from a multiple of ",
              out_h, "x", out_w, ", or from 1x1 (for VGG: input sizes whose 1/32 is 1 or a multiple of 7, e.g. 32 or 224)");
  }

  Value flatten(const std::string& path, const Value& x) {
    int64_t features = 1;
    for (int64_t d : x.dims) features *= d;
    return node("Flatten", path, {x.name}, {features}, {onnx::int_attribute("axis", 1)});
  }

  Value gemm(nn::Linear& linear, const std::string& path, const Value& x) {
    const int64_t in = linear.weight.size(1);
    KILN_CHECK(x.dims.size() == 1 && x.dims[0] == in, "onnx export: Linear '", path, "' takes (N, ", in,
               "), its input is ", dims_text(x.dims));
    std::vector<std::string> inputs = {x.name, initializer(path + ".weight", linear.weight)};
    if (linear.bias.defined()) inputs.push_back(initializer(path + ".bias", linear.bias));
    return node("Gemm", path, inputs, {linear.weight.size(0)}, {onnx::int_attribute("transB", 1)});
  }

  Value add(const Value& a, const Value& b, const std::string& path) {
    KILN_CHECK(a.dims == b.dims, "onnx export: the residual add of '", path, "' joins ", dims_text(a.dims), " and ",
               dims_text(b.dims));
    return node("Add", path, {a.name, b.name}, a.dims);
  }

  // ---- graph building

  Value node(const std::string& op, const std::string& path, const std::vector<std::string>& inputs,
             const std::vector<int64_t>& dims, std::vector<Attribute> attributes = {}) {
    Node n;
    n.op_type = op;
    n.name = unique(path.empty() ? op : path + "/" + op);
    n.inputs = inputs;
    n.outputs = {n.name};
    n.attributes = std::move(attributes);
    for (const std::string& input : inputs) consumed_.insert(input);
    model_.nodes.push_back(n);
    out_.ops[op] += 1;
    return Value{n.name, dims};
  }

  std::string initializer(const std::string& name, const Tensor& tensor) {
    const std::string unique_name = unique(name);
    initializer_index_[unique_name] = model_.initializers.size();
    model_.initializers.emplace_back(unique_name, tensor);
    return unique_name;
  }

  // A shared f32 scalar (Clip bounds, the constants of gelu).
  std::string constant(double value) {
    std::ostringstream name;
    name.precision(17);  // distinct values, distinct names
    name << "const_" << value;
    auto found = constants_.find(name.str());
    if (found != constants_.end()) return found->second;
    return constants_[name.str()] = initializer(name.str(), scalar(value));
  }

  std::string unique(const std::string& name) {
    if (used_names_.insert(name).second) return name;
    for (int i = 1;; ++i)
      if (used_names_.insert(name + "_" + std::to_string(i)).second) return name + "_" + std::to_string(i);
  }

  static onnx::ValueInfo value_info(const Value& v) {
    onnx::ValueInfo info;
    info.name = v.name;
    info.dims.push_back({-1, "N"});
    for (int64_t d : v.dims) info.dims.push_back({d, ""});
    return info;
  }

  const OnnxExportOptions& options_;
  OnnxExport& out_;
  onnx::ModelDraft& model_;
  std::set<std::string> used_names_ = {"input", "logits"};
  std::set<std::string> consumed_;  // values some node already reads (a folded conv must have no reader yet)
  std::map<std::string, ConvRecord> conv_producing_;  // Conv output value -> that conv
  std::map<std::string, size_t> initializer_index_;
  std::map<std::string, std::string> constants_;
};

}  // namespace

OnnxExport export_onnx(nn::Module& model, const OnnxExportOptions& options) {
  KILN_CHECK(options.input_shape.dim() == 3, "onnx export: the input shape must be (C, H, W), got ", options.input_shape);
  KILN_CHECK(options.opset >= 13 && options.opset <= 17, "onnx export: opset must be 13..17, got ", options.opset,
             " (kiln writes Clip with input bounds and Flatten/Gemm of opset 13)");
  OnnxExport out;
  out.model.opset = options.opset;
  out.model.ir_version = options.opset <= 14 ? 7 : 8;  // ONNX 1.8/1.9 are IR 7, 1.10..1.12 are IR 8
  out.model.metadata = options.metadata;
  Exporter exporter(options, out);
  const Value input{"input", options.input_shape.dims()};
  exporter.finish(input, exporter.module(model, "", input));
  return out;
}

std::string OnnxExport::to_string() const {
  std::ostringstream text;
  text << model.nodes.size() << " nodes (";
  bool first = true;
  for (const auto& [op, count] : ops) {
    text << (first ? "" : ", ") << op << " " << count;
    first = false;
  }
  text << "), " << model.initializers.size() << " initializers, opset " << model.opset << "\n";
  text << "batch norm: " << kept_batchnorms << " kept, " << folded_batchnorms << " folded into convs\n";
  for (const onnx::ValueInfo& v : model.inputs) text << "input  " << v.to_string() << "\n";
  for (const onnx::ValueInfo& v : model.outputs) text << "output " << v.to_string() << "\n";
  return text.str();
}

}  // namespace kiln
