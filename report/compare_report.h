// compare.html: several `kiln train` runs side by side, from their logs alone
// (`kiln report --compare RUN_A RUN_B ... -o compare.html`). One colour per run:
//   - validation accuracy per epoch, loss per epoch (training solid, validation
//     dashed) and the learning rate, each run's curve overlaid on shared axes;
//   - a bar chart of each run's test accuracy and test macro F1;
//   - a table: model, parameters, batch size, epochs, optimizer, augmentation,
//     device, training time, peak memory, best-epoch validation accuracy and F1,
//     test accuracy, test macro F1, test macro AUC.
// The page is self-contained like report.html; its figures are also written as PNG
// files in "<page name without .html>_figures/" beside it.
#pragma once
#include <string>
#include <vector>

#include "report/charts.h"
#include "report/run_folder.h"

namespace kiln::report {

// The overlaid curves, one series per run (colour series_color(run index)); runs
// without validation contribute their training accuracy to `accuracy` instead.
struct ComparisonCurves {
  std::vector<Series> accuracy, loss, lr;
};
ComparisonCurves comparison_curves(const std::vector<RunRecord>& runs);

// The table, one row per run; the header is comparison_table_header().
std::vector<std::string> comparison_table_header();
std::vector<std::vector<std::string>> comparison_table(const std::vector<RunRecord>& runs);

// The page (figures rendered inside).
std::string compare_report_html(const std::vector<RunRecord>& runs, const std::string& generated);

// Writes the page to `path` and the figures as PNG beside it, atomically; returns
// the figure folder.
std::string write_compare_report(const std::string& path, const std::vector<RunRecord>& runs);

}  // namespace kiln::report
