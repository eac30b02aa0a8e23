// Multi-label training (engine/train/multilabel.h, the trainer's multi-label path):
// a toy set where each 12x12 image has a bright square in any subset of three corners
// and its label set is the corners lit. The toy net of tests/train/toy_task.h learns it
// with BCE on the cpu and on cuda:0 (the emulated GPU runs the real kernels), and the
// two devices agree; the helpers (loss spec, pos_weight) are checked by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include "data/image_fixtures.h"
#include "engine/core/rng.h"
#include "engine/train/multilabel.h"
#include "test_util.h"
#include "train/toy_task.h"

using namespace kiln;

namespace {

// 120 images; image i lights the corners of the bits of i % 8 (0: none, 7: all three).
data::Dataset multi_label_toy(uint64_t seed, int64_t n = 120) {
  Rng rng(seed);
  data::Dataset d;
  d.images = empty({n, 3, 12, 12}, {DType::u8});
  d.labels = empty({n}, {DType::i64});
  d.targets = zeros({n, 3}, {DType::f32});
  uint8_t* px = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t set = i % 8;
    int64_t first = -1;
    for (int64_t k = 0; k < 3; ++k)
      if (set >> k & 1) {
        d.targets.data<float>()[i * 3 + k] = 1.0f;
        if (first < 0) first = k;
      }
    d.labels.data<int64_t>()[i] = first;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 12; ++y)
        for (int64_t x = 0; x < 12; ++x) {
          const bool lit = ((set & 1) && y < 5 && x < 5) || ((set & 2) && y < 5 && x >= 7) ||
                           ((set & 4) && y >= 7 && x < 5);
          px[((i * 3 + c) * 12 + y) * 12 + x] =
              static_cast<uint8_t>(lit ? 200 + rng.uniform() * 55 : rng.uniform() * 80);
        }
  }
  d.class_names = {"top-left", "top-right", "bottom-left"};
  d.source = "multi-label toy";
  return d;
}

struct MultiLabelRun {
  std::vector<train::EpochStats> history;
  train::Evaluation val;
};

MultiLabelRun train_multi_label(const Device& device, const std::string& run_dir, const std::string& loss = "bce",
                                bool pos_weight = false) {
  const data::Dataset train_set = multi_label_toy(1), val_set = multi_label_toy(2, 48);
  auto model = test::toy::model();
  model->to(device);
  optim::SGD optimizer(model->parameters(), test::toy::sgd_options());
  train::TrainSetup setup = test::toy::setup(run_dir, 6);
  setup.device = device;
  setup.monitor = "val_map";
  setup.multi_label.enabled = true;
  train::parse_loss_spec(loss, setup.multi_label);
  if (pos_weight) setup.multi_label.pos_weight = train::auto_pos_weight(train_set.targets);
  setup.multi_label.rule.thresholds = {0.5, 0.5, 0.5};
  train::Trainer trainer(*model, optimizer, [](int64_t) { return 1.0; }, setup);
  MultiLabelRun run;
  run.history = trainer.fit(train_set, val_set);
  run.val = trainer.evaluate(val_set);
  return run;
}

}  // namespace

TEST_CASE("trainer multi-label: BCE learns the corner sets, epochs.csv and the checkpoint say multi-label") {
  test::TempDir dir("multilabel-trainer");
  const MultiLabelRun run = train_multi_label(Device::cpu(), dir.str());
  REQUIRE(run.history.size() == 6);
  for (const train::EpochStats& s : run.history)
    MESSAGE("epoch " << s.epoch << ": train loss " << s.train_loss << ", val loss " << s.val_loss << ", mAP "
                     << s.val_map << ", F1 micro " << s.val_f1_micro << " macro " << s.val_f1);
  CHECK(run.history.back().train_loss < 0.5 * run.history.front().train_loss);
  CHECK(run.history.back().val_map > 0.95);
  CHECK(run.history.back().val_f1_micro > 0.9);
  CHECK(run.val.multi_label);
  CHECK(run.val.multilabel.per_class.size() == 3);
  // The image set includes images with no label (i % 8 == 0): subset accuracy counts them.
  CHECK(run.val.accuracy == doctest::Approx(run.val.multilabel.subset_accuracy));
  std::ifstream csv(dir / "epochs.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header == "epoch,lr,train_loss,val_loss,val_map,val_f1_micro,val_f1_macro,val_f1,seconds,images_per_second,"
                  "peak_memory_mb");
  CHECK(std::filesystem::exists(dir / "best.safetensors"));
}

TEST_CASE("trainer multi-label: focal loss and pos_weight train too") {
  const MultiLabelRun focal = train_multi_label(Device::cpu(), "", "focal:gamma=2,alpha=0.25");
  CHECK(focal.history.back().train_loss < focal.history.front().train_loss);
  CHECK(focal.history.back().val_map > 0.9);
  const MultiLabelRun weighted = train_multi_label(Device::cpu(), "", "bce", true);
  CHECK(weighted.history.back().val_map > 0.9);
}

