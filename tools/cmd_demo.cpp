// `kiln demo`: the main job on its embedded default. Trains the 5-conv CNN from
// scratch on Fashion-MNIST (Debian's dataset-fashion-mnist) and prints the test
// accuracy. On the CPU it uses a stratified subset so that it ends in a few
// minutes on 2 cores; with a GPU it uses the full set, unless --train-per-class or
// --test-per-class asks for a subset (the CUDA-vs-CPU check of
// tests/cli/demo_cuda_vs_cpu.cmake runs the same subset on both devices).
#include <cmath>
#include <cstdio>

#include "data/mnist_idx.h"
#include "engine/core/backend_info.h"
#include "engine/nn/init.h"
#include "engine/train/trainer.h"
#include "engine/train/progress.h"
#include "models/cnn5.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

struct DemoOptions {
  std::string data_dir = data::kFashionMnistDir;
  int epochs = 3;
  int64_t train_per_class = 1000;  // CPU subset: 10,000 training images
  int64_t test_per_class = 200;    // and 2,000 test images
  std::string device = "auto";
  bool full = false;
  bool subset_asked = false;  // --train-per-class or --test-per-class given: a subset on a GPU too
} options;

int run_demo() {
  const Device device = options.device == "auto" ? (cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu())
                                                 : Device::parse(options.device);
  const bool full = options.full || (device.is_cuda() && !options.subset_asked);
  std::printf("kiln demo: cnn5 on Fashion-MNIST, %s, %s\n", device.to_string().c_str(),
              full ? "full set (60,000 / 10,000)" : "stratified subset");
  data::Dataset train_set = data::load_fashion_mnist(options.data_dir, "train");
  data::Dataset test_set = data::load_fashion_mnist(options.data_dir, "test");
  if (!full) {
    train_set = data::subset(train_set, data::stratified_indices(train_set, options.train_per_class, 1));
    test_set = data::subset(test_set, data::stratified_indices(test_set, options.test_per_class, 2));
  }
  train_set = data::pad_images(train_set, 2);  // 28 -> 32: five 2x2 poolings leave 1x1
  test_set = data::pad_images(test_set, 2);
  std::printf("train %lld images, test %lld images, %lld classes\n", static_cast<long long>(train_set.size()),
              static_cast<long long>(test_set.size()), static_cast<long long>(train_set.num_classes()));

  nn::init::manual_seed(0);
  models::Cnn5Config config;
  config.in_channels = 1;
  config.input_size = 32;
  config.filters = models::Cnn5Config::organise_filters(16, "double");
  config.dense_units = 128;
  config.dropout = 0.2;
  auto model = models::make_cnn5(config);
  model->to(device);
  std::printf("%s, %lld parameters\n", config.to_string().c_str(), static_cast<long long>(model->parameter_count()));

  optim::SgdOptions sgd_options;
  sgd_options.lr = 0.05;
  sgd_options.momentum = 0.9;
  sgd_options.weight_decay = 5e-4;
  optim::SGD sgd(model->parameters(), sgd_options);
  train::TrainSetup setup;
  setup.epochs = options.epochs;
  setup.batch_size = 64;
  setup.device = device;
  setup.image.out_size = 32;
  setup.image.mean = {0.2860};  // Fashion-MNIST pixel mean and std
  setup.image.std = {0.3530};
  const int64_t total_steps = options.epochs * (train_set.size() / setup.batch_size);
  auto cosine = [total_steps](int64_t step) {
    return 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps)));
  };
  train::Trainer trainer(*model, sgd, cosine, setup);
  for (const train::EpochStats& s : trainer.fit(train_set, test_set))
    std::printf("epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.0f img/s, %s\n", s.epoch,
                s.train_loss, s.train_accuracy, s.val_loss, s.val_accuracy, s.images_per_second,
                format_duration(s.seconds).c_str());
  const train::Evaluation final_result = trainer.evaluate(test_set);
  std::printf("test accuracy: %.2f%% on %lld images\n", 100.0 * final_result.accuracy,
              static_cast<long long>(final_result.count));
  return 0;
}

const bool registered = register_command({
    "demo",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("demo", "train cnn5 on Fashion-MNIST and print the test accuracy");
      cmd->add_option("--data-dir", options.data_dir, "folder with the Fashion-MNIST idx files");
      cmd->add_option("--epochs", options.epochs, "epochs to train")->check(CLI::PositiveNumber);
      // Given on a GPU, either one selects the subset there too.
      const auto asked = [](const std::string&) { options.subset_asked = true; };
      cmd->add_option("--train-per-class", options.train_per_class, "subset: training images per class")->each(asked);
      cmd->add_option("--test-per-class", options.test_per_class, "subset: test images per class")->each(asked);
      cmd->add_option("--device", options.device, "auto, cpu or cuda:N");
      cmd->add_flag("--full", options.full, "use the full data set on the CPU too");
    },
    run_demo,
});

}  // namespace
}  // namespace kiln::tools
