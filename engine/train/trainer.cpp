#include "engine/train/trainer.h"

#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <tuple>

#include "data/loader.h"
#include "engine/augment/mix_loss.h"
#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/backend_info.h"
#include "engine/core/json_parse.h"
#include "engine/metrics/accumulator.h"
#include "engine/metrics/running_totals.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/loss.h"
#include "engine/tensor/async_upload.h"
#include "engine/tensor/factory.h"
#include "engine/train/cuda_graph_step.h"
#include "engine/train/grad_clip.h"
#include "engine/train/progress.h"
#include "engine/train/run_log.h"
#include "engine/train/signals.h"

namespace kiln::train {

namespace {

// Seeds derived from the run seed: one stream per purpose, so that changing one
// (say, the augmentation) never shifts another (the loader's order).
uint64_t stream_seed(uint64_t seed, uint64_t purpose, uint64_t index) {
  return splitmix64(seed ^ splitmix64(purpose * 0x9e3779b97f4a7c15ull + index));
}
constexpr uint64_t kAugmentStream = 1, kMixStream = 2, kBatchNormStream = 3;

// Correct predictions of host logits (N, K) f32 against host labels (N).
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  return metrics::cpu::count_correct(logits.data<float>(), labels.data<int64_t>(), logits.shape()[0],
                                     logits.shape()[1]);
}

// The running totals (summed loss, correct count) of a training epoch, which live on
// the model's device: read() is the one place the training loop reads the device.
// Multi-label steps add only their loss (a label set has no single "correct" answer):
// an f32 (1) sum on the device, queued like the rest of the step.
class DeviceTotals {
 public:
  explicit DeviceTotals(const Device& device)
      : totals_(zeros({2}, {DType::f64, device})), loss_only_(zeros(Shape{}, {DType::f32, device})) {}
  // Starts from totals saved in a mid-epoch checkpoint (the same f64 values, so the
  // sums continue exactly as they would have).
  void set(double loss_sum, double correct) {
    copy_(totals_, from_vector(std::vector<double>{loss_sum, correct}, {2}, {DType::f64}));
  }
  void add(const Tensor& loss, const Tensor& logits, const Tensor& labels) {
    NoGradGuard no_grad;
    metrics::accumulate_loss_and_correct(totals_, loss.detach(), logits.detach(), labels);
  }
  void add_loss(const Tensor& loss, int64_t n) {
    NoGradGuard no_grad;
    loss_only_ = loss_only_ + loss.detach() * static_cast<double>(n);
  }
  // Waits for the queued steps (a device-to-host copy of 16 bytes) and returns the totals.
  std::pair<double, double> read() {
    ++reads_;
    const std::vector<double> t = totals_.to(Device::cpu()).to_vector();
    return {t[0] + loss_only_.to(Device::cpu()).to_vector()[0], t[1]};
  }
  int64_t reads() const { return reads_; }
  // A new epoch: the totals go back to 0 in place (a captured step keeps their address).
  void restart() {
    set(0, 0);
    fill_(loss_only_, 0.0);
    reads_ = 0;
  }

 private:
  Tensor totals_;     // f64 (2): loss * N summed, correct predictions
  Tensor loss_only_;  // f32 (): loss * N summed, multi-label steps
  int64_t reads_ = 0;
};

double peak_memory_mb(const Device& device) {
  return static_cast<double>(allocator_for(device).stats().peak_bytes_in_use) / (1 << 20);
}

std::vector<std::string> parameter_names(const nn::Module& model, const optim::Optimizer& optimizer) {
  // The optimizer's parameters in group order, named by the model.
  std::map<const TensorImpl*, std::string> by_impl;
  for (auto& [name, t] : model.named_parameters()) by_impl[t.impl_ptr().get()] = name;
  std::vector<std::string> names;
  for (const auto& group : const_cast<optim::Optimizer&>(optimizer).groups())
    for (const Tensor& p : group.params) {
      auto found = by_impl.find(p.impl_ptr().get());
      KILN_CHECK(found != by_impl.end(), "trainer: the optimizer holds a parameter that is not in the model");
      names.push_back(found->second);
    }
  return names;
}

}  // namespace

