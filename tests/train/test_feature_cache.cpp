// The frozen-feature cache (engine/train/feature_cache.h): a head fine-tune on cached
// backbone features equals the uncached run (weights, per-epoch losses, accuracies,
// validation metrics), on the cpu and on the (emulated) GPU, and the plan turns the
// cache off, saying why, whenever the backbone's output could change from epoch to epoch.
//
// The model is a randomly initialised MobileNetV2 (width 0.35, 32 px input: quick)
// with `--finetune head` and frozen batch norm, the same structure as the course's
// ImageNet fine-tune: the head is "classifier" (Dropout 0.2, Linear), so the test also
// checks that the head's dropout draws the same masks in both runs.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>

#include "data/loader.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "engine/train/feature_cache.h"
#include "engine/train/trainer.h"
#include "models/registry.h"
#include "test_util.h"
#include "train/toy_task.h"

using namespace kiln;

namespace {

struct HeadRun {
  std::vector<train::EpochStats> history;
  std::map<std::string, Tensor> state;  // on the cpu
  train::FeatureCachePlan plan;
};

std::shared_ptr<nn::Module> frozen_mobilenet(const Device& device) {
  nn::init::manual_seed(21);
  models::ModelOptions options;
  options.width_multiplier = 0.35;
  auto model = models::make_model("mobilenet_v2", 3, options);
  models::apply_finetune(*model, "mobilenet_v2", "head");
  std::function<void(nn::Module&)> freeze_bn = [&](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) bn->freeze_statistics = true;
    for (auto& [name, child] : m.named_children()) freeze_bn(*child);
  };
  freeze_bn(*model);
  model->to(device);
  return model;
}

train::TrainSetup head_setup(const Device& device, const std::string& augment = "") {
  train::TrainSetup s;
  s.epochs = 2;
  s.batch_size = 16;
  s.augment = augment::parse_augment_spec(augment);
  s.image.out_size = 32;
  s.image.mean = {0.5, 0.5, 0.5};
  s.image.std = {0.25, 0.25, 0.25};
  s.seed = 7;
  s.progress = false;
  s.device = device;
  return s;
}

HeadRun run_head(const Device& device, bool cache) {
  const data::Dataset train_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  auto model = frozen_mobilenet(device);
  train::TrainSetup setup = head_setup(device);
  HeadRun run;
  if (cache)
    run.plan = train::plan_feature_cache(*model, "classifier", setup.augment, setup.image, 3, device,
                                         train::Precision::f32, train_set.size() + val_set.size());
  setup.feature_cache = run.plan;
  auto optimizer =
      optim::make_optimizer("adamw", optim::param_groups_no_decay_on_norms_and_biases(*model, 3e-3, 1e-4), {});
  const int64_t total_steps = setup.epochs * (train_set.size() / setup.batch_size);
  train::Trainer trainer(*model, *optimizer,
                         [&](int64_t step) { return 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / total_steps)); },
                         setup);
  run.history = trainer.fit(train_set, val_set);
  for (auto& [name, t] : model->state_dict()) run.state[name] = t.to(Device::cpu());
  return run;
}

// Cached and uncached runs see the backbone's output of other batches, so they agree
// to f32 rounding at most. Measured: bit-identical on the cpu and on the emulated
// GPU; a real GPU's cuDNN may pick other
// algorithms for other batch sizes, hence the 1e-4 the checks allow.
void check_same_run(const HeadRun& cached, const HeadRun& uncached) {
  REQUIRE(cached.history.size() == uncached.history.size());
  for (size_t e = 0; e < cached.history.size(); ++e) {
    const train::EpochStats &c = cached.history[e], &u = uncached.history[e];
    CAPTURE(e);
    CHECK(c.steps == u.steps);
    CHECK(c.train_loss == doctest::Approx(u.train_loss).epsilon(1e-4));
    CHECK(c.train_accuracy == u.train_accuracy);
    CHECK(c.val_loss == doctest::Approx(u.val_loss).epsilon(1e-4));
    CHECK(c.val_accuracy == u.val_accuracy);
    CHECK(c.val_f1 == doctest::Approx(u.val_f1).epsilon(1e-6));
  }
  REQUIRE(cached.state.size() == uncached.state.size());
  for (const auto& [name, c] : cached.state) {
    CAPTURE(name);
    const std::vector<double> a = c.to_vector(), b = uncached.state.at(name).to_vector();
    REQUIRE(a.size() == b.size());
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, std::abs(a[i] - b[i]));
      scale = std::max(scale, std::abs(b[i]));
    }
    CHECK(worst <= 1e-4 * std::max(scale, 1.0));
  }
}

}  // namespace

