#include "models/resnet_custom.h"

#include "engine/core/json_parse.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape_ops.h"
#include "models/blocks.h"

namespace kiln::models {

namespace {

// A 3x3 conv (padding 1, no bias: a batch norm follows), plain or separable.
nn::ModulePtr conv3x3(int64_t in_channels, int64_t out_channels, int stride, bool separable) {
  if (separable) return std::make_shared<nn::SeparableConv2d>(in_channels, out_channels, 3, stride, 1, false);
  return std::make_shared<nn::Conv2d>(in_channels, out_channels, 3, stride, 1, 1, false);
}

nn::ModulePtr conv1x1(int64_t in_channels, int64_t out_channels) {
  return std::make_shared<nn::Conv2d>(in_channels, out_channels, 1, 1, 0, 1, false);
}

// The shortcut's projection when the block changes the stride or the width.
std::shared_ptr<nn::Sequential> make_projection(int64_t in_channels, int64_t out_channels, int stride,
                                                bool separable) {
  if (stride == 1 && in_channels == out_channels) return nullptr;
  auto projection = std::make_shared<nn::Sequential>();
  if (separable)
    projection->add(conv3x3(in_channels, out_channels, stride, true));
  else
    projection->add(std::make_shared<nn::Conv2d>(in_channels, out_channels, 1, stride, 0, 1, false));
  projection->add(std::make_shared<nn::BatchNorm>(out_channels));
  return projection;
}

std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (int64_t v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

}  // namespace

// ---- configuration

std::string ResNetCustomConfig::to_string() const {
  std::vector<int64_t> depth_list(depths.begin(), depths.end());
  return str("resnet_custom ", block == BlockKind::basic ? "basic" : "bottleneck", " depths [", join(depth_list),
             "] widths [", join(widths), "] stem ", stem, separable ? " separable" : "", preact ? " preact" : "",
             ", ", num_classes, " classes");
}

nlohmann::json ResNetCustomConfig::to_json() const {
  return {{"in_channels", in_channels}, {"num_classes", num_classes},
          {"blocks", block == BlockKind::basic ? "basic" : "bottleneck"},
          {"depths", depths}, {"widths", widths}, {"stem", stem}, {"separable", separable}, {"preact", preact}};
}

ResNetCustomConfig ResNetCustomConfig::from_json(const nlohmann::json& json) {
  ResNetCustomConfig c;
  try {
    c.in_channels = json_int64(json.at("in_channels"), "resnet_custom configuration", "in_channels");
    c.num_classes = json_int64(json.at("num_classes"), "resnet_custom configuration", "num_classes");
    const std::string blocks = json.at("blocks").get<std::string>();
    KILN_CHECK(blocks == "basic" || blocks == "bottleneck", "resnet_custom configuration: blocks must be basic or ",
               "bottleneck, got '", blocks, "'");
    c.block = blocks == "basic" ? BlockKind::basic : BlockKind::bottleneck;
    c.depths = json_ints(json.at("depths"), "resnet_custom configuration", "depths");
    c.widths = json_int64s(json.at("widths"), "resnet_custom configuration", "widths");
    c.stem = json.at("stem").get<std::string>();
    c.separable = json.at("separable").get<bool>();
    c.preact = json.at("preact").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("resnet_custom configuration: ", e.what(), " in ", json.dump());
  }
  c.validate();
  return c;
}

void ResNetCustomConfig::validate() const {
  KILN_CHECK(!depths.empty(), "resnet_custom: --depths needs at least one stage");
  KILN_CHECK(depths.size() == widths.size(), "resnet_custom: --depths has ", depths.size(), " stages but --widths ",
             widths.size(), " (one width per stage)");
  for (size_t i = 0; i < depths.size(); ++i) {
    KILN_CHECK(depths[i] >= 1, "resnet_custom: --depths: stage ", i + 1, " needs at least one block, got ",
               depths[i]);
    KILN_CHECK(widths[i] >= 1, "resnet_custom: --widths: stage ", i + 1, " needs a positive width, got ",
               widths[i]);
  }
  KILN_CHECK(stem == "3x3" || stem == "7x7", "resnet_custom: --stem must be 3x3 or 7x7, got '", stem, "'");
  KILN_CHECK(in_channels >= 1 && num_classes >= 1, "resnet_custom: needs at least one input channel and one class, ",
             "got ", in_channels, " and ", num_classes);
}

int ResNetCustomConfig::downsampling_exponent() const {
  return static_cast<int>(depths.size()) - 1 + (stem == "7x7" ? 2 : 0);
}

// ---- the block

CustomBlock::CustomBlock(BlockKind kind, int64_t in_channels, int64_t planes, int stride, bool separable,
                         bool preact)
    : kind_(kind), preact_(preact) {
  out_channels_ = kind == BlockKind::basic ? planes * BasicBlock::expansion : planes * Bottleneck::expansion;
  // Pre-activation normalises the block's input (in_channels) before conv1; the
  // other norms sit between the convs and have the same channels either way.
  if (kind == BlockKind::basic) {
    conv1 = register_module("conv1", conv3x3(in_channels, planes, stride, separable));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(preact ? in_channels : planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, 1, separable));
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(planes));
  } else {
    conv1 = register_module("conv1", conv1x1(in_channels, planes));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm>(preact ? in_channels : planes));
    conv2 = register_module("conv2", conv3x3(planes, planes, stride, separable));  // strided here, as v1.5
    bn2 = register_module("bn2", std::make_shared<nn::BatchNorm>(planes));
    conv3 = register_module("conv3", conv1x1(planes, out_channels_));
    bn3 = register_module("bn3", std::make_shared<nn::BatchNorm>(preact ? planes : out_channels_));
  }
  relu = register_module("relu", std::make_shared<nn::ActivationLayer>(Activation::relu));
  if (auto projection = make_projection(in_channels, out_channels_, stride, separable))
    downsample = register_module("downsample", projection);
}

