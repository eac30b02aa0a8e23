// The importer on full torchvision models: ResNet-18, ResNet-50, VGG-16 (and its
// batch-norm twin VGG-16-BN) and MobileNetV2, each exported by torch.onnx with
// random weights and random batch-norm statistics, once with the batch norm kept as
// BatchNormalization nodes and once folded into the convolutions. Imported into
// kiln's native model (as `kiln train --pretrained x.onnx` does), every file must
// give PyTorch's logits: relative L2 error at most 1e-4 in float32, and the same
// top-5 classes in the same order for every image.
//
// The files are hundreds of MB, so they are not committed: ctest's fixture
// "torchvision_onnx" runs tests/fixtures/torchvision_onnx.py into the build folder
// and passes the folder in KILN_TORCHVISION_ONNX_DIR. The cases are marked
// doctest::skip() so that only those ctest entries (which pass --no-skip) run them;
// without the folder (no torch on this machine) they skip with a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <numeric>

#include "engine/autograd/grad_mode.h"
#include "models/registry.h"
#include "test_util.h"
#include "weights/onnx_import.h"
#include "weights/safetensors.h"

using namespace kiln;

namespace {

// The folder the fixture script wrote, or "" (after saying why) when there is none.
std::string torchvision_onnx_dir() {
  const char* dir = std::getenv("KILN_TORCHVISION_ONNX_DIR");
  if (!dir || !*dir) {
    MESSAGE("SKIPPED: KILN_TORCHVISION_ONNX_DIR is not set (ctest sets it; run ctest -R torchvision)");
    return "";
  }
  if (!std::ifstream(std::string(dir) + "/done.json").good()) {
    MESSAGE("SKIPPED: " << dir << " has no done.json: tests/fixtures/torchvision_onnx.py skipped "
                                  "(no torch, torchvision or onnx for /usr/bin/python3) or failed");
    return "";
  }
  return dir;
}

std::vector<int64_t> top5(const std::vector<double>& logits, int64_t image, int64_t classes) {
  std::vector<int64_t> order(static_cast<size_t>(classes));
  std::iota(order.begin(), order.end(), 0);
  const double* row = logits.data() + image * classes;
  std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
  return std::vector<int64_t>(order.begin(), order.begin() + 5);
}

// Imports <dir>/<arch>_<variant>.onnx for every variant the script exported and
// compares the logits with PyTorch's (float64 reference from the same f32 weights).
void check_torchvision_export(const std::string& arch) {
  const std::string dir = torchvision_onnx_dir();
  if (dir.empty()) return;
  const SafeTensors reference = load_safetensors(dir + "/" + arch + ".safetensors");
  REQUIRE(reference.metadata.at("magic") == "kiln-fixture");
  REQUIRE_MESSAGE(reference.metadata.at("version") == "1", reference.metadata.at("hint"));
  const Tensor& input = reference.at("input");
  const std::vector<double> want = reference.at("logits").to(DType::f64).to_vector();
  const std::vector<double> torch_f32 = reference.at("logits_f32").to(DType::f64).to_vector();
  const int64_t images = input.size(0), classes = 1000;

  int variants = 0;
  for (const std::string variant : {"kept", "folded", "plain"}) {
    const auto bn_nodes = reference.metadata.find("batchnorm_nodes." + variant);
    if (bn_nodes == reference.metadata.end()) continue;
    ++variants;
    CAPTURE(variant);
    auto model = models::make_model(arch, classes);
    const ImportReport report = import_onnx(dir + "/" + arch + "_" + variant + ".onnx", *model);
    // Every batch norm of the model was filled: from a BatchNormalization node when
    // kept, from a folded conv bias (statistics frozen) when folded.
    CHECK(report.batchnorms == (variant == "plain" ? 0 : report.convs));
    CHECK(report.folded_batchnorms == (variant == "folded" ? report.convs : 0));
    CHECK(report.frozen_batchnorms.size() == static_cast<size_t>(report.folded_batchnorms));
    if (variant == "kept") CHECK(report.batchnorms == std::stoi(bn_nodes->second));
    model->eval();
    NoGradGuard no_grad;
    const std::vector<double> got = model->forward(input).to(DType::f64).to_vector();
    const double error = test::relative_l2(got, want);
    MESSAGE(arch << " " << variant << ": relative L2 error of the logits " << error << " (PyTorch's own f32 forward: "
                 << test::relative_l2(torch_f32, want) << "), " << report.convs << " conv, " << report.batchnorms
                 << " batch norm (" << report.folded_batchnorms << " folded), " << report.linears << " linear");
    CHECK(error <= 1e-4);
    for (int64_t image = 0; image < images; ++image) {
      CAPTURE(image);
      CHECK(top5(got, image, classes) == top5(want, image, classes));
    }
  }
  CHECK(variants == (arch == "vgg16" ? 1 : 2));
}

}  // namespace

TEST_CASE("onnx torchvision: resnet18 exported with batch norm kept and folded gives PyTorch's logits" *
          doctest::skip()) {
  check_torchvision_export("resnet18");
}

TEST_CASE("onnx torchvision: resnet50 exported with batch norm kept and folded gives PyTorch's logits" *
          doctest::skip()) {
  check_torchvision_export("resnet50");
}

TEST_CASE("onnx torchvision: vgg16 exported from torchvision gives PyTorch's logits" * doctest::skip()) {
  check_torchvision_export("vgg16");
}

TEST_CASE("onnx torchvision: vgg16_bn exported with batch norm kept and folded gives PyTorch's logits" *
          doctest::skip()) {
  check_torchvision_export("vgg16_bn");
}

TEST_CASE("onnx torchvision: mobilenet_v2 exported with batch norm kept and folded gives PyTorch's logits" *
          doctest::skip()) {
  check_torchvision_export("mobilenet_v2");
}