Trainer::Trainer(nn::Module& model, optim::Optimizer& optimizer, std::function<double(int64_t)> lr_factor,
                 TrainSetup setup)
    : model_(model), optimizer_(optimizer), lr_factor_(std::move(lr_factor)), setup_(std::move(setup)) {
  if (setup_.multi_label.enabled)
    KILN_CHECK(setup_.monitor == "val_map" || setup_.monitor == "val_f1_micro" || setup_.monitor == "val_f1_macro" ||
                   setup_.monitor == "val_f1" || setup_.monitor == "val_loss",
               "train: --monitor for a multi-label run must be val_map, val_f1_micro, val_f1_macro or val_loss, got '",
               setup_.monitor, "'");
  else
    KILN_CHECK(setup_.monitor == "val_accuracy" || setup_.monitor == "val_loss" || setup_.monitor == "val_f1",
               "train: --monitor must be val_accuracy, val_loss or val_f1, got '", setup_.monitor,
               "' (val_map, val_f1_micro and val_f1_macro are for multi-label runs)");
  KILN_CHECK(!setup_.multi_label.enabled || !setup_.augment.mix.enabled(),
             "train: mixup and cutmix mix single labels; a multi-label run cannot use them (--augment)");
  KILN_CHECK(setup_.log_interval >= 1, "train: --log-interval must be at least 1, got ", setup_.log_interval);
  KILN_CHECK(!setup_.progressive.enabled() || !setup_.feature_cache.enabled,
             "train: --progressive changes the image size per epoch; the feature cache holds features of one size "
             "(use --feature-cache off)");
  if (needs_loss_scaling(setup_.precision)) loss_scaler_ = std::make_unique<optim::LossScaler>();
}

bool Trainer::improved(double metric) const {
  if (!has_best_) return true;
  return setup_.monitor == "val_loss" ? metric < best_metric_ : metric > best_metric_;
}

Checkpoint Trainer::make_checkpoint(int epoch, int64_t batches_done, double loss_sum, double correct,
                                    int64_t seen) const {
  Checkpoint c = checkpoint_of(model_);
  c.optimizer = optimizer_.state_dict(parameter_names(model_, optimizer_));
  c.config = setup_.config;
  c.class_names = class_names_;
  c.progress = {{"epoch", epoch}, {"step", step_}, {"best_metric", best_metric_}, {"has_best", has_best_},
                {"epochs_without_improvement", epochs_without_improvement_}, {"monitor", setup_.monitor}};
  if (batches_done > 0)
    c.progress.update({{"epoch_batches_done", batches_done}, {"epoch_loss_sum", loss_sum}, {"epoch_correct", correct},
                       {"epoch_seen", seen}});
  if (loss_scaler_)
    c.progress.update({{"loss_scale", loss_scaler_->current_scale()},
                       {"loss_scale_good_steps", loss_scaler_->good_steps_in_a_row()},
                       {"loss_scale_skipped_steps", loss_scaler_->skipped_steps()}});
  return c;
}

int epoch_resumed_from(const Checkpoint& c) {
  return json_int_or(c.progress, "epoch", 0, "checkpoint progress") + 1;
}

void Trainer::resume(const Checkpoint& c) {
  restore_model(model_, c);
  optimizer_.load_state_dict(c.optimizer, parameter_names(model_, optimizer_));
  // Integer fields through json_parse.h: get<int>() of an out-of-range float is undefined.
  const auto progress_int = [&](const char* field) { return json_int_or(c.progress, field, 0, "checkpoint progress"); };
  const auto progress_int64 = [&](const char* field) {
    return json_int64_or(c.progress, field, 0, "checkpoint progress");
  };
  next_epoch_ = epoch_resumed_from(c);
  step_ = progress_int64("step");
  best_metric_ = c.progress.value("best_metric", 0.0);
  has_best_ = c.progress.value("has_best", false);
  epochs_without_improvement_ = progress_int("epochs_without_improvement");
  resume_batches_ = progress_int64("epoch_batches_done");
  resume_loss_sum_ = c.progress.value("epoch_loss_sum", 0.0);
  resume_correct_ = c.progress.value("epoch_correct", 0.0);
  resume_seen_ = progress_int64("epoch_seen");
  if (loss_scaler_ && c.progress.contains("loss_scale"))
    loss_scaler_->restore(c.progress.value("loss_scale", 65536.0), progress_int("loss_scale_good_steps"),
                          progress_int64("loss_scale_skipped_steps"));
}

