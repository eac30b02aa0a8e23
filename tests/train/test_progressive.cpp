// Progressive resizing (engine/train/progressive.h): the --progressive spec and its
// errors, the size and batch of each epoch, the LR schedule's step counter running on
// across a switch, batch norm re-estimation as a cumulative average, a resumed
// progressive run (at a switch, and mid-epoch) equal to the uninterrupted one, and
// the emulated GPU against the cpu.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "data/loader.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "engine/train/progressive.h"
#include "engine/train/signals.h"
#include "engine/train/trainer.h"
#include "test_util.h"
#include "train/toy_task.h"

using namespace kiln;

namespace {

using test::toy::any_size_model;

train::TrainSetup progressive_setup(const std::string& run_dir, int epochs, const std::string& spec,
                                    int64_t bn_batches) {
  train::TrainSetup s = test::toy::setup(run_dir, epochs);
  s.progressive = train::parse_progressive(spec, "scale", bn_batches);
  return s;
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = "/tmp/kiln_test_progressive_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

void check_error(const std::string& spec, const std::string& fragment) {
  CAPTURE(spec);
  try {
    train::parse_progressive(spec);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("progressive: the spec gives each epoch its size and, scaled, its batch") {
  const train::ProgressiveSchedule p = train::parse_progressive("32:0,48:15,64:30", "scale", 0);
  REQUIRE(p.stages.size() == 3);
  CHECK(p.to_string() == "32:0,48:15,64:30");
  CHECK(p.size_at(1) == 32);
  CHECK(p.size_at(15) == 32);
  CHECK(p.size_at(16) == 48);
  CHECK(p.size_at(31) == 64);
  CHECK(p.size_at(500) == 64);
  CHECK(!p.switches_at(1));
  CHECK(!p.switches_at(15));
  CHECK(p.switches_at(16));
  CHECK(p.switches_at(31));
  CHECK(p.batch_at(1, 256) == 256);
  CHECK(p.batch_at(16, 256) == 114);  // 256 * (32/48)^2 = 113.8
  CHECK(p.batch_at(31, 256) == 64);   // 256 / 4
  CHECK(train::parse_progressive("32:0,64:1", "fixed").batch_at(2, 256) == 256);
  // The schedule's length: 1000 images, epochs 1-2 at batch 100 (10 steps), 3 at 25 (40 steps).
  CHECK(train::progressive_total_steps(train::parse_progressive("16:0,32:2", "scale"), 3, 1000, 100) == 60);
  CHECK(train::steps_in_epoch(1000, 300) == 3);  // the short last batch is dropped
  CHECK(train::steps_in_epoch(10, 64) == 1);     // one batch, kept
  CHECK(!train::parse_progressive("").enabled());
}

TEST_CASE("progressive: a bad spec is named by its entry") {
  check_error("48:0,32:15", "entry 2 '32:15': sizes are out of order");
  check_error("32:0,48:15,48:30", "entry 3 '48:30': sizes are out of order");
  check_error("32:0,48:15,64:10", "entry 3 '64:10': epochs must increase");
  check_error("32:5,48:15", "the first entry '32:5' must start at epoch 0");
  check_error("32:0,48", "entry 2 '48' is not SIZE:EPOCH");
  check_error("32:0,,64:4", "entry 2 '' is not SIZE:EPOCH");
  check_error("0:0", "entry 1 '0:0' has size 0");
  check_error("-32:0", "is not SIZE:EPOCH");
  CHECK_THROWS_WITH(train::parse_progressive("32:0", "double"), doctest::Contains("--progressive-batch must be"));
  CHECK_THROWS_WITH(train::parse_progressive("", "scale"), doctest::Contains("needs --progressive"));
  CHECK_THROWS_WITH(train::parse_progressive("", "fixed", 4), doctest::Contains("--bn-reestimate needs"));
}

TEST_CASE("progressive: a size the model cannot take is named with the model's reason") {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 5, 1, 0));  // 5x5 without padding: needs at least 5 px
  augment::AugmentParams image;
  CHECK_NOTHROW(train::check_model_takes_sizes(*net, train::parse_progressive("5:0,8:1"), image, 3, Device::cpu()));
  CHECK_THROWS_WITH(train::check_model_takes_sizes(*net, train::parse_progressive("4:0,8:1"), image, 3, Device::cpu()),
                    doctest::Contains("--progressive: entry 1 '4:0': the model cannot take 4x4 images"));
}

TEST_CASE("progressive: batch norm re-estimation is the cumulative average of the batches' statistics") {
  const data::Dataset images = test::toy::dataset(1);
  auto net = std::make_shared<nn::Sequential>();
  auto bn = std::make_shared<nn::BatchNorm>(3);
  net->add(bn);
  fill_(bn->running_mean, 7.0);  // whatever the old statistics were, they are reset first
  augment::AugmentParams image;
  image.out_size = 12;
  image.mean = {0.5, 0.5, 0.5};
  image.std = {0.5, 0.5, 0.5};
  const augment::AugmentSpec none;  // no random transform: the batches can be recomputed here
  const int64_t used = train::reestimate_batch_norm(*net, images, none, image, Device::cpu(), 16, 3, 42, 2);
  CHECK(used == 3);
  CHECK(bn->momentum == 0.1);  // restored
  CHECK(net->is_training());
  // The same three batches (the order of (seed 42, epoch 2)), their per-channel mean
  // and unbiased variance, averaged with equal weights.
  data::LoaderConfig config;
  config.batch_size = 16;
  config.seed = 42;
  config.workers = 1;
  config.drop_last = true;
  data::Loader loader(images, config);
  loader.start_epoch(2);
  std::vector<double> mean(3, 0), var(3, 0);
  data::Batch b;
  for (int k = 0; k < 3; ++k) {
    REQUIRE(loader.next(b));
    const Tensor x = augment::augment_batch(b.images_u8, none, image, 0).to(DType::f64);
    const std::vector<double> v = x.to_vector();
    const int64_t per = 12 * 12, n = 16;
    for (int64_t c = 0; c < 3; ++c) {
      double sum = 0, squares = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < per; ++p) sum += v[static_cast<size_t>((i * 3 + c) * per + p)];
      const double m = sum / static_cast<double>(n * per);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < per; ++p) {
          const double d = v[static_cast<size_t>((i * 3 + c) * per + p)] - m;
          squares += d * d;
        }
      mean[static_cast<size_t>(c)] += m / 3;
      var[static_cast<size_t>(c)] += squares / static_cast<double>(n * per - 1) / 3;
    }
  }
  const std::vector<double> running_mean = bn->running_mean.to(DType::f64).to_vector();
  const std::vector<double> running_var = bn->running_var.to(DType::f64).to_vector();
  for (size_t c = 0; c < 3; ++c) {
    CHECK(running_mean[c] == doctest::Approx(mean[c]).epsilon(1e-5));
    CHECK(running_var[c] == doctest::Approx(var[c]).epsilon(1e-5));
  }
}

