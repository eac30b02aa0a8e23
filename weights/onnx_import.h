// Loading an ONNX model's weights into a native kiln model, by structure, not by names.
//
// Exporters rename everything ("onnx::Conv_497", "/layer1/layer1.0/conv1/Conv"), so
// kiln matches the ONNX graph's layers to the model's layers by position and checks
// every shape on the way. The algorithm (docs/onnx.md has a worked example):
//
//  1. Native side. Walk the module tree with named_children() (depth first, in
//     registration order) and collect the leaves that own weights: Conv2d,
//     BatchNorm, Linear (and MaxPool2d, whose parameters are checked too). A Conv2d
//     immediately followed by a BatchNorm of its K channels forms one unit
//     "conv+bn"; a Linear is a unit; a lone BatchNorm is a unit.
//
//  2. ONNX side. Order the nodes canonically: a depth-first post-order walk from
//     the graph outputs back to the inputs, so a node comes after everything it
//     consumes. At an Add whose two inputs are both computed (a residual join),
//     the input with MORE weight-carrying ancestors (Conv, Gemm, MatMul,
//     BatchNormalization) is visited first: that is the main branch, the other is
//     the shortcut. This reproduces the registration order of torchvision's
//     blocks, which register the shortcut (ResNet's `downsample`: a 1x1 conv and
//     a batch norm that consume the block input and feed the Add) after conv2/bn2,
//     whatever order the exporter wrote the nodes in. Equal counts (an identity
//     shortcut has none) keep the ONNX input order.
//
//  3. In that order, group the weight-carrying nodes into units: a Conv whose only
//     consumer is a BatchNormalization is "conv+bn"; a Gemm, or a MatMul followed
//     by an Add of a constant, is a linear unit; a lone BatchNormalization is a unit.
//     Relu, Clip (only as ReLU6 or ReLU), pools, Flatten, Reshape, Expand (kiln's
//     export of VGG's 1x1 -> 7x7 pool), residual Add, Constant, Identity and
//     Dropout carry no weights and are only checked to be supported; anything
//     else is an error naming the op and the node.
//
//  4. Pair the i-th ONNX unit with the i-th native unit and copy, checking the
//     weight shapes and each conv's stride, padding, dilation and groups.
//
// Folded batch norm. Inference exports usually fold batch norm into the conv
// (w' = w * gamma / sqrt(var + eps), b' = beta + (b - mean) * gamma / sqrt(var + eps)),
// so the ONNX graph has a Conv with a bias and no BatchNormalization, while the
// native model has Conv2d(bias=false) + BatchNorm. The folded weight goes into the
// conv, and the BatchNorm becomes identity plus the folded bias:
//     weight 1, bias b', running_mean 0, running_var 1 - eps
// so that (x - 0) / sqrt(1 - eps + eps) * 1 + b' = x + b' exactly reproduces the
// ONNX function. Its freeze_statistics is set: fine-tuning must not re-estimate
// statistics that are not statistics. (The true gamma, beta, mean and var cannot
// be recovered from a folded file; training then adapts `weight` and `bias`.)
//
// The model's tensors keep their device, dtype and layout (values are converted).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "weights/onnx_reader.h"

namespace kiln {

struct ImportReport {
  int64_t tensors_loaded = 0;   // native parameters and buffers written
  int64_t elements_loaded = 0;  // their total element count
  int convs = 0, linears = 0, batchnorms = 0;  // native layers filled
  int folded_batchnorms = 0;    // of those batch norms, how many hold a folded bias
  std::vector<std::string> frozen_batchnorms;  // their module names (freeze_statistics was set)
  std::map<std::string, int> ops_seen;         // ONNX op_type -> node count
  std::string to_string() const;  // several lines, for `kiln import`
};

// Reads `onnx_path` and copies its weights into `model` (see above). Throws
// kiln::Error naming the ONNX node, the native module and both shapes on a mismatch,
// and the op and node for an op kiln cannot map.
ImportReport import_onnx(const std::string& onnx_path, nn::Module& model);
ImportReport import_onnx(const onnx::Model& onnx_model, nn::Module& model);

}  // namespace kiln
