// The sweep report a student hands in: sweeps/<name>/sweep.html, one self-contained
// page (every chart an inline SVG, every picture a PNG data URI, the scripts inline)
// built from the sweep's journal (report/sweep_journal.h) and its trials' run folders:
//
//   summary          trials by status, the best trial and its metric, test accuracy
//                    when `kiln sweep --finish` has run;
//   progress         the metric against the order trials were created, the running best;
//   parallel         parallel coordinates over every swept parameter and the metric
//                    (static SVG, and an interactive copy with brushing);
//   importance       per parameter (one-hot per categorical value): Pearson correlation
//                    with the metric and with validation loss, random-forest importance;
//   trials           every trial in a table sortable by any column, the best highlighted;
//   best             the best configuration as a ready `kiln train` command;
//   figures          the best model's hand-in pictures (SweepBestFigures): 30 images with
//                    true/predicted labels and probabilities, the first-layer filters,
//                    guided backpropagation of N neurons of the last conv block.
//
// The figures need the model and its data, which the command line loads
// (tools/sweep_figures.h); write_sweep_report() without them says how to add them.
// docs/sweep_report.md explains every chart and formula.
#pragma once
#include <string>
#include <vector>

#include "report/charts.h"
#include "report/image.h"
#include "report/sweep_analysis.h"
#include "report/sweep_journal.h"

namespace kiln::report {

// One neuron of the guided-backpropagation grid: channel `channel` of the layer, the
// image that excites it most (its largest activation `peak`) and the guided gradient
// of that activation with respect to the image's pixels (report::gradient_image).
struct GuidedNeuron {
  int64_t channel = 0;
  double peak = 0;
  RgbImage image, gradient;  // the same size
};

struct SweepBestFigures {
  std::string trial;        // the trial's name
  std::string run_dir;      // the run folder the checkpoint came from (relative to the sweep)
  std::string checkpoint;   // its file name
  std::string split;        // "test" (after kiln sweep --finish) or "validation"
  int64_t images = 0;       // images of that split evaluated
  double accuracy = 0;      // on them
  std::vector<CaptionedImage> predictions;  // up to 30, most confident first (10 x 3)
  RgbImage filters;         // the first conv layer's kernels (filter_grid)
  std::string filter_layer;
  int64_t filter_count = 0;
  std::vector<GuidedNeuron> guided;         // one per neuron, channels 0, 1, ...
  std::string guided_layer;
};

// What the report reads from a trial's run folder (NaN / 0 where it has none).
struct TrialRunSummary {
  bool found = false;       // the run folder was readable
  double val_loss = NAN;    // at the best epoch (the epoch of best.safetensors)
  double val_accuracy = NAN;
  double seconds = 0;       // training time
};

// The run folders of every trial, in journal order.
std::vector<TrialRunSummary> read_trial_runs(const std::string& sweep_dir, const SweepJournal& journal);

// The best trial's `kiln train` command: the one the journal recorded, else one built
// from DATA and the trial's parameters.
std::string best_train_command(const SweepJournal& journal, const SweepTrial& trial);

// The trial the report calls best: journal.best, else the finished or stopped trial
// with the best metric by the goal (as kiln sweep picks it); nullptr when none has one.
const SweepTrial* best_trial(const SweepJournal& journal);

std::string sweep_report_html(const std::string& sweep_dir, const SweepJournal& journal,
                              const std::vector<TrialRunSummary>& runs, const SweepBestFigures* best,
                              const std::string& generated);

// Reads <sweep_dir>/journal.json and the trials' run folders and writes
// <sweep_dir>/sweep.html atomically; returns its path. `best` may be null.
std::string write_sweep_report(const std::string& sweep_dir, const SweepBestFigures* best = nullptr);

}  // namespace kiln::report