Evaluation evaluate_batches(const data::Dataset& dataset, int64_t batch_size,
                            const std::function<Tensor(int64_t start, int64_t n)>& host_logits_of,
                            const MultiLabelSetup& multi_label) {
  KILN_CHECK(batch_size >= 1, "evaluate: batch size must be at least 1, got ", batch_size);
  Evaluation result;
  const int64_t classes = std::max<int64_t>(dataset.num_classes(), 1);
  result.logits = empty({dataset.size(), classes}, {DType::f32});
  double loss_sum = 0;
  int64_t correct = 0;
  const Tensor targets = multi_label.enabled ? multi_hot_targets(dataset) : Tensor();
  for (int64_t start = 0; start < dataset.size(); start += batch_size) {
    const int64_t n = std::min(batch_size, dataset.size() - start);
    const Tensor labels = dataset.labels.narrow0(start, n);
    const Tensor host_logits = host_logits_of(start, n);
    copy_(result.logits.narrow0(start, n), host_logits);
    if (multi_label.enabled) {  // the training loss (a mean over n * K), weighted by the batch's n
      loss_sum += multi_label.loss_of(host_logits, targets.narrow0(start, n)).item() * static_cast<double>(n);
      result.count += n;
      continue;
    }
    CrossEntropyOptions sum_loss;
    sum_loss.reduction = Reduction::sum;
    loss_sum += cross_entropy(host_logits, labels, sum_loss).item();
    correct += count_correct(host_logits, labels);
    result.count += n;
  }
  if (multi_label.enabled) {
    result.multi_label = true;
    result.loss = loss_sum / static_cast<double>(std::max<int64_t>(result.count, 1));
    if (result.count > 0) {
      result.multilabel = metrics::multilabel_report(sigmoid_probabilities(result.logits), targets_as_ints(targets),
                                                     classes, multi_label.rule, dataset.class_names);
      result.accuracy = result.multilabel.subset_accuracy;
      result.macro_f1 = result.multilabel.macro.f1;
    }
    return result;
  }
  if (result.count > 0) {
    metrics::MetricAccumulator accumulator(classes);
    accumulator.add(result.logits, dataset.labels);
    result.macro_f1 = accumulator.report({}, {1}).macro.f1;
  }
  result.loss = loss_sum / static_cast<double>(std::max<int64_t>(result.count, 1));
  result.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(result.count, 1));
  return result;
}

Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, const augment::AugmentParams& image,
                    const Device& device, int64_t batch_size, Precision precision,
                    const MultiLabelSetup& multi_label) {
  NoGradGuard no_grad;
  AutocastGuard autocast(autocast_dtype_of(precision));
  const bool was_training = model.is_training();
  model.eval();
  // The metrics need the logits on the host: one copy per batch, and the loss is
  // computed there from that copy (the same op on the cpu) instead of a second read.
  Evaluation result = evaluate_batches(dataset, batch_size, [&](int64_t start, int64_t n) {
    const Tensor x = augment::eval_transform(dataset.images.narrow0(start, n).to(device), image);
    return model.forward(x).to(DType::f32).to(Device::cpu());
  }, multi_label);
  model.train(was_training);
  return result;
}

Evaluation Trainer::evaluate(const data::Dataset& dataset) {
  return train::evaluate(model_, dataset, setup_.image, setup_.device, setup_.batch_size, setup_.precision,
                         setup_.multi_label);
}