TEST_CASE("progressive: the trainer runs each epoch at its size and batch, the LR step counter runs on across "
          "the switch, and epochs.csv has the sizes") {
  const data::Dataset train_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  auto model = any_size_model();
  optim::SGD sgd(model->parameters(), test::toy::sgd_options());
  const std::string dir = fresh_dir("sizes");
  const train::TrainSetup setup = progressive_setup(dir, 3, "8:0,12:1", 2);
  // 96 images: epoch 1 at 8 px, batch 16 (6 steps); epochs 2-3 at 12 px, batch 16 * (8/12)^2 = 7 (13 steps each).
  const int64_t total = train::progressive_total_steps(setup.progressive, 3, 96, 16);
  REQUIRE(total == 6 + 13 + 13);
  std::vector<int64_t> steps;
  train::Trainer trainer(*model, sgd, [&](int64_t s) {
    steps.push_back(s);
    return 1.0 - static_cast<double>(s) / static_cast<double>(total);  // linear decay over the whole run
  }, setup);
  const std::vector<train::EpochStats> history = trainer.fit(train_set, val_set);
  REQUIRE(history.size() == 3);
  CHECK(history[0].image_size == 8);
  CHECK(history[0].batch_size == 16);
  CHECK(history[0].steps == 6);
  CHECK(history[1].image_size == 12);
  CHECK(history[1].batch_size == 7);
  CHECK(history[2].steps == 13);
  // One schedule value per step, steps 0..total-1 in order: the switch after step 5
  // neither repeats nor skips a step, so the LR moves on by the same 1/total there.
  REQUIRE(steps.size() == static_cast<size_t>(total));
  for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i] == static_cast<int64_t>(i));
  CHECK(history[2].lr == doctest::Approx(0.05 / static_cast<double>(total)));  // the last step's lr: base * 1/total
  std::ifstream csv(dir + "/epochs.csv");
  std::string header, row1, row2;
  std::getline(csv, header);
  std::getline(csv, row1);
  std::getline(csv, row2);
  CHECK(header.rfind("epoch,size,batch_size,lr,", 0) == 0);
  CHECK(row1.rfind("1,8,16,", 0) == 0);
  CHECK(row2.rfind("2,12,7,", 0) == 0);
}

