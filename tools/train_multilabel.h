// The multi-label part of `kiln train` (docs/multilabel.md), kept out of
// tools/train_run.cpp, which calls these two functions:
//   before training: decide whether the run is multi-label (--multi-label, or a data
//     set whose label cells list several labels), check the multi-label flags, work
//     out pos_weight, and print what was chosen;
//   after training: choose the decision rule (--threshold tune: per class on the
//     validation split), save it into the checkpoints and thresholds.json, and
//     evaluate the test split with it and with the 0.5 and top-2 rules for comparison.
#pragma once
#include <string>

#include "engine/train/multilabel.h"
#include "engine/train/trainer.h"
#include "tools/train_run.h"

namespace kiln::tools {

// Returns the setup (enabled = false for a single-label run). May change o.monitor
// (a multi-label run monitors val_map unless told otherwise).
train::MultiLabelSetup prepare_multi_label(TrainOptions& o, const PreparedData& data);

struct MultiLabelOutcome {
  metrics::DecisionRule rule;          // the rule saved with the model
  metrics::MultilabelReport test;      // at that rule
  metrics::MultilabelReport test_at_half, test_top2;  // the baselines
  Tensor test_logits;                  // (N, K) f32 on the cpu
};

// After training, with the best checkpoint loaded into `model`.
MultiLabelOutcome finish_multi_label(const TrainOptions& o, nn::Module& model, const PreparedData& data,
                                     const train::TrainSetup& setup);

}  // namespace kiln::tools