Tensor CustomBlock::forward_impl(const Tensor& x) {
  if (preact_) {
    // out = F(relu(bn(x))) + shortcut; the shortcut projects the activated input
    // when it must change shape (as in the paper's code), else it is x itself.
    const Tensor pre = nn::batch_norm_then_activation(*bn1, *relu, x);
    const Tensor identity = downsample ? downsample->forward(pre) : x;
    Tensor out = conv1->forward(pre);
    out = conv2->forward(nn::batch_norm_then_activation(*bn2, *relu, out));
    if (kind_ == BlockKind::bottleneck) out = conv3->forward(nn::batch_norm_then_activation(*bn3, *relu, out));
    return add(out, identity);
  }
  Tensor out = nn::batch_norm_then_activation(*bn1, *relu, conv1->forward(x));
  if (kind_ == BlockKind::basic) {
    out = bn2->forward(conv2->forward(out));
  } else {
    out = nn::batch_norm_then_activation(*bn2, *relu, conv2->forward(out));
    out = bn3->forward(conv3->forward(out));
  }
  const Tensor identity = downsample ? downsample->forward(x) : x;
  return nn::add_then_activation(*relu, out, identity);
}

// ---- the network

ResNetCustom::ResNetCustom(const ResNetCustomConfig& config) : config_(config) {
  config.validate();
  const int64_t stem_width = config.widths.front();
  stem = register_module("stem", std::make_shared<nn::Sequential>());
  if (config.stem == "3x3") {  // small images: keep every pixel for the first stage
    stem->add(std::make_shared<nn::Conv2d>(config.in_channels, stem_width, 3, 1, 1, 1, false));
  } else {
    stem->add(std::make_shared<nn::Conv2d>(config.in_channels, stem_width, 7, 2, 3, 1, false));
  }
  stem->add(std::make_shared<nn::BatchNorm>(stem_width));
  stem->add(std::make_shared<nn::ActivationLayer>(Activation::relu));
  if (config.stem == "7x7") stem->add(std::make_shared<nn::MaxPool2d>(Pool2dParams::square(3, 2, 1)));
  int64_t channels = stem_width;
  for (size_t s = 0; s < config.depths.size(); ++s) {
    auto stage = std::make_shared<nn::Sequential>();
    for (int i = 0; i < config.depths[s]; ++i) {
      const int stride = (s > 0 && i == 0) ? 2 : 1;  // each stage after the first halves H and W once
      auto block = std::make_shared<CustomBlock>(config.block, channels, config.widths[s], stride, config.separable,
                                                 config.preact);
      channels = block->out_channels();
      stage->add(block);
    }
    stages.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  if (config.preact) {  // the last block's sum is not activated yet
    final_norm = register_module("final_norm", std::make_shared<nn::BatchNorm>(channels));
    final_relu = register_module("final_relu", std::make_shared<nn::ActivationLayer>(Activation::relu));
  }
  avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1, 1));
  classifier = register_module("classifier", std::make_shared<nn::Conv2d>(channels, config.num_classes, 1, 1, 0, 1,
                                                                          /*bias=*/true));
}

Tensor ResNetCustom::forward_impl(const Tensor& x) {
  const int64_t divisor = int64_t{1} << config_.downsampling_exponent();
  KILN_CHECK(x.dim() == 4 && x.shape()[1] == config_.in_channels, "resnet_custom: input must be (N, ",
             config_.in_channels, ", H, W), got ", x.shape());
  KILN_CHECK(x.shape()[2] % divisor == 0 && x.shape()[3] % divisor == 0, "resnet_custom: H and W must be ",
             "divisible by ", divisor, " (the net halves them ", config_.downsampling_exponent(), " times), got ",
             x.shape()[2], "x", x.shape()[3]);
  Tensor h = stem->forward(x);
  for (const auto& stage : stages) h = stage->forward(h);
  if (final_norm) h = nn::batch_norm_then_activation(*final_norm, *final_relu, h);
  return flatten(classifier->forward(avgpool->forward(h)), 1);  // (N, K, 1, 1) -> (N, K)
}

std::vector<StageReceptiveField> receptive_fields(const ResNetCustomConfig& config) {
  config.validate();
  int64_t r = 1, j = 1;
  const auto layer = [&](int64_t kernel, int64_t stride) {
    r += (kernel - 1) * j;
    j *= stride;
  };
  std::vector<StageReceptiveField> out;
  if (config.stem == "3x3") {
    layer(3, 1);
  } else {
    layer(7, 2);
    layer(3, 2);  // the max-pool
  }
  out.push_back({"stem", r, j});
  for (size_t s = 0; s < config.depths.size(); ++s) {
    for (int i = 0; i < config.depths[s]; ++i) {
      const int64_t stride = (s > 0 && i == 0) ? 2 : 1;
      if (config.block == BlockKind::basic) {
        layer(3, stride);
        layer(3, 1);
      } else {
        layer(1, 1);
        layer(3, stride);
        layer(1, 1);
      }
    }
    out.push_back({"layer" + std::to_string(s + 1), r, j});
  }
  return out;
}

std::shared_ptr<ResNetCustom> make_resnet_custom(const ResNetCustomConfig& config) {
  auto net = std::make_shared<ResNetCustom>(config);
  init_torchvision(*net, LinearInit::pytorch_default);
  return net;
}

}  // namespace kiln::models
