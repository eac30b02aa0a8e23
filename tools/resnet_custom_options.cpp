#include "tools/resnet_custom_options.h"

#include "engine/core/check.h"

namespace kiln::tools {

void add_resnet_custom_options(CLI::App* app, ResNetCustomOptions& o) {
  app->add_option("--blocks", o.blocks, "resnet_custom: basic (two 3x3 convs) or bottleneck (1x1, 3x3, 1x1 to 4x)")
      ->check(CLI::IsMember({"basic", "bottleneck"}))
      ->capture_default_str();
  app->add_option("--depths", o.depths, "resnet_custom: blocks per stage, e.g. 2,2,2,2")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--widths", o.widths, "resnet_custom: channels per stage, e.g. 64,128,256,512")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--stem", o.stem, "resnet_custom: 3x3 (stride 1, small images) or 7x7 (stride 2 + max-pool)")
      ->check(CLI::IsMember({"3x3", "7x7"}))
      ->capture_default_str();
  app->add_flag("--separable", o.separable, "resnet_custom: every 3x3 conv of the blocks is depthwise + pointwise");
  app->add_flag("--preact", o.preact, "resnet_custom: pre-activation blocks (bn, relu before each conv)");
}

models::ResNetCustomConfig to_config(const ResNetCustomOptions& o, int64_t in_channels, int64_t num_classes) {
  models::ResNetCustomConfig config;
  KILN_CHECK(o.blocks == "basic" || o.blocks == "bottleneck", "--blocks must be basic or bottleneck, got '", o.blocks,
             "'");
  config.block = o.blocks == "basic" ? models::BlockKind::basic : models::BlockKind::bottleneck;
  config.depths = o.depths;
  config.widths = o.widths;
  config.stem = o.stem;
  config.separable = o.separable;
  config.preact = o.preact;
  config.in_channels = in_channels;
  config.num_classes = num_classes;
  config.validate();
  return config;
}

}  // namespace kiln::tools
