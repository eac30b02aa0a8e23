// ONNX: the protobuf wire reader (weights/onnx_reader.cpp) on arbitrary bytes, and
// whatever it accepts mapped onto each zoo architecture by the importer
// (weights/onnx_import.cpp), as `kiln import` and `--pretrained` do.
#include <memory>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "models/registry.h"
#include "weights/onnx_import.h"
#include "weights/onnx_reader.h"

namespace {
// Built once: the importer only writes parameters it has matched and checked.
std::vector<std::shared_ptr<kiln::nn::Module>>& zoo() {
  static std::vector<std::shared_ptr<kiln::nn::Module>> models = [] {
    std::vector<std::shared_ptr<kiln::nn::Module>> m;
    // ResNet and MobileNetV2 cover the importer's residual, depthwise and folded-BN
    // paths; VGG (132M parameters) would take the first input past libFuzzer's timeout.
    for (const char* name : {"resnet18", "mobilenet_v2"}) m.push_back(kiln::models::make_model(name, 10));
    return m;
  }();
  return models;
}
}  // namespace

// The zoo is built here, before the first input: under ASan on a busy machine the
// two models' construction and initialisation took longer than libFuzzer's 10 s
// per-input timeout, and the first input was reported as a "timeout" (a 10-minute
// run of 2026-12-05 on a loaded 2-core machine). Start-up is not an input's cost.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  zoo();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  kiln::onnx::Model model;
  try {
    model = kiln::onnx::parse_onnx(bytes, "/nonexistent/fuzz.onnx");
  } catch (const kiln::Error&) {
    return 0;
  }
  for (auto& net : zoo()) {
    try {
      kiln::import_onnx(model, *net);
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}
