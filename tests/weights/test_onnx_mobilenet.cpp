// The real thing: the shared ImageNet MobileNetV2 ONNX file (batch norm folded)
// imported into kiln's native mobilenet_v2 gives the logits of torchvision's
// mobilenet_v2 holding the same weights, on the 7 shared photos.
// Reference: tests/fixtures/onnx_fixtures.py --photos (mobilenet_v2_photos.safetensors).
// It skips, with a message, where the shared assets are absent.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <fstream>

#include "test_util.h"
#include "weights/safetensors.h"

#include "engine/augment/augment.h"
#include "engine/autograd/grad_mode.h"
#include "models/registry.h"
#include "weights/onnx_import.h"

using namespace kiln;

TEST_CASE("onnx import: shared MobileNetV2 on the 7 photos gives torchvision's logits") {
  const std::string onnx_path = test::shared_assets_dir() + "/models/mobilenet_v2_imagenet_fp32.onnx";
  if (!std::ifstream(onnx_path).good()) {
    MESSAGE("SKIPPED: " << onnx_path << " is absent (shared assets not installed)");
    return;
  }
  const SafeTensors f = load_safetensors(test::fixture_dir() + "/mobilenet_v2_photos.safetensors");
  const std::string hint = f.metadata.count("hint") ? f.metadata.at("hint") : "";
  REQUIRE_MESSAGE(f.metadata.at("magic") == "kiln-fixture", "not a kiln fixture; ", hint);
  REQUIRE_MESSAGE(f.metadata.at("version") == "1", "fixture version differs; ", hint);
  CHECK(f.at("input").shape() == Shape{7, 3, 224, 224});
  CHECK(f.at("input").dtype() == DType::u8);
  auto model = models::make_model("mobilenet_v2", 1000);
  const ImportReport report = import_onnx(onnx_path, *model);
  MESSAGE(report.to_string());
  CHECK(report.convs == 52);
  CHECK(report.folded_batchnorms == 52);
  CHECK(report.linears == 1);
  model->eval();
  NoGradGuard no_grad;
  // The uint8 crops through kiln's own eval transform (ImageNet mean and std).
  augment::AugmentParams imagenet;
  imagenet.out_size = 224;
  imagenet.mean = {0.485, 0.456, 0.406};
  imagenet.std = {0.229, 0.224, 0.225};
  const Tensor logits = model->forward(augment::eval_transform(f.at("input"), imagenet)).to(DType::f64);
  const std::vector<double> got = logits.to_vector(), want = f.at("logits").to(DType::f64).to_vector();
  // A hand-built kiln MobileNetV2 measured 1.1e-6 here (f32 on the CPU).
  CHECK(test::relative_l2(got, want) <= 1e-5);
  // The same top-5 classes, in the same order, for every photo (samoyed 258, 259, 231, ...).
  for (int64_t image = 0; image < 7; ++image) {
    CAPTURE(image);
    const auto top5 = [&](const std::vector<double>& v) {
      std::vector<int64_t> order(1000);
      std::iota(order.begin(), order.end(), 0);
      const double* row = v.data() + image * 1000;
      std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
      return std::vector<int64_t>(order.begin(), order.begin() + 5);
    };
    CHECK(top5(got) == top5(want));
  }
}
