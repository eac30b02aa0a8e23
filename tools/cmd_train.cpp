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
//   thresholds.json    multi-label runs: the decision rule saved with the model (docs/multilabel.md)
#include "tools/commands.h"
#include "tools/train_run.h"

namespace kiln::tools {
namespace {

TrainOptions options;

int run_train() {
  train_and_evaluate(options);
  return 0;
}

const bool registered = register_command({
    "train",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("train", "train an image classifier and evaluate it on the test split");
      TrainOptions& o = options;
      add_data_options(cmd, o.data);
      add_sampler_options(cmd, o.data);
      add_model_options(cmd, o.model);
      cmd->add_option("--epochs", o.epochs, "epochs (0: only evaluate the model as built or imported)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
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
      cmd->add_option("--progressive", o.progressive,
                      "progressive resizing SIZE:EPOCH,...: e.g. 32:0,48:15,64:30 trains epochs 1-15 at 32 px, "
                      "16-30 at 48 px, then 64 px (docs/capped-benchmark.md)");
      cmd->add_option("--progressive-batch", o.progressive_batch,
                      "fixed, or scale: the batch at size S is batch-size * (first size / S)^2")
          ->capture_default_str();
      cmd->add_option("--bn-reestimate", o.bn_reestimate,
                      "after each --progressive switch, re-estimate batch norm statistics on N batches (0: off)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      cmd->add_option("--rules", o.rules,
                      "benchmark rules (tiny-imagenet, or e.g. no-dropout,no-fc,max-params=26M) checked on the model, "
                      "config and split before the first epoch; a violation stops the run; kept in rules.json")
          ->capture_default_str();
      cmd->add_option("--augment", o.augment, "e.g. crop:0.35-1,hflip:0.5,rotate:15,mixup:0.2 (kiln augment-preview)");
      cmd->add_option("--clip-grad-norm", o.clip_grad_norm, "clip the global gradient norm (0: off)");
      cmd->add_option("--monitor", o.monitor,
                      "val_accuracy, val_loss or val_f1 (multi-label: val_map, val_f1_micro, val_f1_macro or "
                      "val_loss; default val_map): picks the best checkpoint")
          ->capture_default_str();
      cmd->add_option("--loss", o.loss, "multi-label loss: bce or focal[:gamma=2,alpha=0.25]")->capture_default_str();
      cmd->add_option("--pos-weight", o.pos_weight,
                      "multi-label BCE: none, auto (negatives/positives per class on train, capped at 100) or a "
                      "JSON file (a list, or {class: weight})")
          ->capture_default_str();
      cmd->add_option("--threshold", o.threshold,
                      "multi-label: one threshold for every class, or tune (per class, best F1 on validation)")
          ->capture_default_str();
      cmd->add_option("--top-k", o.top_k, "multi-label: predict exactly the K most probable labels per image")
          ->check(CLI::PositiveNumber);
      cmd->add_flag("--at-least-one", o.at_least_one,
                    "multi-label: keep the most probable label when no class passes its threshold");
      cmd->add_option("--patience", o.patience, "stop after N epochs without improvement (0: never)");
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--layout", o.layout, "nchw or nhwc (channels-last)")->capture_default_str();
      cmd->add_option("--precision", o.precision,
                      "f32, tf32 (TF32 tensor cores for f32 math), bf16 or f16 (autocast, f32 master weights; "
                      "f16 with dynamic loss scaling)")
          ->capture_default_str();
      cmd->add_flag("--deterministic", o.deterministic,
                    "GPU: only deterministic cuDNN convolution algorithms (same bits every run; backward "
                    "convolutions may be slower, docs/cuda.md)");
      cmd->add_option("--workers", o.workers, "loader threads")->capture_default_str();
      cmd->add_option("--log-interval", o.log_interval,
                      "steps between reads of the running loss and accuracy from the device (the progress text)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      cmd->add_option("--run-dir", o.run_dir, "the run folder (default runs/<model>-<time>)");
      cmd->add_option("--resume", o.resume, "continue from a last.safetensors checkpoint");
      cmd->add_option("--feature-cache", o.feature_cache,
                      "auto: with a frozen backbone (--finetune head --freeze-bn) and no augmentation, compute "
                      "its output once per image and train the head on it; off: never")
          ->capture_default_str();
      cmd->add_option("--checkpoint-every", o.checkpoint_every,
                      "also write last.safetensors every N steps, mid-epoch (0: at epoch ends); SIGINT/SIGTERM "
                      "always finish the step and write one")
          ->check(CLI::NonNegativeNumber);
      cmd->add_option("--on-nan", o.on_nan,
                      "stop: a NaN/inf training loss ends the run naming the step and the last good checkpoint; "
                      "skip: leave such steps out (one host read per step)")
          ->check(CLI::IsMember({"stop", "skip"}));
      cmd->add_flag("--quiet", o.quiet, "no progress bar");
      cmd->add_flag("--no-report", o.no_report, "do not write report.html (kiln report RUN_DIR writes it later)");
    },
    run_train,
});

}  // namespace
}  // namespace kiln::tools
