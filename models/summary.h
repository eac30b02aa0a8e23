// Model summary: one row per layer with its output shape, parameters and
// multiply-accumulates (MACs), and the totals, like Keras' model.summary().
//
// How the walk works: a Sequential is walked child by child, feeding the real output
// of one child into the next, so the shapes are the ones forward() produces, not a
// separate shape calculation that could disagree with it. Every other module is one
// row. The input is one random image (batch N = 1, values in [0.5, 1.5], so no zeros)
// on the device and dtype of the model's first parameter, run under NoGradGuard and
// in eval() mode (batch norm must not update its running statistics, dropout must
// not draw); each module's train/eval mode is restored afterwards.
//
// MACs per image (one MAC = one multiply and one add, so FLOPs ~ 2 x MACs):
//   Conv2d           K * (C/groups) * R * S * Ho * Wo   (the bias add is not counted)
//   SeparableConv2d  its depthwise conv + its pointwise conv, each as above
//   Linear           in * out
//   BatchNorm, activations, pooling, Flatten, Dropout: 0. They do a few operations per
//   element, which is small next to a conv and is not a multiply-accumulate.
// A container that is not a Sequential (a residual block, a whole ResNet) is run
// once with forward hooks on its leaves: each leaf call is a row, in call order,
// with the shapes it saw (a shared relu called twice gives two rows). A leaf type
// the walk does not know is counted as 0 MACs and named in `uncounted`, and
// to_table() says so under the totals.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace kiln::models {

struct LayerSummary {
  std::string name;  // path in the module tree, as in named_parameters(): "block1.conv"
  std::string type;  // type_name(): "Conv2d"
  Shape output_shape;  // with N = 1: (1, 32, 96, 96)
  int64_t parameters = 0, trainable_parameters = 0;
  int64_t macs = 0;  // per image
};

struct ModelSummary {
  Shape input_shape;  // (1, C, H, W)
  std::vector<LayerSummary> layers;
  int64_t total_parameters = 0, trainable_parameters = 0, total_macs = 0;
  std::vector<std::string> uncounted;  // names of layers whose MACs are unknown (counted as 0)
  std::string to_table() const;        // fixed-width, with totals
};

// input_shape: (C, H, W) of one image, or (1, C, H, W).
ModelSummary summarize(nn::Module& model, const Shape& input_shape, uint64_t seed = 0);

// Multiply-accumulates of one leaf module for one image, given its input and output
// shapes (batch 1). Returns -1 for a module type it does not know.
int64_t module_macs(const nn::ModulePtr& module, const Shape& input_shape, const Shape& output_shape);

// 1234567 -> "1,234,567"; 3.2e9 MACs -> "3.20 G" (used by the table).
std::string with_thousands(int64_t value);
std::string human_count(double value);

}  // namespace kiln::models