TEST_CASE("progressive: a run resumed at a size switch (with batch norm re-estimation) equals the uninterrupted run") {
  const data::Dataset train_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  const auto lr = [](int64_t s) { return 1.0 / (1.0 + 0.01 * static_cast<double>(s)); };
  const std::string spec = "8:0,12:2";  // epochs 1-2 at 8 px, epoch 3 at 12 px
  auto straight = any_size_model();
  optim::SGD sgd_straight(straight->parameters(), test::toy::sgd_options());
  train::Trainer(*straight, sgd_straight, lr, progressive_setup(fresh_dir("straight"), 3, spec, 2))
      .fit(train_set, val_set);
  const std::string dir = fresh_dir("resumed");
  {
    auto first = any_size_model();
    optim::SGD sgd(first->parameters(), test::toy::sgd_options());
    train::Trainer(*first, sgd, lr, progressive_setup(dir, 2, spec, 2)).fit(train_set, val_set);
  }
  auto resumed = any_size_model();
  optim::SGD sgd(resumed->parameters(), test::toy::sgd_options());
  train::Trainer trainer(*resumed, sgd, lr, progressive_setup(dir, 3, spec, 2));
  trainer.resume(load_checkpoint(dir + "/last.safetensors"));
  REQUIRE(trainer.next_epoch() == 3);
  const std::vector<train::EpochStats> history = trainer.fit(train_set, val_set);
  REQUIRE(!history.empty());
  CHECK(history.back().image_size == 12);
  for (auto& [name, t] : straight->state_dict()) {
    CAPTURE(name);
    CHECK(resumed->state_dict()[name].to_vector() == t.to_vector());  // bit-identical, running statistics included
  }
}

