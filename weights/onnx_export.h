// Exporting a native kiln model to ONNX: the reverse of onnx_import.h.
//
// The exporter walks the module tree as forward() runs it and emits one or a few
// ONNX nodes per module (opset 13; the same nodes are valid up to opset 17):
//
//   Conv2d             Conv (kernel_shape, strides, pads, dilations, group: a
//                      depthwise conv is group = C)
//   BatchNorm          BatchNormalization in its inference form (scale, B, mean,
//                      var, epsilon), or, with fold_batchnorm and a Conv right before
//                      it, nothing: the conv takes the folded weights
//                          w' = w * gamma / sqrt(var + eps)
//                          b' = (b - mean) * gamma / sqrt(var + eps) + beta
//   relu, relu6        Relu; Clip with min 0 and max 6 as inputs (opset >= 11 form)
//   other activations  LeakyRelu(0.01), Elu(1), Sigmoid, Tanh; silu = x * Sigmoid(x);
//                      mish = x * Tanh(Softplus(x)); gelu = x * 0.5 * (1 + Erf(x / sqrt 2));
//                      hardswish = HardSwish (opset >= 14) or x * HardSigmoid(1/6, 1/2)
//   MaxPool2d          MaxPool (ceil_mode when set)
//   AdaptiveAvgPool2d  GlobalAveragePool to 1x1; nothing when the size already fits;
//                      AveragePool when the input is a multiple of the output; Expand
//                      when the input is 1x1 (VGG on 32 px images). Other sizes have no
//                      exact ONNX form and are an error.
//   Flatten            Flatten(axis 1)
//   Linear             Gemm(transB = 1): Linear stores W as (out, in)
//   Dropout            nothing: dropout is the identity in an inference graph
//   residual blocks    their branches and an Add (ResNet BasicBlock/Bottleneck,
//                      MobileNetV2 InvertedResidual), as their forward() computes them
// Any other module is an error naming its path and type. The graph is always the
// eval-mode function (batch norm uses running statistics), whatever the model's mode.
//
// Names: the input is "input" (N, C, H, W) with a symbolic batch "N" and the output
// "logits" (N, K); initializers keep the state_dict names ("layer1.0.conv1.weight"),
// nodes are named "<module path>/<op>". kiln's importer reads the file back by
// structure (onnx_import.h), which is how the round-trip tests check the export.
#pragma once
#include <map>
#include <string>

#include "engine/nn/module.h"
#include "weights/onnx_writer.h"

namespace kiln {

struct OnnxExportOptions {
  Shape input_shape;            // (C, H, W) of one image; ONNX needs the spatial size for pooling and Flatten
  bool fold_batchnorm = false;  // fold each BatchNorm that follows a Conv into it
  int64_t opset = 13;           // 13..17
  std::map<std::string, std::string> metadata;  // written into ModelProto.metadata_props
};

struct OnnxExport {
  onnx::ModelDraft model;
  int folded_batchnorms = 0, kept_batchnorms = 0;
  std::map<std::string, int> ops;  // op_type -> node count
  std::string to_string() const;   // "42 nodes (Add 8, Conv 20, ...)\ninput: f32 (N, 3, 64, 64)\n..."
};

// Builds the ONNX model of `model` (the model itself is not changed). Throws kiln::Error
// naming the module for a module without an ONNX form or shapes that do not fit.
OnnxExport export_onnx(nn::Module& model, const OnnxExportOptions& options);

}  // namespace kiln
