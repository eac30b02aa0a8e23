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
#include "tools/train_options.h"
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
      add_train_options(cmd, options);
    },
    run_train,
});

}  // namespace
}  // namespace kiln::tools