TEST_CASE("feature cache: a head fine-tune on cached features equals the uncached run on the cpu") {
  const HeadRun cached = run_head(Device::cpu(), true), uncached = run_head(Device::cpu(), false);
  REQUIRE(cached.plan.enabled);
  CHECK(cached.plan.head == "classifier");
  CHECK(cached.plan.feature_shape == Shape{1280});  // MobileNetV2's last conv keeps 1280 channels at width 0.35
  CHECK(cached.plan.explanation.rfind("on:", 0) == 0);
  CHECK_FALSE(uncached.plan.enabled);
  // The head learned something, so equal runs are not equal by standing still.
  CHECK(cached.history.back().train_loss < cached.history.front().train_loss);
  check_same_run(cached, uncached);
}

TEST_CASE("feature cache: on cuda the cached head fine-tune equals the uncached run" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("the feature cache on cuda")) return;
  const Device gpu = Device::cuda(0);
  const HeadRun cached = run_head(gpu, true), uncached = run_head(gpu, false);
  REQUIRE(cached.plan.enabled);
  check_same_run(cached, uncached);
}

TEST_CASE("feature cache: the plan is off, and says why, when the backbone's output can change") {
  const Device cpu = Device::cpu();
  const augment::AugmentParams image = head_setup(cpu).image;
  const auto plan = [&](nn::Module& model, const std::string& augment) {
    return train::plan_feature_cache(model, "classifier", augment::parse_augment_spec(augment), image, 3, cpu,
                                     train::Precision::f32, 100);
  };
  auto model = frozen_mobilenet(cpu);
  CHECK(plan(*model, "").enabled);
  // A deterministic centre crop keeps the cache; a random one does not.
  augment::AugmentSpec centre;
  centre.center_crop = 0.875f;
  CHECK(train::plan_feature_cache(*model, "classifier", centre, image, 3, cpu, train::Precision::f32, 100).enabled);
  const train::FeatureCachePlan flipped = plan(*model, "hflip:0.5");
  CHECK_FALSE(flipped.enabled);
  CHECK(flipped.explanation == "off: --augment hflip:0.5 changes the images every epoch");
  CHECK_FALSE(plan(*model, "mixup:0.2").enabled);

  // Batch norm that would update its statistics.
  auto moving = frozen_mobilenet(cpu);
  dynamic_cast<nn::BatchNorm&>(train::module_at(*moving, "features.0.1")).freeze_statistics = false;
  const train::FeatureCachePlan bn = plan(*moving, "");
  CHECK_FALSE(bn.enabled);
  CHECK(bn.explanation.find("batch norm 'features.0.1'") != std::string::npos);

  // A trainable parameter before the head (--finetune from:features.18).
  auto partly = frozen_mobilenet(cpu);
  partly->unfreeze("features.18.");
  const train::FeatureCachePlan trains = plan(*partly, "");
  CHECK_FALSE(trains.enabled);
  CHECK(trains.explanation.find("'features.18.0.weight' outside the head 'classifier' trains") != std::string::npos);

  // A "head" whose output is not the model's output.
  const train::FeatureCachePlan inner =
      train::plan_feature_cache(*model, "features.18", {}, image, 3, cpu, train::Precision::f32, 100);
  CHECK_FALSE(inner.enabled);

  // Over the memory budget: 100 images x 1280 f32 = 500 KiB.
  const train::FeatureCachePlan big =
      train::plan_feature_cache(*model, "classifier", {}, image, 3, cpu, train::Precision::f32, 100, 100 * 1280 * 4 - 1);
  CHECK_FALSE(big.enabled);
  CHECK(big.explanation.find("exceed the cache's") != std::string::npos);
}

TEST_CASE("feature cache: cached batches follow the loader's order, batch sizes and labels") {
  const data::Dataset d = test::toy::dataset(3);  // 96 images
  auto model = frozen_mobilenet(Device::cpu());
  const train::FrozenFeatures features =
      train::FrozenFeatures::compute(*model, "classifier", d, {}, head_setup(Device::cpu()).image, true, Device::cpu(),
                                     40, train::Precision::f32, "features", false);
  REQUIRE(features.size() == 96);
  data::LoaderConfig config;
  config.batch_size = 40;
  config.seed = 5;
  config.drop_last = true;
  train::CachedBatches batches(features, d, d.labels, config, /*pinned=*/false);
  CHECK(batches.batches_per_epoch() == 2);
  batches.start_epoch(3);
  const std::vector<int64_t> order = data::epoch_order(96, 5, 3);
  Tensor rows, labels;
  for (int64_t b = 0; b < 2; ++b) {
    REQUIRE(batches.next(rows, labels));
    REQUIRE(rows.shape() == Shape{40, 1280});
    for (int64_t i = 0; i < 40; i += 13) {
      const int64_t index = order[static_cast<size_t>(b * 40 + i)];
      CHECK(labels.data<int64_t>()[i] == d.labels.data<int64_t>()[index]);
      CHECK(rows.narrow0(i, 1).to_vector() == features.rows(index, 1).to_vector());
    }
  }
  CHECK_FALSE(batches.next(rows, labels));
}
