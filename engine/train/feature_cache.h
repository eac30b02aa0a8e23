// The frozen-feature cache: train only the head on the backbone's output, computed
// once per image instead of once per image per epoch.
//
// With `--finetune head` and frozen batch-norm statistics, everything before the
// head is a fixed function f (no parameter changes, no statistic moves, no dropout
// draws), and the loss of a step is L(head(f(x_i))). When the training images also
// reach the model unchanged every epoch (no augmentation, or only the deterministic
// resize / centre crop / normalise), f(x_i) is the same number in every epoch, so it
// can be computed once, kept, and every step runs only the head on the kept rows:
//
//   uncached step:  B images -> transform -> backbone -> head -> loss -> backward (head)
//   cached step:    B rows of the cache (B x F floats)  -> head -> loss -> backward (head)
//
// The head receives the same numbers (up to float rounding: the backbone ran on other
// batches), in the same order (the loader's epoch_order), with the same dropout draws
// (the head's Dropout counts its calls as before), so the weights and the metrics of a
// cached run equal the uncached run's (tests/train/test_feature_cache.cpp compares them).
// Validation runs the head on cached features of the validation images likewise.
//
// Where the cache is: host memory, rows of F values in the backbone's output dtype
// (MobileNetV2: 1,280 f32 = 5 KiB per image; ResNet-18: 512 = 2 KiB; VGG-11: 25,088 =
// 98 KiB). Each step gathers its rows and copies them to the model's device (pinned
// and asynchronous on a GPU), 64 x 5 KiB for MobileNetV2 instead of 64 images.
//
// plan_feature_cache() decides, and says why not when it cannot: a trainable
// parameter outside the head, a batch norm that would update its statistics, a
// dropout before the head, an augmentation that changes the images, mixup/cutmix, a
// head whose output is not the model's output, or a cache larger than the budget.
// The "what" of the decision is probed, not assumed: one image of the run's input
// size goes through the model in eval mode with a forward hook on the head, which
// gives F and checks that the head's output is the model's output.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/augment/augment.h"
#include "engine/nn/module.h"
#include "engine/train/precision.h"

namespace kiln::train {

struct FeatureCachePlan {
  bool enabled = false;
  std::string head;         // dotted path of the head module ("classifier", "fc"); "" when off
  Shape feature_shape;      // of one image's backbone output (the head's input), e.g. (1280)
  DType feature_dtype = DType::f32;
  int64_t bytes_per_image = 0;
  std::string explanation;  // one line for the terminal, run_info.json and the report: what or why not
};

// The module at a dotted path ("classifier", "layer4.1"); throws naming the path and
// the children where it fails.
nn::Module& module_at(nn::Module& model, const std::string& path);

// Decides whether the trainer can cache the output of everything before `head`.
// `images` is how many images the cache would hold (train + validation); more than
// `budget_bytes` of cache turns it off. Runs one probe forward of a zero image of
// (channels, image.out_size, image.out_size) on `device` (no graph, eval mode,
// autocast of `precision`); the model's mode and state are left as they were.
FeatureCachePlan plan_feature_cache(nn::Module& model, const std::string& head, const augment::AugmentSpec& augment,
                                    const augment::AugmentParams& image, int64_t channels, const Device& device,
                                    Precision precision, int64_t images, int64_t budget_bytes = int64_t{4} << 30);

// Why `augment` changes the images from epoch to epoch ("" when it does not: every
// transform off, or only the deterministic centre crop).
std::string augment_changes_images(const augment::AugmentSpec& augment);

// The backbone's output for every image of a dataset, in dataset order, on the host.
class FrozenFeatures {
 public:
  // Runs `model` over `dataset` in eval mode without a graph, batch by batch, with the
  // given input transform (`training_transform`: the trainer's augment_batch with the
  // run's deterministic spec; otherwise the evaluation transform), and keeps the
  // input of the head module `head`. Progress bar labelled `label` when `progress`.
  static FrozenFeatures compute(nn::Module& model, const std::string& head, const data::Dataset& dataset,
                                const augment::AugmentSpec& augment, const augment::AugmentParams& image,
                                bool training_transform, const Device& device, int64_t batch_size,
                                Precision precision, const std::string& label, bool progress);

  int64_t size() const { return features_.defined() ? features_.shape()[0] : 0; }
  const Tensor& features() const { return features_; }  // (N, F...) on the host
  // Rows [start, start + n), a view.
  Tensor rows(int64_t start, int64_t n) const { return features_.narrow0(start, n); }
  // The rows at `indices`, copied into one new host tensor (pinned when `pinned`, for
  // an asynchronous copy to a GPU).
  Tensor gather(const std::vector<int64_t>& indices, bool pinned) const;

 private:
  Tensor features_;
};

// The training batches of a cached run: the order and batch sizes of data::Loader
// (its order for the seed and epoch, drop_last), with the cached rows in place of
// the images.
class CachedBatches {
 public:
  // targets: what a training step learns from, one row per image in dataset order:
  // the class indices (N) i64, or the multi-hot rows (N, K) f32 of a multi-label run.
  // The order of each epoch is the loader's (data::loader_epoch_order of `dataset` and
  // `config`, the balanced sampler's draws included), batched as the loader batches it.
  CachedBatches(const FrozenFeatures& features, const data::Dataset& dataset, const Tensor& targets,
                data::LoaderConfig config, bool pinned);
  void start_epoch(int64_t epoch);
  // The next batch's features (B, F...) and target rows on the host; false at the end.
  bool next(Tensor& features, Tensor& targets);
  int64_t batches_per_epoch() const;

 private:
  const FrozenFeatures& features_;
  const data::Dataset& dataset_;
  Tensor targets_;
  data::LoaderConfig config_;
  bool pinned_;
  std::vector<int64_t> order_;
  int64_t next_batch_ = 0;
};

}  // namespace kiln::train
