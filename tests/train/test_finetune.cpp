// Fine-tuning a backbone whose batch norm was folded into its convolutions (the
// shared MobileNetV2): the import loads each folded bias into an identity batch
// norm with frozen statistics, so training (here with lr 0) never re-estimates
// statistics and the model computes exactly what the ONNX file computes.
#include <doctest/doctest.h>

#include <fstream>

#include "engine/autograd/grad_mode.h"
#include "engine/tensor/factory.h"
#include "engine/train/trainer.h"
#include "models/registry.h"
#include "test_util.h"
#include "weights/onnx_import.h"

using namespace kiln;

TEST_CASE("finetune: training an imported folded-BN MobileNetV2 with lr 0 leaves its eval output unchanged") {
  const std::string onnx_path = test::shared_assets_dir() + "/models/mobilenet_v2_imagenet_fp32.onnx";
  if (!std::ifstream(onnx_path).good()) {
    MESSAGE("SKIPPED: " << onnx_path << " is absent (shared assets not installed)");
    return;
  }
  auto model = models::make_model("mobilenet_v2", 1000);
  import_onnx(onnx_path, *model);
  models::reset_head(*model, "mobilenet_v2", 2);

  // Eight random 64x64 RGB images of two classes.
  Rng rng(4);
  data::Dataset d;
  d.images = empty({8, 3, 64, 64}, {DType::u8});
  for (int64_t i = 0; i < d.images.numel(); ++i) d.images.data<uint8_t>()[i] = static_cast<uint8_t>(rng.uniform() * 255);
  d.labels = from_vector({0, 1, 0, 1, 0, 1, 0, 1}, {8}, {DType::i64});
  d.class_names = {"a", "b"};
  for (int i = 0; i < 8; ++i) d.file_names.push_back("img" + std::to_string(i));

  train::TrainSetup setup;
  setup.epochs = 1;
  setup.batch_size = 4;
  setup.image.out_size = 64;
  setup.image.mean = {0.485, 0.456, 0.406};
  setup.image.std = {0.229, 0.224, 0.225};
  setup.progress = false;
  const std::vector<double> before = train::evaluate(*model, d, setup.image, Device::cpu(), 8).logits.to_vector();
  optim::SgdOptions frozen;
  frozen.lr = 0;
  optim::SGD sgd(model->trainable_parameters(), frozen);
  train::Trainer(*model, sgd, [](int64_t) { return 1.0; }, setup).fit(d, data::Dataset());
  const std::vector<double> after = train::evaluate(*model, d, setup.image, Device::cpu(), 8).logits.to_vector();
  CHECK(after == before);  // bit for bit: no statistic moved
}
