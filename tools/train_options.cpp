#include "tools/train_options.h"

#include <algorithm>

#include "engine/augment/augment.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/core/check.h"
#include "engine/train/precision.h"

namespace kiln::tools {

void add_train_options(CLI::App* app, TrainOptions& o) {
  add_data_options(app, o.data);
  add_sampler_options(app, o.data);
  add_model_options(app, o.model);
  app->add_option("--epochs", o.epochs, "epochs (0: only evaluate the model as built or imported)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--batch-size", o.batch_size, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
  app->add_option("--optimizer", o.optimizer, "sgd, adam, adamw, nadam or radam")->capture_default_str();
  app->add_option("--lr", o.lr, "base learning rate")->capture_default_str();
  app->add_option("--weight-decay", o.weight_decay, "weight decay (not on biases and norms)")->capture_default_str();
  app->add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  app->add_flag("--nesterov", o.nesterov, "SGD with Nesterov momentum");
  app->add_option("--stage-lr-decay", o.stage_lr_decay,
                  "zoo models: each stage learns at this times the lr of the next (1: one lr for all)")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  app->add_option("--schedule", o.schedule,
                  "constant, step:..., multistep:..., exponential:..., cosine[:warmup=N], cyclic:..., onecycle:...")
      ->capture_default_str();
  app->add_option("--progressive", o.progressive,
                  "progressive resizing SIZE:EPOCH,...: e.g. 32:0,48:15,64:30 trains epochs 1-15 at 32 px, "
                  "16-30 at 48 px, then 64 px (docs/capped-benchmark.md)");
  app->add_option("--progressive-batch", o.progressive_batch,
                  "fixed, or scale: the batch at size S is batch-size * (first size / S)^2")
      ->capture_default_str();
  app->add_option("--bn-reestimate", o.bn_reestimate,
                  "after each --progressive switch, re-estimate batch norm statistics on N batches (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--rules", o.rules,
                  "benchmark rules (tiny-imagenet, or e.g. no-dropout,no-fc,max-params=26M) checked on the model, "
                  "config and split before the first epoch; a violation stops the run; kept in rules.json")
      ->capture_default_str();
  app->add_option("--augment", o.augment, "e.g. crop:0.35-1,hflip:0.5,rotate:15,mixup:0.2 (kiln augment-preview)");
  app->add_option("--clip-grad-norm", o.clip_grad_norm, "clip the global gradient norm (0: off)");
  app->add_option("--monitor", o.monitor,
                  "val_accuracy, val_loss or val_f1 (multi-label: val_map, val_f1_micro, val_f1_macro or "
                  "val_loss; default val_map): picks the best checkpoint")
      ->capture_default_str();
  app->add_option("--loss", o.loss, "multi-label loss: bce or focal[:gamma=2,alpha=0.25]")->capture_default_str();
  app->add_option("--pos-weight", o.pos_weight,
                  "multi-label BCE: none, auto (negatives/positives per class on train, capped at 100) or a "
                  "JSON file (a list, or {class: weight})")
      ->capture_default_str();
  app->add_option("--threshold", o.threshold,
                  "multi-label: one threshold for every class, tune (per class, best F1 on validation) or tune-global "
                  "(one for every class, best micro-F1 on validation)")
      ->capture_default_str();
  app->add_option("--top-k", o.top_k, "multi-label: predict exactly the K most probable labels per image")
      ->check(CLI::PositiveNumber);
  app->add_flag("--at-least-one", o.at_least_one,
                "multi-label: keep the most probable label when no class passes its threshold");
  app->add_option("--patience", o.patience, "stop after N epochs without improvement (0: never)");
  app->add_option("--stop-after-epoch", o.stop_after_epoch,
                  "stop cleanly after epoch N with its checkpoint, the schedule still spanning --epochs "
                  "(--resume goes on; no test evaluation or report until the run ends)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
  app->add_option("--layout", o.layout, "nchw or nhwc (channels-last)")->capture_default_str();
  app->add_option("--precision", o.precision,
                  "f32, tf32 (TF32 tensor cores for f32 math), bf16 or f16 (autocast, f32 master weights; "
                  "f16 with dynamic loss scaling)")
      ->capture_default_str();
  app->add_flag("--deterministic", o.deterministic,
                "GPU: only deterministic cuDNN convolution algorithms (same bits every run; backward "
                "convolutions may be slower, docs/cuda.md)");
  app->add_option("--workers", o.workers, "loader threads")->capture_default_str();
  app->add_option("--log-interval", o.log_interval,
                  "steps between reads of the running loss and accuracy from the device (the progress text)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--run-dir", o.run_dir, "the run folder (default runs/<model>-<time>)");
  app->add_option("--resume", o.resume, "continue from a last.safetensors checkpoint");
  app->add_option("--feature-cache", o.feature_cache,
                  "auto: with a frozen backbone (--finetune head --freeze-bn) and no augmentation, compute "
                  "its output once per image and train the head on it; off: never")
      ->capture_default_str();
  app->add_option("--checkpoint-every", o.checkpoint_every,
                  "also write last.safetensors every N steps, mid-epoch (0: at epoch ends); SIGINT/SIGTERM "
                  "always finish the step and write one")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--on-nan", o.on_nan,
                  "stop: a NaN/inf training loss ends the run naming the step and the last good checkpoint; "
                  "skip: leave such steps out (one host read per step)")
      ->check(CLI::IsMember({"stop", "skip"}));
  app->add_flag("--cuda-graph", o.cuda_graph,
                "GPU: capture the training step (forward, backward, optimizer, loss scaling, totals) as a "
                "CUDA graph after 2 warm-up steps per input shape and replay it (docs/cuda_graphs.md)");
  app->add_flag("--quiet", o.quiet, "no progress bar");
  app->add_flag("--no-report", o.no_report, "do not write report.html (kiln report RUN_DIR writes it later)");
}

void check_train_options(const TrainOptions& o) {
  const std::vector<std::string> known = optim::optimizer_names();
  std::string listed;
  for (const std::string& name : known) listed += (listed.empty() ? "" : ", ") + name;
  KILN_CHECK(std::find(known.begin(), known.end(), o.optimizer) != known.end(), "--optimizer: unknown optimizer '",
             o.optimizer, "' (known: ", listed, ")");
  // (Checks the spelling only: one-cycle needs a run of at least two steps, the real
  // length is known once the data is loaded.)
  optim::make_lr_schedule(o.schedule, optim::LrScheduleContext{o.lr, std::max(2, o.epochs)});
  augment::parse_augment_spec(o.augment);
  train::parse_precision(o.precision);
  KILN_CHECK(o.feature_cache == "auto" || o.feature_cache == "off", "--feature-cache must be auto or off, got '",
             o.feature_cache, "'");
  // (A zero batch size divided the step count: a SIGFPE found by tests/bad_inputs.)
  KILN_CHECK(o.batch_size >= 1, "--batch-size must be at least 1, got ", o.batch_size);
  KILN_CHECK(o.checkpoint_every >= 0, "--checkpoint-every must be 0 (epoch ends only) or a step count, got ",
             o.checkpoint_every);
  KILN_CHECK(o.stage_lr_decay == 1.0 || o.model.arch != "cnn5", "--stage-lr-decay is for zoo models, not cnn5");
  KILN_CHECK(o.on_nan == "stop" || o.on_nan == "skip", "--on-nan must be stop or skip, got '", o.on_nan, "'");
  if (o.model.arch == "cnn5" || o.model.arch == "resnet_custom")
    KILN_CHECK(o.model.pretrained.empty() && o.model.finetune == "all", "--pretrained and --finetune are for zoo ",
               "models; ", o.model.arch, " trains from scratch");
  if (o.model.arch == "cnn5") to_config(o.model.cnn5);  // filters, kernel sizes, activation
}

TrainOptions parse_train_arguments(const std::vector<std::string>& args) {
  TrainOptions options;
  CLI::App app{"kiln train"};
  add_train_options(&app, options);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    KILN_FAIL(e.what());
  }
  check_train_options(options);
  return options;
}

}  // namespace kiln::tools
