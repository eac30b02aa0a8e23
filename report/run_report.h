// report.html of a `kiln train` run: one self-contained page (CSS inline, charts as
// inline SVG, thumbnails as PNG data URIs; no network) with
//   - the run table a course asks for: model, parameters (total, trainable), batch
//     size, device and its memory (peak used / total), training time, the set sizes
//     and images per epoch with the online augmentation spec, training and
//     validation accuracy and validation F1 at the best epoch, the test metrics;
//   - loss, accuracy (and validation F1) and learning-rate curves per epoch;
//   - the test confusion matrix with counts, one-vs-rest ROC curves with AUC, a
//     per-class precision/recall/F1 table and bar chart;
//   - a grid of correct and a grid of wrong test predictions with captions;
//   - when the run folder has them: the hardest validation images (`kiln eval --hardest`,
//     grid and per-class table) and every benchmark rule with its verdict (rules.json);
//   - the command line and config.json that reproduce the run, kiln's version, the device.
// Every figure is also written as a PNG beside the page, in <run>/figures/.
//
// This file renders from plain inputs (RunReportInputs). Gathering them from a run
// folder and a model's test predictions is make_run_report_inputs() below; `kiln
// train` (at the end of a run) and `kiln report RUN_DIR` (tools/cmd_report.cpp) both
// end in write_report_for_run(). docs/report.md says how each number is computed.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "engine/metrics/classification.h"
#include "engine/tensor/tensor.h"
#include "report/charts.h"
#include "report/html.h"
#include "report/run_folder.h"

namespace kiln::report {

struct RunReportInputs {
  RunRecord run;                                      // config, run_info, epoch log of the run folder
  std::optional<metrics::ClassificationReport> test;  // the evaluated checkpoint on the test split
  std::string checkpoint;                             // which checkpoint `test` comes from, e.g. "best.safetensors"
  std::vector<CaptionedImage> correct, wrong;         // prediction thumbnails (report/predictions.h)
  std::string generated;                              // when the report was made (local time)
  // Written into the run folder by other commands, shown when there:
  std::optional<nlohmann::json> rules;    // rules.json of `kiln check-rules RUN` or `kiln train --rules`
  std::optional<nlohmann::json> hardest;  // hardest.json of `kiln eval CKPT --hardest N` (report/hard_examples.h)
  std::string hardest_png;                // the bytes of figures/hardest.png, its grid
};

// ---- the numbers behind each figure (each tested on its own)

// Per-epoch curves: loss (train, val), accuracy (train, val, val macro F1) and the
// learning rate, x = epoch number. Validation series only when the run validated.
struct TrainingCurves {
  std::vector<Series> loss, accuracy, lr;
  std::vector<Series> image_size;  // --progressive runs: the image side per epoch (empty otherwise)
};
TrainingCurves training_curves(const RunRecord& run);

// One ROC series per class (the report's fpr, tpr and AUC, labelled by class name).
std::vector<RocSeries> roc_series(const metrics::ClassificationReport& report);

// The run table as (name, value) rows, in display order.
std::vector<std::pair<std::string, std::string>> run_table(const RunReportInputs& inputs);

// ---- rendering

struct ReportFigure {
  std::string name;     // PNG file stem in figures/: "loss", "confusion_matrix", ...
  std::string caption;  // under the figure in the page
  Figure figure;
};

// The figures in page order; test-set figures only when inputs.test is set, grids
// only when they have images. The page shows the charts as inline SVG and the two
// prediction grids as HTML (image_grid_html: browser fonts), the PNG files all of them.
std::vector<ReportFigure> run_report_figures(const RunReportInputs& inputs);

// The whole page (figures as from run_report_figures(inputs)).
std::string run_report_html(const RunReportInputs& inputs, const std::vector<ReportFigure>& figures);

// Writes <dir>/report.html and <dir>/figures/<name>.png, each atomically; returns the page's path.
std::string write_run_report(const std::string& dir, const RunReportInputs& inputs);

// ---- gathering

// Reads the run folder and, when the test set is not empty, builds the test report
// from `test_logits` (N, K) (softmax in double, metrics::MetricAccumulator) and picks
// up to `thumbnails` correct and wrong predictions for the grids.
RunReportInputs make_run_report_inputs(const std::string& run_dir, const data::Dataset& test_set,
                                       const Tensor& test_logits, const std::string& checkpoint,
                                       size_t thumbnails = 30);

// make_run_report_inputs() then write_run_report(); returns report.html's path.
std::string write_report_for_run(const std::string& run_dir, const data::Dataset& test_set, const Tensor& test_logits,
                                 const std::string& checkpoint);

// "2026-11-23 12:34:56", local time: the `generated` and RunInfo::started stamps.
std::string local_time_stamp();

}  // namespace kiln::report
