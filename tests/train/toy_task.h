// The toy training task of the trainer tests (tests/train/test_trainer.cpp on the
// cpu, tests/train/test_trainer_cuda.cpp on cuda:0 against the cpu): 96 RGB 12x12
// images of 3 classes, a conv-BN-relu-pool-dropout-linear net, SGD with momentum.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "engine/core/rng.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "engine/train/trainer.h"

namespace kiln::test::toy {

// 96 RGB 12x12 images of 3 classes: class c has a bright square in corner c, on noise.
inline data::Dataset dataset(uint64_t seed) {
  Rng rng(seed);
  data::Dataset d;
  const int64_t n = 96;
  d.images = empty({n, 3, 12, 12}, {DType::u8});
  d.labels = empty({n}, {DType::i64});
  uint8_t* px = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 3;
    d.labels.data<int64_t>()[i] = label;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 12; ++y)
        for (int64_t x = 0; x < 12; ++x) {
          const bool in_square = (label == 0 && y < 5 && x < 5) || (label == 1 && y < 5 && x >= 7) ||
                                 (label == 2 && y >= 7 && x < 5);
          px[((i * 3 + c) * 12 + y) * 12 + x] = static_cast<uint8_t>(in_square ? 200 + rng.uniform() * 55 : rng.uniform() * 80);
        }
  }
  d.class_names = {"top-left", "top-right", "bottom-left"};
  d.source = "toy";
  for (int64_t i = 0; i < n; ++i) d.file_names.push_back("toy" + std::to_string(i));
  return d;
}

// On the cpu, initialised from seed 5: the same weights on every call.
inline std::shared_ptr<nn::Sequential> model() {
  nn::init::manual_seed(5);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(8))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Dropout>(0.2, 11))
      .add(std::make_shared<nn::Linear>(8 * 6 * 6, 3));
  return net;
}

// The toy net with global average pooling in place of the fixed-size flatten, so it
// takes any image size (the progressive-resizing tests). No conv bias before batch norm
// (as in torchvision's nets): the norm cancels it, so its gradient is pure rounding
// noise, and a bias drifting on noise would make the cpu/cuda comparisons measure noise.
inline std::shared_ptr<nn::Sequential> any_size_model() {
  nn::init::manual_seed(5);
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, 1, /*bias=*/false))
      .add(std::make_shared<nn::BatchNorm>(8))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(8, 3));
  return net;
}

inline train::TrainSetup setup(const std::string& run_dir, int epochs) {
  train::TrainSetup s;
  s.epochs = epochs;
  s.batch_size = 16;
  // Colour only: a flip would swap the corner classes.
  s.augment = augment::parse_augment_spec("brightness:0.1,contrast:0.1");
  s.image.out_size = 12;
  s.image.mean = {0.5, 0.5, 0.5};
  s.image.std = {0.5, 0.5, 0.5};
  s.seed = 3;
  s.workers = 2;
  s.progress = false;
  s.run_dir = run_dir;
  return s;
}

inline optim::SgdOptions sgd_options() {
  optim::SgdOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  return o;
}

}  // namespace kiln::test::toy
