#include "engine/train/classifier.h"

#include <chrono>
#include <cmath>
#include <numeric>

#include "engine/autograd/grad_mode.h"
#include "engine/core/rng.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/tensor/factory.h"
#include "engine/train/progress.h"

namespace kiln::train {

Tensor normalize_images(const Tensor& images_u8, const Normalization& norm, const Device& device) {
  KILN_CHECK(images_u8.dtype() == DType::u8 && images_u8.dim() == 4, "normalize_images: expected u8 (B, C, H, W), got ",
             images_u8.describe());
  const int64_t batch = images_u8.shape()[0], channels = images_u8.shape()[1];
  const int64_t plane = images_u8.shape()[2] * images_u8.shape()[3];
  KILN_CHECK(static_cast<int64_t>(norm.mean.size()) == channels && static_cast<int64_t>(norm.std.size()) == channels,
             "normalize_images: ", channels, " channels but ", norm.mean.size(), " means and ", norm.std.size(), " stds");
  // On the host for now: the fused GPU augmentation kernel of the training issue
  // will take uint8 batches to the device instead (4x fewer bytes to copy).
  Tensor out = empty(images_u8.shape(), {DType::f32});
  const uint8_t* src = images_u8.data<uint8_t>();
  float* dst = out.data<float>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < channels; ++c) {
      const float scale = static_cast<float>(1.0 / (255.0 * norm.std[c]));
      const float shift = static_cast<float>(norm.mean[c] / norm.std[c]);
      const int64_t base = (b * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) dst[base + i] = static_cast<float>(src[base + i]) * scale - shift;
    }
  return out.to(device);
}

namespace {

// Top-1 hits of a batch; logits (B, K) and labels (B) on the host.
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const std::vector<double> values = logits.to(Device::cpu()).to_vector();
  const int64_t* y = labels.data<int64_t>();
  const int64_t batch = logits.shape()[0], classes = logits.shape()[1];
  int64_t correct = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const auto row = values.begin() + b * classes;
    correct += (std::max_element(row, row + classes) - row) == y[b];
  }
  return correct;
}

}  // namespace

EvalResult evaluate(nn::Module& model, const data::Dataset& dataset, const ClassifierConfig& config) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  EvalResult result;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < dataset.size(); start += config.batch_size) {
    const int64_t n = std::min(config.batch_size, dataset.size() - start);
    const Tensor x = normalize_images(dataset.images.narrow0(start, n), config.normalization, config.device);
    const Tensor labels = dataset.labels.narrow0(start, n);
    const Tensor logits = model.forward(x);
    CrossEntropyOptions sum_loss;
    sum_loss.reduction = Reduction::sum;
    loss_sum += cross_entropy(logits, labels.to(config.device), sum_loss).to(Device::cpu()).item();
    correct += count_correct(logits, labels);
    result.count += n;
  }
  model.train(was_training);
  result.loss = loss_sum / static_cast<double>(std::max<int64_t>(result.count, 1));
  result.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(result.count, 1));
  return result;
}

std::vector<EpochResult> train_classifier(nn::Module& model, const data::Dataset& train_set,
                                          const data::Dataset& eval_set, const ClassifierConfig& config,
                                          const std::function<void(const EpochResult&)>& on_epoch) {
  KILN_CHECK(train_set.size() > 0, "train: the training set '", train_set.source, "' is empty");
  optim::SgdOptions sgd_options;
  sgd_options.lr = config.lr;
  sgd_options.momentum = config.momentum;
  sgd_options.weight_decay = config.weight_decay;
  optim::SGD sgd(model.trainable_parameters(), sgd_options);
  const int64_t steps_per_epoch = (train_set.size() + config.batch_size - 1) / config.batch_size;
  const int64_t total_steps = steps_per_epoch * config.epochs;
  Rng shuffle_rng(config.seed);
  std::vector<EpochResult> history;
  int64_t step = 0;
  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    model.train();
    std::vector<int64_t> order(static_cast<size_t>(train_set.size()));
    std::iota(order.begin(), order.end(), 0);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng.next_u64() % i]);
    ProgressBar bar(str("epoch ", epoch, "/", config.epochs), train_set.size());
    double loss_sum = 0;
    int64_t seen = 0, correct = 0;
    for (int64_t start = 0; start < train_set.size(); start += config.batch_size, ++step) {
      const int64_t n = std::min(config.batch_size, train_set.size() - start);
      const data::Dataset batch = data::subset(
          train_set, std::vector<int64_t>(order.begin() + start, order.begin() + start + n));
      if (config.cosine_schedule)
        sgd.scale_lr(0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps))));
      const Tensor x = normalize_images(batch.images, config.normalization, config.device);
      sgd.zero_grad();
      const Tensor logits = model.forward(x);
      const Tensor loss = cross_entropy(logits, batch.labels.to(config.device));
      loss.backward();
      sgd.step();
      // Reading the loss synchronises with the device once per step; the
      // performance issue moves these sums onto the device.
      loss_sum += loss.to(Device::cpu()).item() * static_cast<double>(n);
      correct += count_correct(logits.detach(), batch.labels);
      seen += n;
      if (config.progress)
        bar.update(seen, str("loss ", loss_sum / static_cast<double>(seen), "  acc ",
                             static_cast<double>(correct) / static_cast<double>(seen)));
    }
    EpochResult r;
    r.epoch = epoch;
    r.seconds = bar.elapsed_seconds();
    r.images_per_second = static_cast<double>(seen) / std::max(r.seconds, 1e-9);
    r.train_loss = loss_sum / static_cast<double>(seen);
    r.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    if (config.progress) bar.finish(str("loss ", r.train_loss, "  acc ", r.train_accuracy));
    if (eval_set.size() > 0) {
      const EvalResult e = evaluate(model, eval_set, config);
      r.eval_loss = e.loss;
      r.eval_accuracy = e.accuracy;
    }
    history.push_back(r);
    if (on_epoch) on_epoch(r);
  }
  return history;
}

}  // namespace kiln::train
