// `kiln demo`: the main job on its embedded default. Trains the 5-conv CNN from
// scratch on Fashion-MNIST (Debian's dataset-fashion-mnist) and prints the test
// accuracy. On the CPU it uses a stratified subset so that it ends in a few
// minutes on 2 cores; with a GPU it uses the full set, unless --train-per-class or
// --test-per-class asks for a subset (the CUDA-vs-CPU check of
// tests/cli/demo_cuda_vs_cpu.cmake runs the same subset on both devices).
// Like every run that trains, it leaves a run folder (runs/demo-<time> unless
// --run-dir says otherwise) with its epochs, checkpoints and report.html.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "data/mnist_idx.h"
#include "engine/core/backend_info.h"
#include "engine/nn/init.h"
#include "engine/train/trainer.h"
#include "engine/train/progress.h"
#include "models/cnn5.h"
#include "tools/commands.h"
#include "tools/train_report.h"
#include "tools/train_run.h"
#include "weights/atomic_file.h"

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
  std::string run_dir;        // empty: runs/demo-<time>
} options;

// The run folder's config.json and run_info.json, as `kiln train` writes them, so that
// the report (and `kiln report RUN`) can say what ran. The per-epoch evaluation of the
// demo is on the test set, and the report says so.
void record_demo_run(const std::string& run_dir, const nlohmann::json& config, const nn::Module& model,
                     const std::string& model_description, const Device& device, const data::Dataset& train_set,
                     const data::Dataset& test_set, bool full, int64_t batch_size) {
  write_file_atomically(run_dir + "/config.json", [&](std::ostream& out) { out << config.dump(2) << "\n"; });
  report::RunInfo info = run_info_of_process(model, model_description, device);
  info.data_source = std::string("Fashion-MNIST (") + (full ? "the full set" : "a stratified subset") +
                     "; the per-epoch validation is the test set)";
  info.channels = 1;
  info.train_images = train_set.size();
  info.val_images = test_set.size();
  info.test_images = test_set.size();
  info.train_images_per_epoch = train_set.size() > batch_size ? train_set.size() / batch_size * batch_size
                                                              : train_set.size();
  report::write_run_info(run_dir, info, /*resumed=*/false);
}

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
  const std::string run_dir = options.run_dir.empty() ? default_run_dir("demo") : options.run_dir;
  std::filesystem::create_directories(run_dir);
  setup.run_dir = run_dir;
  setup.config = {{"command", "demo"},
                  {"model", {{"arch", "cnn5"}, {"description", config.to_string()}}},
                  {"data", {{"source", "fashion-mnist"}, {"subset", !full}}},
                  {"epochs", options.epochs},
                  {"batch_size", setup.batch_size},
                  {"optimizer",
                   {{"name", "sgd"},
                    {"lr", sgd_options.lr},
                    {"momentum", sgd_options.momentum},
                    {"weight_decay", sgd_options.weight_decay}}},
                  {"schedule", "cosine"},
                  {"device", device.to_string()},
                  {"kiln", kVersion}};
  record_demo_run(run_dir, setup.config, *model, config.to_string(), device, train_set, test_set, full,
                  setup.batch_size);
  train::Trainer trainer(*model, sgd, cosine, setup);
  for (const train::EpochStats& s : trainer.fit(train_set, test_set))
    std::printf("epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.0f img/s, %s\n", s.epoch,
                s.train_loss, s.train_accuracy, s.val_loss, s.val_accuracy, s.images_per_second,
                format_duration(s.seconds).c_str());
  const train::Evaluation final_result = trainer.evaluate(test_set);
  std::printf("test accuracy: %.2f%% on %lld images | run folder %s\n", 100.0 * final_result.accuracy,
              static_cast<long long>(final_result.count), run_dir.c_str());
  write_report_after_training(run_dir, test_set, final_result.logits, "last.safetensors (the model after the last epoch)");
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
      cmd->add_option("--run-dir", options.run_dir, "the run folder (default: runs/demo-<time>)");
    },
    run_demo,
});

}  // namespace
}  // namespace kiln::tools
