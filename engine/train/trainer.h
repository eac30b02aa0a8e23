// The training loop of `kiln train`: epochs over a loader, augmentation on the
// model's device, optional mixup/cutmix, gradient clipping, an LR schedule applied
// every step, evaluation on a validation set after every epoch, a per-epoch log,
// the best and the last checkpoint, early stopping, and exact resume.
//
// No host sync in a step: the batch goes to the device as an asynchronous copy from
// pinned memory (engine/tensor/async_upload.h), and the loss and the correct count
// accumulate in a device tensor (engine/metrics/running_totals.h) that the host reads
// once every `log_interval` steps and at the end of the epoch.
//
// Exact resume: everything random is a pure function of (seed, epoch, step) — the
// loader's order, the augmentation draws, mixup's partners — and a checkpoint holds
// the model, the optimizer state, the module counters (dropout) and the step. A run
// resumed from the checkpoint of epoch e therefore continues exactly as the
// uninterrupted run would have (tests/train/test_trainer.cpp checks it).
//
// Mid-epoch (--checkpoint-every N, or SIGINT/SIGTERM: engine/train/signals.h): the
// checkpoint also holds how many batches of the epoch are done and the epoch's
// running totals; the loader's order is a function of (seed, epoch), so a resumed
// run skips those batches and continues bit-exactly (tests/cli/kill_resume.cmake
// kills a real `kiln train` with SIGKILL and compares the final weights byte for byte).
// A NaN or inf training loss stops the run naming the steps and the last good
// checkpoint, unless skip_nan is set.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "data/dataset.h"
#include "data/pack_set.h"
#include "data/sampler.h"
#include "engine/augment/augment.h"
#include "engine/nn/module.h"
#include "engine/optim/loss_scaler.h"
#include "engine/optim/optimizer.h"
#include "engine/train/multilabel.h"
#include "engine/train/feature_cache.h"
#include "engine/train/precision.h"
#include "engine/train/progressive.h"
#include "weights/checkpoint.h"

namespace kiln::train {

struct TrainSetup {
  int epochs = 10;
  int64_t batch_size = 64;
  augment::AugmentSpec augment;  // training transform (empty spec: resize + normalise only)
  augment::AugmentParams image;  // out_size, mean/std, dtype, layout of the model's input
  double clip_grad_norm = 0;     // 0: off
  // Picks the best checkpoint: val_accuracy | val_loss | val_f1 (macro); multi-label:
  // val_map | val_f1_micro | val_f1_macro | val_loss.
  std::string monitor = "val_accuracy";
  int patience = 0;                      // epochs without improvement before stopping; 0: never stop early
  // > 0: stop cleanly after this epoch, its checkpoint written, while the schedule still
  // spans `epochs` (--resume goes on from there): a sweep's successive halving runs each
  // trial to its rung this way, exactly, where a signal sent on seeing the epoch could
  // arrive after the trial had already trained on.
  int stop_after_epoch = 0;
  Device device = Device::cpu();
  Precision precision = Precision::f32;  // bf16/f16: autocast forward (f16 with loss scaling); tf32: TF32 math
  bool deterministic = false;            // GPU: deterministic cuDNN algorithms only (slower backward convs)
  uint64_t seed = 0;
  int workers = 2;
  data::SamplerConfig sampler;  // --sampler balanced: the training loader's draws (data/sampler.h)
  int log_interval = 50;  // steps between host reads of the running loss/accuracy (and the progress text)
  bool progress = true;
  std::string run_dir;  // where logs and checkpoints go; "" writes nothing
  // enabled: train the head on the frozen backbone's cached output (plan_feature_cache)
  FeatureCachePlan feature_cache;
  int64_t checkpoint_every = 0;  // also write last.safetensors every N steps, mid-epoch (0: at epoch ends only)
  bool skip_nan = false;  // --on-nan skip: leave out steps whose loss is NaN/inf (one host read per step)
                          // instead of stopping the run (docs/reliability.md)
  // --cuda-graph: after cuda_graph_warmup eager steps per input shape, the step (forward,
  // backward, optimizer, loss scaler, running totals) is captured as a CUDA graph and
  // replayed (engine/train/cuda_graph_step.h; check_cuda_graph_setup lists what it refuses).
  bool cuda_graph = false;
  int cuda_graph_warmup = 2;
  nlohmann::json config = nlohmann::json::object();  // saved into checkpoints, to rebuild the model
  MultiLabelSetup multi_label;  // enabled: sigmoid outputs, BCE or focal loss on the datasets' targets
  // enabled: each epoch's image size (image.out_size) and batch follow the schedule,
  // validation runs at the epoch's size and the size after fit() is the final one
  // (engine/train/progressive.h). Not with the feature cache (the images change).
  ProgressiveSchedule progressive;
  // A multi-size pack (data/pack_set.h) under --progressive: the train and val sets at
  // every size of the schedule (the same images as fit()'s, fitted to that size from
  // the originals). An epoch at size S trains and validates on the sets of S, so
  // nothing is resized on the fly; fit()'s own sets are then used for nothing but
  // their class names. Empty: every epoch resizes fit()'s sets to its size.
  std::vector<data::SizedSplit> packed_sizes;
};

struct EpochStats {
  int epoch = 0;
  double lr = 0;  // the largest group lr at the end of the epoch
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0, val_f1 = 0;  // val_f1: macro F1
  double val_map = 0, val_f1_micro = 0;                // multi-label (val_f1 is then the macro F1 too)
  double seconds = 0, images_per_second = 0;
  double peak_memory_mb = 0;  // of the model's device
  int64_t skipped_steps = 0;  // f16: steps the loss scaler skipped in this epoch (inf/nan gradients)
  int64_t steps = 0;          // training steps in this epoch
  int64_t host_reads = 0;     // reads of the device-resident running totals: one per log interval, plus the end
  int64_t graph_replays = 0;  // --cuda-graph: steps of this epoch that were replays of a captured graph
  int64_t image_size = 0, batch_size = 0;  // of this epoch's training images (they change with --progressive)
};

struct Evaluation {
  double loss = 0, accuracy = 0, macro_f1 = 0;
  int64_t count = 0;
  Tensor logits;  // (N, K) f32 on the cpu, in dataset order
  // Multi-label only: the report at the setup's decision rule (accuracy is then the
  // subset accuracy and macro_f1 the macro F1 of that rule).
  bool multi_label = false;
  metrics::MultilabelReport multilabel;
};

// Runs `model` in eval mode over `dataset` (eval transform: resize, centre crop,
// normalise with `image`), batch by batch on `device`, without recording a graph;
// bf16/f16 `precision` runs the forward under autocast.
Evaluation evaluate(nn::Module& model, const data::Dataset& dataset, const augment::AugmentParams& image,
                    const Device& device, int64_t batch_size, Precision precision = Precision::f32,
                    const MultiLabelSetup& multi_label = {});
// The metrics of host f32 logits that host_logits_of(start, n) gives for the dataset's
// rows [start, start + n), batch by batch (evaluate() and the cached validation).
Evaluation evaluate_batches(const data::Dataset& dataset, int64_t batch_size,
                            const std::function<Tensor(int64_t start, int64_t n)>& host_logits_of,
                            const MultiLabelSetup& multi_label = {});

// The epoch a run resumed from `checkpoint` starts at (its progress "epoch" + 1):
// what Trainer::resume sets, and what `kiln train` checks --stop-after-epoch against
// before it touches the run folder.
int epoch_resumed_from(const Checkpoint& checkpoint);

class Trainer {
 public:
  // lr_factor(step) multiplies each parameter group's base lr before step `step`.
  Trainer(nn::Module& model, optim::Optimizer& optimizer, std::function<double(int64_t step)> lr_factor,
          TrainSetup setup);