Evaluation Trainer::evaluate_cached(const data::Dataset& dataset, std::optional<FrozenFeatures>& features) {
  const std::string& head_path = setup_.feature_cache.head;
  if (!features)
    features = FrozenFeatures::compute(model_, head_path, dataset, {}, setup_.image, /*training_transform=*/false,
                                       setup_.device, setup_.batch_size, setup_.precision, "feature cache (val)",
                                       setup_.progress);
  nn::Module& head = module_at(model_, head_path);
  NoGradGuard no_grad;
  AutocastGuard autocast(autocast_dtype_of(setup_.precision));
  const bool was_training = model_.is_training();
  model_.eval();
  Evaluation result = evaluate_batches(dataset, setup_.batch_size, [&](int64_t start, int64_t n) {
    return head.forward(features->rows(start, n).to(setup_.device)).to(DType::f32).to(Device::cpu());
  }, setup_.multi_label);
  model_.train(was_training);
  return result;
}

std::vector<EpochStats> Trainer::fit(const data::Dataset& train_set, const data::Dataset& val_set) {
  KILN_CHECK(train_set.size() > 0, "train: the training set '", train_set.source, "' is empty");
  class_names_ = train_set.class_names;
  paused_ = false;
  const bool multi_label = setup_.multi_label.enabled;
  KILN_CHECK(!multi_label || train_set.targets.defined() || train_set.labels.defined(),
             "train: a multi-label run needs the training set's label sets");
  const bool writes = !setup_.run_dir.empty();
  std::unique_ptr<RunLog> log;
  std::vector<std::string> columns =
      multi_label ? std::vector<std::string>{"epoch", "lr", "train_loss", "val_loss", "val_map", "val_f1_micro",
                                             "val_f1_macro", "val_f1", "seconds", "images_per_second",
                                             "peak_memory_mb"}
                  : std::vector<std::string>{"epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                             "val_f1", "seconds", "images_per_second", "peak_memory_mb"};
  const ProgressiveSchedule& progressive = setup_.progressive;
  if (progressive.enabled()) columns.insert(columns.begin() + 1, {"size", "batch_size"});
  if (writes) log = std::make_unique<RunLog>(setup_.run_dir, columns, /*first_epoch=*/next_epoch_);
  // A multi-label set whose rows each hold one label has no targets of its own.
  data::Dataset train_with_targets;
  const data::Dataset* train_data = &train_set;
  if (multi_label && !train_set.targets.defined()) {
    train_with_targets = train_set;
    train_with_targets.targets = multi_hot_targets(train_set);
    train_data = &train_with_targets;
  }
  // A multi-size pack (setup_.packed_sizes): the epoch's size is read from its own
  // train and val sets, so the augmentation's resize is an exact copy (no resampling).
  check_packed_sizes(progressive, setup_.packed_sizes, setup_.feature_cache.enabled);
  std::map<int64_t, data::Dataset> packed_with_targets;  // multi-label packed sizes without targets of their own
  const auto sets_at_epoch_size = [&]() -> std::pair<const data::Dataset*, const data::Dataset*> {
    if (setup_.packed_sizes.empty()) return {train_data, &val_set};
    const data::SizedSplit& sized = packed_sets_at(setup_.packed_sizes, setup_.image.out_size);
    if (!multi_label || sized.train.targets.defined()) return {&sized.train, &sized.val};
    data::Dataset& with_targets = packed_with_targets[sized.size];
    if (!with_targets.images.defined()) {
      with_targets = sized.train;
      with_targets.targets = multi_hot_targets(sized.train);
    }
    return {&with_targets, &sized.val};
  };
  data::LoaderConfig loader_config;
  loader_config.batch_size = setup_.batch_size;
  loader_config.seed = setup_.seed;
  loader_config.workers = setup_.workers;
  loader_config.sampler = setup_.sampler;
  loader_config.drop_last = train_set.size() > setup_.batch_size;  // a batch of one breaks batch norm
  // On a GPU the loader fills pinned buffers, so that each batch's copy is queued on
  // the stream without a host wait (AsyncUpload below).
  if (setup_.device.is_cuda())
    loader_config.host_buffer = [](const Shape& shape, DType dtype) { return empty_pinned(shape, dtype); };
  // Made per epoch batch size: --progressive-batch scale changes it at a size switch.
  std::unique_ptr<data::Loader> loader;
  const data::Dataset* loader_data = nullptr;  // what `loader` reads (it changes with a packed size)
  const int64_t classes = train_set.num_classes();
  // The frozen-feature cache (feature_cache.h): when the plan is on, the steps run the
  // head on rows of the backbone's cached output, in the loader's order, and the
  // loader is not started. The training features are computed in the first epoch (its
  // time counts as training time), the validation features at the first validation.
  const FeatureCachePlan& cache_plan = setup_.feature_cache;
  const bool cached = cache_plan.enabled;
  nn::Module* head = cached ? &module_at(model_, cache_plan.head) : nullptr;
  std::optional<FrozenFeatures> train_features, val_features;
  std::unique_ptr<CachedBatches> cached_batches;
  Tensor cached_rows;  // the current step's features on the host

  set_math_mode(setup_.precision, setup_.device);
  set_deterministic(setup_.device, setup_.deterministic);
  // --cuda-graph: one graph per input shape, replayed every step (cuda_graph_step.h).
  std::unique_ptr<CudaGraphStep> graph_step;
  if (setup_.cuda_graph) {
    check_cuda_graph_setup(setup_, model_, optimizer_);
    graph_step = std::make_unique<CudaGraphStep>(setup_.device, setup_.cuda_graph_warmup);
  }
  // One totals tensor for the whole run, zeroed in place at each epoch's start: a
  // captured step adds into the address it was captured with.
  DeviceTotals totals(setup_.device);
  std::vector<EpochStats> history;
  for (int epoch = next_epoch_; epoch <= setup_.epochs; ++epoch) {
    model_.train();
    allocator_for(setup_.device).reset_peak();
    // The epoch's size and batch are functions of the epoch alone, so a resumed run
    // (at an epoch's start or in its middle) picks up the same ones.
    const int64_t batch_size = progressive.batch_at(epoch, setup_.batch_size);
    if (progressive.enabled()) setup_.image.out_size = progressive.size_at(epoch);
    const auto [epoch_train, epoch_val] = sets_at_epoch_size();
    if (!loader || loader_config.batch_size != batch_size || loader_data != epoch_train) {
      loader_config.batch_size = batch_size;
      loader_config.drop_last = train_set.size() > batch_size;
      loader = std::make_unique<data::Loader>(*epoch_train, loader_config);
      loader_data = epoch_train;
    }
    // After a switch (not when resuming mid-epoch: the checkpoint holds the statistics
    // the pass produced), batch norm re-learns its statistics at the new size.
    if (progressive.switches_at(epoch) && progressive.bn_reestimate_batches > 0 && resume_batches_ == 0) {
      const int64_t used = reestimate_batch_norm(model_, *epoch_train, setup_.augment, setup_.image, setup_.device,
                                                 batch_size, progressive.bn_reestimate_batches,
                                                 stream_seed(setup_.seed, kBatchNormStream, epoch), epoch);
      if (setup_.progress)
        std::fprintf(stderr, "epoch %d: %lld px; batch norm statistics re-estimated on %lld batches\n", epoch,
                     static_cast<long long>(setup_.image.out_size), static_cast<long long>(used));
    }
    ProgressBar bar(str("epoch ", epoch, "/", setup_.epochs), loader->batches_per_epoch() * batch_size);
    if (cached) {
      if (!cached_batches) {
        train_features = FrozenFeatures::compute(model_, cache_plan.head, *train_data, setup_.augment, setup_.image,
                                                 /*training_transform=*/true, setup_.device, setup_.batch_size,
                                                 setup_.precision, "feature cache (train)", setup_.progress);
        cached_batches = std::make_unique<CachedBatches>(
            *train_features, *train_data, multi_label ? train_data->targets : train_data->labels, loader_config,
            setup_.device.is_cuda());
      }
      cached_batches->start_epoch(epoch);
    } else {
      loader->start_epoch(epoch);
    }
    totals.restart();
    const int64_t replays_before = graph_step ? graph_step->replays() : 0;
    double loss_sum = 0, correct = 0;  // the totals as of the last read
    int64_t seen = 0, steps = 0, steps_read = 0;
    data::Batch batch;
    if (resume_batches_ > 0) {
      // A mid-epoch checkpoint: the loader's order depends only on (seed, epoch), so
      // the batches it already trained on are drawn and dropped, and the totals pick
      // up where they were.
      for (int64_t i = 0; i < resume_batches_; ++i)
        KILN_CHECK(cached ? cached_batches->next(cached_rows, multi_label ? batch.targets : batch.labels)
                          : loader->next(batch),
                   "resume: the checkpoint is ", resume_batches_, " batches into epoch ", epoch,
                   ", which has only ", i, " (another data set or batch size?)");
      steps = steps_read = resume_batches_;
      seen = resume_seen_;
      loss_sum = resume_loss_sum_;
      correct = resume_correct_;
      totals.set(loss_sum, correct);
      resume_batches_ = 0;
    }
    std::string status;  // the progress text: loss and accuracy as of the last read
    const auto read_totals = [&] {
      std::tie(loss_sum, correct) = totals.read();
      steps_read = steps;
      const double images = static_cast<double>(std::max<int64_t>(seen, 1));
      status = multi_label ? str("loss ", loss_sum / images) : str("loss ", loss_sum / images, "  acc ", correct / images);
    };
    const int64_t skipped_before = loss_scaler_ ? loss_scaler_->skipped_steps() : 0;
    int64_t last_checked_step = step_;  // the loss was finite up to here
    // NaN/inf: the totals are read every log interval and before every checkpoint, so
    // a non-finite loss is found within log_interval steps and never reaches a checkpoint.
    const auto check_finite = [&] {
      if (!std::isfinite(loss_sum)) {
        const std::string last = setup_.run_dir.empty() ? std::string() : setup_.run_dir + "/last.safetensors";
        KILN_FAIL("train: the training loss became ", std::isnan(loss_sum) ? "NaN" : "inf", " between step ",
                  last_checked_step + 1, " and step ", step_, " (epoch ", epoch, "); ",
                  !last.empty() && std::filesystem::exists(last) ? "the last good checkpoint is " + last
                                                                 : std::string("no checkpoint was written yet"),
                  ". Likely causes: a learning rate too high (try a smaller --lr or a warmup), f16 overflow "
                  "(try --precision bf16), or broken input data; --on-nan skip leaves such steps out instead");
      }
      last_checked_step = step_;
    };
    const auto write_mid_epoch_checkpoint = [&] {
      read_totals();
      check_finite();
      save_checkpoint(setup_.run_dir + "/last.safetensors", make_checkpoint(epoch - 1, steps, loss_sum, correct, seen));
    };
    // Holds the previous step's copy until this step's starts: its pinned buffers go
    // back to the loader only once that copy has completed (see async_upload.h).
    AsyncUpload upload;
    std::shared_ptr<AsyncUpload> mix_tables;  // likewise for mixup/cutmix's masks and targets
    while (cached ? cached_batches->next(cached_rows, multi_label ? batch.targets : batch.labels)
                  : loader->next(batch)) {
      optimizer_.scale_lr(lr_factor_(step_));
      const int64_t n = (cached ? cached_rows : batch.images_u8).shape()[0];
      // Images (or cached features) and labels (multi-label: the multi-hot targets), one copy each.
      upload = AsyncUpload({cached ? cached_rows : batch.images_u8, multi_label ? batch.targets : batch.labels},
                           setup_.device);
      const Tensor& labels = upload.device_tensor(1);
      Tensor x = cached ? upload.device_tensor(0)
                        : augment::augment_batch(upload.device_tensor(0), setup_.augment, setup_.image,
                                                 stream_seed(setup_.seed, kAugmentStream, static_cast<uint64_t>(step_)));
      // The step's device work: forward, backward, update, running totals. Returns false
      // when --on-nan skip left the step out. With --cuda-graph it is what the graph
      // captures, on x and labels in the graph's fixed buffers.
      const auto train_step = [&](const Tensor& input, const Tensor& targets) {
        optimizer_.zero_grad();
        Tensor loss, logits;
        {
          AutocastGuard autocast(autocast_dtype_of(setup_.precision));  // bf16/f16: mixed-precision forward
          if (setup_.augment.mix.enabled()) {
            const uint64_t mix_seed = stream_seed(setup_.seed, kMixStream, static_cast<uint64_t>(step_));
            // (mix_batch draws the partners and builds the soft targets from the host labels)
            const augment::MixResult mixed =
                augment::mix_batch(input, batch.labels, classes, setup_.augment.mix, mix_seed);
            mix_tables = mixed.staged;
            logits = model_.forward(mixed.images).to(DType::f32);
            loss = augment::soft_cross_entropy(logits, mixed.targets);
          } else if (multi_label) {
            logits = (cached ? *head : model_).forward(input).to(DType::f32);
            loss = setup_.multi_label.loss_of(logits, targets);
          } else {
            logits = (cached ? *head : model_).forward(input).to(DType::f32);
            loss = cross_entropy(logits, targets);
          }
        }
        if (setup_.skip_nan && !std::isfinite(loss.to(Device::cpu()).item())) {
          // --on-nan skip: no backward and no update for this batch; the step still
          // counts, so the data order and every later random draw stay as they were.
          std::fprintf(stderr, "warning: step %lld of epoch %d has a non-finite loss: skipped (--on-nan skip)\n",
                       static_cast<long long>(step_ + 1), epoch);
          optimizer_.skip_step();  // the LR schedule (host and device) still moves on by one
          return false;
        }
        if (loss_scaler_) {  // f16: backward of loss * scale, unscale before clipping, skip inf/nan steps
          loss_scaler_->scale(loss).backward();
          if (setup_.clip_grad_norm > 0) {
            loss_scaler_->unscale(optimizer_);
            clip_grad_norm(model_.trainable_parameters(), setup_.clip_grad_norm);
          }
          loss_scaler_->step(optimizer_);
        } else {
          loss.backward();
          if (setup_.clip_grad_norm > 0) clip_grad_norm(model_.trainable_parameters(), setup_.clip_grad_norm);
          optimizer_.step();
        }
        // No read here: the loss and the correct count join the totals on the device.
        if (multi_label)
          totals.add_loss(loss, n);
        else
          totals.add(loss, logits, targets);
        return true;
      };
      bool stepped = true;
      if (graph_step) {
        const bool replayed =
            graph_step->run({x, labels}, [&](const std::vector<Tensor>& fixed) { train_step(fixed[0], fixed[1]); });
        if (replayed) optimizer_.count_replayed_step();  // the host side of the step that did not run
      } else {
        stepped = train_step(x, labels);
      }
      ++step_;
      ++steps;
      seen += n;
      if (!stepped) continue;
      if (steps % setup_.log_interval == 0) {
        read_totals();
        check_finite();
      }
      if (setup_.progress) bar.update(seen, status);
      if (writes && stop_requested()) {
        write_mid_epoch_checkpoint();
        KILN_FAIL("interrupted by ", stop_requested() == SIGINT ? "SIGINT" : "SIGTERM", " after step ", step_,
                  " (epoch ", epoch, ", batch ", steps, "); checkpoint written to ", setup_.run_dir,
                  "/last.safetensors. Resume with the same command and --resume ", setup_.run_dir, "/last.safetensors");
      }
      if (writes && setup_.checkpoint_every > 0 && step_ % setup_.checkpoint_every == 0) write_mid_epoch_checkpoint();
    }
    if (steps_read != steps || totals.reads() == 0) read_totals();  // the epoch's last steps
    check_finite();
    EpochStats s;
    s.epoch = epoch;
    for (const auto& group : optimizer_.groups()) s.lr = std::max(s.lr, group.lr);  // the head's, with stage lrs
    s.seconds = bar.elapsed_seconds();
    s.images_per_second = static_cast<double>(seen) / std::max(s.seconds, 1e-9);
    s.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(seen, 1));
    s.train_accuracy = correct / static_cast<double>(std::max<int64_t>(seen, 1));
    s.steps = steps;
    s.host_reads = totals.reads();
    s.graph_replays = graph_step ? graph_step->replays() - replays_before : 0;
    s.peak_memory_mb = peak_memory_mb(setup_.device);
    s.image_size = setup_.image.out_size;
    s.batch_size = batch_size;
    if (loss_scaler_) {
      s.skipped_steps = loss_scaler_->skipped_steps() - skipped_before;
      if (setup_.progress && s.skipped_steps > 0)
        std::fprintf(stderr, "f16 loss scaling: %lld steps skipped for inf/nan gradients this epoch, scale now %g\n",
                     static_cast<long long>(s.skipped_steps), loss_scaler_->current_scale());
    }
    if (setup_.progress)
      bar.finish(multi_label ? str("loss ", s.train_loss) : str("loss ", s.train_loss, "  acc ", s.train_accuracy));
    if (epoch_val->size() > 0) {
      const Evaluation e = cached ? evaluate_cached(val_set, val_features) : evaluate(*epoch_val);
      s.val_loss = e.loss;
      s.val_accuracy = e.accuracy;
      s.val_f1 = e.macro_f1;
      if (e.multi_label) {
        s.val_map = e.multilabel.mean_average_precision;
        s.val_f1_micro = e.multilabel.micro.f1;
      }
    }
    history.push_back(s);
    if (log) {
      std::map<std::string, double> row =
          multi_label
              ? std::map<std::string, double>{{"epoch", s.epoch}, {"lr", s.lr}, {"train_loss", s.train_loss},
                                              {"val_loss", s.val_loss}, {"val_map", s.val_map},
                                              {"val_f1_micro", s.val_f1_micro}, {"val_f1_macro", s.val_f1},
                                              {"val_f1", s.val_f1}, {"seconds", s.seconds},
                                              {"images_per_second", s.images_per_second},
                                              {"peak_memory_mb", s.peak_memory_mb}}
              : std::map<std::string, double>{{"epoch", s.epoch}, {"lr", s.lr}, {"train_loss", s.train_loss},
                                              {"train_accuracy", s.train_accuracy}, {"val_loss", s.val_loss},
                                              {"val_accuracy", s.val_accuracy}, {"val_f1", s.val_f1},
                                              {"seconds", s.seconds}, {"images_per_second", s.images_per_second},
                                              {"peak_memory_mb", s.peak_memory_mb}};
      if (progressive.enabled()) {
        row["size"] = static_cast<double>(s.image_size);
        row["batch_size"] = static_cast<double>(s.batch_size);
      }
      log->add(row);
    }

    const double metric = setup_.monitor == "val_loss"                                       ? s.val_loss
                          : setup_.monitor == "val_f1" || setup_.monitor == "val_f1_macro" ? s.val_f1
                          : setup_.monitor == "val_map"                                    ? s.val_map
                          : setup_.monitor == "val_f1_micro"                               ? s.val_f1_micro
                                                                                           : s.val_accuracy;
    const bool best = val_set.size() > 0 && improved(metric);
    if (best) {
      best_metric_ = metric;
      has_best_ = true;
      epochs_without_improvement_ = 0;
    } else {
      ++epochs_without_improvement_;
    }
    next_epoch_ = epoch + 1;
    if (writes) {
      const Checkpoint c = make_checkpoint(epoch);
      save_checkpoint(setup_.run_dir + "/last.safetensors", c);
      if (best) save_checkpoint(setup_.run_dir + "/best.safetensors", c);
    }
    if (setup_.patience > 0 && epochs_without_improvement_ >= setup_.patience) {
      if (setup_.progress)
        std::fprintf(stderr, "early stop: %s did not improve for %d epochs (best %.4f)\n", setup_.monitor.c_str(),
                     setup_.patience, best_metric_);
      break;
    }
    if (epoch == setup_.stop_after_epoch && epoch < setup_.epochs) {
      paused_ = true;  // the caller says how to go on
      break;
    }
  }
  // The final test (and any later evaluate()) runs at the schedule's last size,
  // whichever epoch the run stopped at.
  if (progressive.enabled()) setup_.image.out_size = progressive.final_size();
  return history;
}

}  // namespace kiln::train
