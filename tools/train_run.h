// One training run, as `kiln train` does it, callable from other commands
// (`kiln compare` runs one per row of its table):
//   prepare the data (split.json into the run folder), build the model, train it with
//   the optimizer, schedule and augmentation of the options, evaluate the best
//   checkpoint on the test split, and write the run folder (config.json, epochs.csv,
//   checkpoints, test_metrics.json and the per-class CSV files; see tools/cmd_train.cpp).
// The returned TrainOutcome holds what a comparison of runs needs: test metrics,
// training time, throughput, peak memory and parameter counts.
#pragma once
#include <string>
#include <vector>

#include "engine/metrics/classification.h"
#include "engine/metrics/multilabel.h"
#include "engine/train/trainer.h"
#include "tools/data_options.h"
#include "tools/model_options.h"

namespace kiln::tools {

// Every flag of `kiln train` (the defaults are its defaults).
struct TrainOptions {
  DataOptions data;
  ModelOptions model;
  int epochs = 10;
  int64_t batch_size = 64;
  std::string optimizer = "adamw";
  double lr = 1e-3, weight_decay = 5e-4, momentum = 0.9;
  double stage_lr_decay = 1.0;
  bool nesterov = false;
  std::string schedule = "cosine";
  std::string augment = "";
  std::string progressive;                  // "32:0,48:15,64:30" (engine/train/progressive.h); "" off
  std::string progressive_batch = "fixed";  // fixed | scale
  int64_t bn_reestimate = 0;                // batches of BN re-estimation after each switch
  std::string rules;  // --rules tiny-imagenet|LIST (models/rules.h): checked before the first epoch, kept in rules.json
  double clip_grad_norm = 0;
  std::string monitor = "val_accuracy";
  int patience = 0;
  int stop_after_epoch = 0;  // > 0: stop cleanly after this epoch; the schedule spans all epochs
  std::string device = "auto";
  std::string layout = "nchw";
  std::string precision = "f32";  // f32 | tf32 | bf16 | f16
  bool deterministic = false;     // GPU: deterministic cuDNN algorithms only
  int workers = 2;
  int log_interval = 50;  // steps between host reads of the running loss/accuracy
  std::string run_dir;
  std::string resume;
  int64_t checkpoint_every = 0;  // steps between mid-epoch checkpoints (0: epoch ends only)
  std::string on_nan = "stop";   // stop | skip
  bool cuda_graph = false;        // capture the training step as a CUDA graph (docs/cuda_graphs.md)
  bool quiet = false;
  bool no_report = false;  // true: no report.html (kiln report RUN_DIR writes it later)
  // Multi-label (docs/multilabel.md): data.csv.multi_label (--multi-label), or automatic
  // when label cells list several labels.
  std::string loss = "bce";        // bce | focal[:gamma=2,alpha=0.25]
  std::string pos_weight = "none";  // none | auto | a JSON file
  std::string threshold = "0.5";   // a number in (0, 1) | tune
  int64_t top_k = 0;               // > 0: exactly the top K labels per image
  bool at_least_one = false;       // keep the top label when no class passes its threshold
  // auto: train the head on cached backbone features when the backbone is frozen and
  // the images never change (engine/train/feature_cache.h); off: never
  std::string feature_cache = "auto";
};

struct TrainOutcome {
  std::string run_dir;  // the run folder (the default one when options.run_dir was empty)
  std::string device;   // "cpu", "cuda:0"
  int64_t parameters = 0, trainable_parameters = 0;
  std::vector<train::EpochStats> epochs;  // this invocation's epochs (and the resumed ones in the log)
  double training_seconds = 0;   // wall clock of the epochs, validation included
  double images_per_second = 0;  // training images / training-step seconds, over all epochs
  double peak_memory_mb = 0;     // the largest per-epoch peak of the device allocator
  bool has_test = false;         // false when the split has no test images
  metrics::ClassificationReport test;  // of the best checkpoint on the test split
  bool multi_label = false;            // then `test` is empty and `test_multilabel` holds the test metrics
  metrics::MultilabelReport test_multilabel;
  std::string feature_cache;           // the cache decision: "on: ..." or "off: why"
};

// "runs/<model>-<YYYYmmdd-HHMMSS>"
std::string default_run_dir(const std::string& model);

// Checks every option, trains and evaluates, prints the run's terminal lines (the
// per-class test table only when print_test_table is set), and writes the run folder.
TrainOutcome train_and_evaluate(const TrainOptions& options, bool print_test_table = true);

}  // namespace kiln::tools