  // Continues from a checkpoint written by this trainer (model, optimizer, progress).
  void resume(const Checkpoint& checkpoint);
  // Trains for the remaining epochs; returns every epoch's stats (the resumed ones too,
  // when they are in the run's log).
  std::vector<EpochStats> fit(const data::Dataset& train_set, const data::Dataset& val_set);
  Evaluation evaluate(const data::Dataset& dataset);

  int next_epoch() const { return next_epoch_; }
  // Whether the last fit() stopped at TrainSetup::stop_after_epoch, short of the last
  // epoch, and goes on with resume(). Not after an early stop (patience) on that same
  // epoch: that run is over.
  bool paused() const { return paused_; }
  int64_t step() const { return step_; }
  double best_metric() const { return best_metric_; }

 private:
  // epoch: the last finished epoch; batches_done/loss_sum/correct/seen: progress into
  // the next one (0 at an epoch's end).
  Checkpoint make_checkpoint(int epoch, int64_t batches_done = 0, double loss_sum = 0, double correct = 0,
                             int64_t seen = 0) const;
  bool improved(double metric) const;
  // evaluate() with the head on cached features of `dataset` (computed on first use).
  Evaluation evaluate_cached(const data::Dataset& dataset, std::optional<FrozenFeatures>& features);

  nn::Module& model_;
  optim::Optimizer& optimizer_;
  std::function<double(int64_t)> lr_factor_;
  TrainSetup setup_;
  int next_epoch_ = 1;
  bool paused_ = false;
  int64_t step_ = 0;
  int64_t resume_batches_ = 0;              // batches of next_epoch_ already trained (a mid-epoch checkpoint)
  double resume_loss_sum_ = 0, resume_correct_ = 0;  // that epoch's running totals at the checkpoint
  int64_t resume_seen_ = 0;
  double best_metric_ = 0;
  bool has_best_ = false;
  int epochs_without_improvement_ = 0;
  std::vector<std::string> class_names_;
  std::unique_ptr<optim::LossScaler> loss_scaler_;  // f16 only; its state is saved in checkpoints
};

}  // namespace kiln::train
