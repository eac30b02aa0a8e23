// `kiln train DATA --model cnn5 ...`: train a classifier from scratch (or from
// --pretrained weights), evaluate the best checkpoint on the test set, and leave a
// run folder behind:
//   config.json        the resolved configuration (every flag, defaults filled in)
//   split.json         which file went to train / val / test
//   epochs.csv/.jsonl  one row per epoch: loss, accuracy, lr, time, images/s, memory
//   best.safetensors   the checkpoint with the best validation metric
//   last.safetensors   the last epoch's checkpoint (--resume continues from it)
//   test_metrics.json, per_class.csv, confusion_matrix.csv, roc_curves.csv
//   run_info.json      command line, parameter counts, device, set sizes (for the report)
//   report.html        the run report, with its figures as PNG in figures/ (--no-report: none)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "engine/augment/augment.h"
#include "engine/core/backend_info.h"
#include "engine/metrics/accumulator.h"
#include "engine/nn/init.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/train/progress.h"
#include "engine/train/trainer.h"
#include "models/registry.h"
#include "tools/commands.h"
#include "tools/data_options.h"
#include "tools/model_options.h"
#include "tools/train_report.h"
#include "weights/atomic_file.h"
#include "weights/checkpoint.h"

namespace kiln::tools {
namespace {

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
  double clip_grad_norm = 0;
  std::string monitor = "val_accuracy";
  int patience = 0;
  std::string device = "auto";
  std::string layout = "nchw";
  int workers = 2;
  std::string run_dir;
  std::string resume;
  bool quiet = false;
  bool no_report = false;
} options;

std::string default_run_dir(const std::string& model) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return "runs/" + model + "-" + stamp;
}

int run_train() {
  TrainOptions& o = options;
  // Check every spelled-out option before loading data or writing anything.
  const std::vector<std::string> known = optim::optimizer_names();
  std::string listed;
  for (const std::string& name : known) listed += (listed.empty() ? "" : ", ") + name;
  KILN_CHECK(std::find(known.begin(), known.end(), o.optimizer) != known.end(), "--optimizer: unknown optimizer '",
             o.optimizer, "' (known: ", listed, ")");
  optim::make_lr_schedule(o.schedule, optim::LrScheduleContext{o.lr, std::max(1, o.epochs)});
  augment::parse_augment_spec(o.augment);
  KILN_CHECK(o.stage_lr_decay == 1.0 || o.model.arch != "cnn5", "--stage-lr-decay is for zoo models, not cnn5");
  const Device device = resolve_device(o.device);
  if (o.run_dir.empty()) o.run_dir = o.resume.empty() ? default_run_dir(o.model.arch)
                                                      : std::filesystem::path(o.resume).parent_path().string();
  PreparedData data = prepare_data(o.data, o.run_dir);
  std::printf("kiln train: %s on %s | train %lld, val %lld, test %lld images, %lld classes | %s\n",
              o.model.arch.c_str(), device.to_string().c_str(), static_cast<long long>(data.train.size()),
              static_cast<long long>(data.val.size()), static_cast<long long>(data.test.size()),
              static_cast<long long>(data.train.num_classes()), o.run_dir.c_str());

  nn::init::manual_seed(o.data.seed);
  BuiltModel built = build_model(o.model, data.train);
  auto& model = *built.module;
  model.to(device);
  if (o.layout == "nhwc") model.to(Layout::nhwc);
  std::printf("%s | %lld parameters (%lld trainable)\n", built.description.c_str(),
              static_cast<long long>(model.parameter_count()), static_cast<long long>(model.parameter_count(true)));

  optim::OptimizerOptions optimizer_options;
  optimizer_options.momentum = o.momentum;
  optimizer_options.nesterov = o.nesterov;
  auto optimizer = optim::make_optimizer(
      o.optimizer,
      o.stage_lr_decay < 1.0 ? models::stage_param_groups(model, o.model.arch, o.lr, o.weight_decay, o.stage_lr_decay)
                             : optim::param_groups_no_decay_on_norms_and_biases(model, o.lr, o.weight_decay),
      optimizer_options);
  const int64_t steps_per_epoch = std::max<int64_t>(1, data.train.size() / o.batch_size);
  optim::LrScheduleContext schedule_context;
  schedule_context.base_lr = o.lr;
  schedule_context.total_steps = steps_per_epoch * o.epochs;
  auto schedule = optim::make_lr_schedule(o.schedule, schedule_context);

  train::TrainSetup setup;
  setup.epochs = o.epochs;
  setup.batch_size = o.batch_size;
  setup.augment = augment::parse_augment_spec(o.augment);
  setup.image = built.image;
  setup.image.layout = parse_layout(o.layout);
  setup.clip_grad_norm = o.clip_grad_norm;
  setup.monitor = o.monitor;
  setup.patience = o.patience;
  setup.device = device;
  setup.seed = o.data.seed;
  setup.workers = o.workers;
  setup.progress = !o.quiet;
  setup.run_dir = o.run_dir;
  setup.config = {{"command", "train"},
                  {"model", built.config},
                  {"data", {{"source", o.data.data}, {"size", built.image.out_size}, {"fit", o.data.fit}}},
                  {"image", {{"mean", built.image.mean}, {"std", built.image.std}}},
                  {"optimizer", {{"name", o.optimizer}, {"lr", o.lr}, {"weight_decay", o.weight_decay},
                                 {"stage_lr_decay", o.stage_lr_decay},
                                 {"momentum", o.momentum}, {"nesterov", o.nesterov}}},
                  {"schedule", o.schedule},
                  {"augment", augment::augment_spec_to_string(setup.augment)},
                  {"epochs", o.epochs},
                  {"batch_size", o.batch_size},
                  {"clip_grad_norm", o.clip_grad_norm},
                  {"monitor", o.monitor},
                  {"patience", o.patience},
                  {"seed", o.data.seed},
                  {"device", device.to_string()},
                  {"kiln", kVersion}};
  write_file_atomically(o.run_dir + "/config.json", [&](std::ostream& out) { out << setup.config.dump(2) << "\n"; });
  record_run_info(o.run_dir, built, model, device, o.data, data, o.batch_size, !o.resume.empty());

  train::Trainer trainer(model, *optimizer, [&](int64_t step) { return schedule->lr_factor(step); }, setup);
  if (!o.resume.empty()) {
    trainer.resume(load_checkpoint(o.resume));
    std::printf("resumed from %s at epoch %d\n", o.resume.c_str(), trainer.next_epoch());
  }
  const auto start = std::chrono::steady_clock::now();
  for (const train::EpochStats& s : trainer.fit(data.train, data.val))
    std::printf("epoch %3d  lr %.2e  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %6.0f img/s  %s  %.0f MiB\n",
                s.epoch, s.lr, s.train_loss, s.train_accuracy, s.val_loss, s.val_accuracy, s.images_per_second,
                format_duration(s.seconds).c_str(), s.peak_memory_mb);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Test metrics from the best checkpoint (the last one when there was no validation set).
  // (--epochs 0 writes no checkpoint: the model is evaluated as built or imported.)
  const std::string best = o.run_dir + "/best.safetensors", last = o.run_dir + "/last.safetensors";
  if (std::filesystem::exists(best) || std::filesystem::exists(last))
    restore_model(model, load_checkpoint(std::filesystem::exists(best) ? best : last));
  Tensor test_logits;
  if (data.test.size() > 0) {
    const train::Evaluation e = trainer.evaluate(data.test);
    test_logits = e.logits;
    metrics::MetricAccumulator accumulator(data.train.num_classes());
    accumulator.add(e.logits, data.test.labels);
    const metrics::ClassificationReport report = accumulator.report(data.train.class_names);
    std::printf("%s", report.to_table().c_str());
    nlohmann::json summary = report.to_json();
    summary["training_seconds"] = seconds;
    write_file_atomically(o.run_dir + "/test_metrics.json", [&](std::ostream& out) { out << summary.dump(2) << "\n"; });
    report.write_csv(o.run_dir);
    std::printf("test accuracy %.2f%%  macro F1 %.4f  (%lld images) | training %s | run folder %s\n",
                100.0 * e.accuracy, report.macro.f1, static_cast<long long>(e.count),
                format_duration(seconds).c_str(), o.run_dir.c_str());
  }
  if (!o.no_report) write_report_after_training(o.run_dir, data.test, test_logits);
  return 0;
}