TEST_CASE("progressive: a run stopped in the middle of a scaled-batch epoch resumes exactly (mid-epoch checkpoint)") {
  const data::Dataset train_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  const auto lr = [](int64_t s) { return 1.0 / (1.0 + 0.01 * static_cast<double>(s)); };
  const std::string spec = "8:0,12:1";  // epoch 1 at 8 px (batch 16, steps 0-5), epochs 2-3 at 12 px (batch 7)
  auto straight = any_size_model();
  optim::SGD sgd_straight(straight->parameters(), test::toy::sgd_options());
  train::Trainer(*straight, sgd_straight, lr, progressive_setup(fresh_dir("mid_straight"), 3, spec, 2))
      .fit(train_set, val_set);
  const std::string dir = fresh_dir("mid_stopped");
  {
    // As if SIGTERM arrived during step 9, the 4th step of epoch 2: the trainer finishes
    // it, writes a checkpoint 4 batches (of 7) into the epoch, after the switch's
    // batch norm pass, and stops.
    auto first = any_size_model();
    optim::SGD sgd(first->parameters(), test::toy::sgd_options());
    train::Trainer stopped(*first, sgd, [&](int64_t s) {
      if (s == 9) train::request_stop(SIGTERM);
      return lr(s);
    }, progressive_setup(dir, 3, spec, 2));
    CHECK_THROWS_WITH(stopped.fit(train_set, val_set), doctest::Contains("interrupted by SIGTERM after step 10"));
    train::request_stop(0);
  }
  const Checkpoint mid = load_checkpoint(dir + "/last.safetensors");
  CHECK(mid.progress["epoch"] == 1);
  CHECK(mid.progress["epoch_batches_done"] == 4);
  auto resumed = any_size_model();
  optim::SGD sgd(resumed->parameters(), test::toy::sgd_options());
  train::Trainer trainer(*resumed, sgd, lr, progressive_setup(dir, 3, spec, 2));
  trainer.resume(mid);
  const std::vector<train::EpochStats> history = trainer.fit(train_set, val_set);
  REQUIRE(history.size() == 2);
  CHECK(history[0].batch_size == 7);
  CHECK(history[0].steps == 13);
  for (auto& [name, t] : straight->state_dict()) {
    CAPTURE(name);
    CHECK(resumed->state_dict()[name].to_vector() == t.to_vector());  // bit-identical
  }
}

TEST_CASE("progressive on cuda: sizes, scaled batches and batch norm re-estimation follow the cpu run" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("progressive resizing on cuda")) return;
  const data::Dataset train_set = test::toy::dataset(1), val_set = test::toy::dataset(2);
  const auto run = [&](const Device& device, std::vector<double>& state) {
    auto model = any_size_model();
    model->to(device);
    optim::SGD sgd(model->parameters(), test::toy::sgd_options());
    train::TrainSetup setup = progressive_setup("", 3, "8:0,12:1", 2);
    setup.device = device;
    const std::vector<train::EpochStats> history =
        train::Trainer(*model, sgd, [](int64_t s) { return 1.0 / (1.0 + 0.01 * static_cast<double>(s)); }, setup)
            .fit(train_set, val_set);
    for (auto& [name, t] : model->state_dict()) {
      const std::vector<double> v = t.to(Device::cpu()).to_vector();
      state.insert(state.end(), v.begin(), v.end());
    }
    return history;
  };
  std::vector<double> cpu_state, cuda_state;
  const std::vector<train::EpochStats> cpu = run(Device::cpu(), cpu_state);
  const std::vector<train::EpochStats> cuda = run(Device::cuda(0), cuda_state);
  REQUIRE(cuda.size() == 3);
  for (size_t e = 0; e < cpu.size(); ++e) {
    CAPTURE(e + 1);
    CHECK(cuda[e].image_size == cpu[e].image_size);
    CHECK(cuda[e].batch_size == cpu[e].batch_size);
    CHECK(cuda[e].steps == cpu[e].steps);
    // f32 summation-order noise of the two backends carried by momentum (the trainer's
    // own cpu/cuda test measures ~1e-7; a wrong size or statistic moves these by > 1e-2).
    CHECK(std::abs(cuda[e].train_loss - cpu[e].train_loss) < 1e-4 * cpu.front().train_loss);
    CHECK(std::abs(cuda[e].val_loss - cpu[e].val_loss) < 1e-4 * cpu.front().train_loss);
  }
  CHECK(test::relative_l2(cuda_state, cpu_state) < 1e-4);  // the re-estimated running statistics included
}
