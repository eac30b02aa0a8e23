// The CPU bar of the training issue: cnn5 trained from scratch on a Fashion-MNIST
// subset (10,000 training images, 3 epochs) reaches at least 85% test accuracy on
// 2,000 held-out test images. (The full-set bar, 92%, is measured on a GPU.)
// Fashion-MNIST comes from Debian's dataset-fashion-mnist, which `make test` installs.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "data/mnist_idx.h"
#include "engine/nn/init.h"
#include "engine/train/trainer.h"
#include "models/cnn5.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("fashion-mnist: cnn5 on a 10k CPU subset reaches 85 percent test accuracy") {
  if (!std::filesystem::exists(std::string(data::kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("SKIPPED: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  data::Dataset train_set = data::load_fashion_mnist(data::kFashionMnistDir, "train");
  data::Dataset test_set = data::load_fashion_mnist(data::kFashionMnistDir, "test");
  train_set = data::pad_images(data::subset(train_set, data::stratified_indices(train_set, 1000, 1)), 2);
  test_set = data::pad_images(data::subset(test_set, data::stratified_indices(test_set, 200, 2)), 2);

  nn::init::manual_seed(0);
  models::Cnn5Config config;
  config.in_channels = 1;
  config.input_size = 32;
  config.filters = models::Cnn5Config::organise_filters(16, "double");
  config.dense_units = 128;
  auto model = models::make_cnn5(config);

  optim::SgdOptions sgd_options;
  sgd_options.lr = 0.05;
  sgd_options.momentum = 0.9;
  sgd_options.weight_decay = 5e-4;
  optim::SGD sgd(model->parameters(), sgd_options);
  train::TrainSetup setup;
  setup.epochs = 3;
  setup.batch_size = 64;
  setup.image.out_size = 32;
  setup.image.mean = {0.2860};
  setup.image.std = {0.3530};
  setup.progress = false;
  const int64_t total_steps = 3 * (train_set.size() / 64);
  train::Trainer trainer(*model, sgd,
                         [total_steps](int64_t step) {  // cosine decay to 0
                           return 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps)));
                         },
                         setup);
  const auto history = trainer.fit(train_set, data::Dataset());
  const train::Evaluation result = trainer.evaluate(test_set);
  MESSAGE("fashion-mnist subset: test accuracy " << result.accuracy << " after " << history.size() << " epochs, "
                                                 << history.back().images_per_second << " img/s");
  CHECK(result.accuracy >= 0.85);
}