const bool registered = register_command({
    "train",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("train", "train an image classifier and evaluate it on the test split");
      TrainOptions& o = options;
      add_data_options(cmd, o.data);
      add_model_options(cmd, o.model);
      cmd->add_option("--epochs", o.epochs, "epochs (0: only evaluate the model as built or imported)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per step")->capture_default_str();
      cmd->add_option("--optimizer", o.optimizer, "sgd, adam, adamw, nadam or radam")->capture_default_str();
      cmd->add_option("--lr", o.lr, "base learning rate")->capture_default_str();
      cmd->add_option("--weight-decay", o.weight_decay, "weight decay (not on biases and norms)")->capture_default_str();
      cmd->add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
      cmd->add_flag("--nesterov", o.nesterov, "SGD with Nesterov momentum");
      cmd->add_option("--stage-lr-decay", o.stage_lr_decay,
                      "zoo models: each stage learns at this times the lr of the next (1: one lr for all)")
          ->check(CLI::Range(1e-6, 1.0))
          ->capture_default_str();
      cmd->add_option("--schedule", o.schedule,
                      "constant, step:..., multistep:..., exponential:..., cosine[:warmup=N], cyclic:..., onecycle:...")
          ->capture_default_str();
      cmd->add_option("--augment", o.augment, "e.g. crop:0.35-1,hflip:0.5,rotate:15,mixup:0.2 (kiln augment-preview)");
      cmd->add_option("--clip-grad-norm", o.clip_grad_norm, "clip the global gradient norm (0: off)");
      cmd->add_option("--monitor", o.monitor, "val_accuracy or val_loss: picks the best checkpoint")
          ->capture_default_str();
      cmd->add_option("--patience", o.patience, "stop after N epochs without improvement (0: never)");
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--layout", o.layout, "nchw or nhwc (channels-last)")->capture_default_str();
      cmd->add_option("--workers", o.workers, "loader threads")->capture_default_str();
      cmd->add_option("--run-dir", o.run_dir, "the run folder (default runs/<model>-<time>)");
      cmd->add_option("--resume", o.resume, "continue from a last.safetensors checkpoint");
      cmd->add_flag("--quiet", o.quiet, "no progress bar");
      cmd->add_flag("--no-report", o.no_report, "do not write report.html (kiln report RUN_DIR writes it later)");
    },
    run_train,
});

}  // namespace
}  // namespace kiln::tools