TEST_CASE("trainer multi-label on cuda: the same run as on the cpu" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("the multi-label trainer on cuda")) return;
  const MultiLabelRun cpu = train_multi_label(Device::cpu(), "");
  const MultiLabelRun cuda = train_multi_label(Device::cuda(0), "");
  REQUIRE(cuda.history.size() == cpu.history.size());
  double worst = 0;
  for (size_t e = 0; e < cpu.history.size(); ++e) {
    MESSAGE("epoch " << e + 1 << ": train loss cuda " << cuda.history[e].train_loss << " cpu "
                     << cpu.history[e].train_loss << ", val mAP cuda " << cuda.history[e].val_map << " cpu "
                     << cpu.history[e].val_map);
    worst = std::max(worst, std::abs(cuda.history[e].train_loss - cpu.history[e].train_loss) /
                                cpu.history.front().train_loss);
  }
  // As for the single-label toy run (tests/train/test_trainer_cuda.cpp): the backends
  // sum in other orders (~1e-7 relative per op) and SGD momentum carries that on.
  CHECK(worst < 1e-4);
  CHECK(std::abs(cuda.history.back().val_map - cpu.history.back().val_map) < 0.01);
  CHECK(std::abs(cuda.val.multilabel.micro.f1 - cpu.val.multilabel.micro.f1) < 0.01);
}

TEST_CASE("multi-label setup: loss specs, automatic pos_weight, pos_weight files, and refused combinations") {
  train::MultiLabelSetup s;
  train::parse_loss_spec("focal:gamma=1.5,alpha=none", s);
  CHECK(s.loss == "focal");
  CHECK(s.focal_gamma == 1.5);
  CHECK(s.focal_alpha < 0);
  CHECK(s.describe() == "sigmoid + focal loss (gamma 1.5, alpha none)");
  test::expect_error_containing([&] { train::parse_loss_spec("hinge", s); }, {"--loss", "bce or focal"});
  test::expect_error_containing([&] { train::parse_loss_spec("focal:beta=1", s); }, {"unknown focal parameter", "beta"});
  test::expect_error_containing([&] { train::parse_loss_spec("focal:gamma=-1", s); }, {"gamma must be >= 0"});
  test::expect_error_containing([&] { train::parse_loss_spec("bce:gamma=1", s); }, {"bce takes no parameters"});

  // 4 images: class 0 in 1 of them (3 negatives), class 1 in 2, class 2 in none.
  const Tensor targets = from_vector({1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, {4, 3}, {DType::f32});
  CHECK(train::auto_pos_weight(targets, 100) == std::vector<double>{3.0, 1.0, 100.0});
  CHECK(train::auto_pos_weight(targets, 2) == std::vector<double>{2.0, 1.0, 2.0});

  test::TempDir dir("pos-weight-file");
  const std::vector<std::string> names = {"a", "b"};
  std::ofstream(dir / "list.json") << "[2.5, 1]";
  CHECK(train::read_pos_weight_file(dir / "list.json", names) == std::vector<double>{2.5, 1.0});
  std::ofstream(dir / "named.json") << R"({"b": 4, "a": 0.5})";
  CHECK(train::read_pos_weight_file(dir / "named.json", names) == std::vector<double>{0.5, 4.0});
  std::ofstream(dir / "short.json") << "[2.5]";
  test::expect_error_containing([&] { train::read_pos_weight_file(dir / "short.json", names); },
                                {"short.json", "1 weights for 2 classes"});
  std::ofstream(dir / "missing.json") << R"({"a": 1})";
  test::expect_error_containing([&] { train::read_pos_weight_file(dir / "missing.json", names); },
                                {"missing.json", "no weight for class 'b'"});

  // A label the model does not know is an error naming it and the data.
  data::Dataset d = multi_label_toy(1, 8);
  test::expect_error_containing([&] { train::targets_for_classes(d, {"top-left", "top-right"}); },
                                {"multi-label toy", "'bottom-left'", "not one of the model's 2 classes"});
  // Columns follow the model's order.
  const Tensor reordered = train::targets_for_classes(d, {"bottom-left", "top-left", "top-right"});
  CHECK(reordered.data<float>()[7 * 3 + 0] == 1.0f);  // image 7 has all three
  CHECK(reordered.data<float>()[1 * 3 + 1] == 1.0f);  // image 1: top-left only
  CHECK(reordered.data<float>()[1 * 3 + 0] == 0.0f);

  // Trainer: multi-label monitors, and no mixup.
  auto model = test::toy::model();
  optim::SGD optimizer(model->parameters(), test::toy::sgd_options());
  train::TrainSetup setup = test::toy::setup("", 1);
  setup.monitor = "val_map";
  test::expect_error_containing([&] { train::Trainer(*model, optimizer, [](int64_t) { return 1.0; }, setup); },
                                {"val_map", "multi-label runs"});
  setup.multi_label.enabled = true;
  setup.augment = augment::parse_augment_spec("mixup:0.2");
  test::expect_error_containing([&] { train::Trainer(*model, optimizer, [](int64_t) { return 1.0; }, setup); },
                                {"mixup and cutmix", "multi-label"});
}
