// Several runs side by side (report/compare_report.h).
#include "report/compare_report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "engine/core/backend_info.h"
#include "engine/core/check.h"
#include "report/html.h"
#include "report/run_report.h"
#include "weights/atomic_file.h"

namespace kiln::report {
namespace {

// A number of test_metrics.json at `key` (or key/sub), NaN when absent or null.
double test_number(const RunRecord& run, const char* key, const char* sub = nullptr) {
  if (!run.test_metrics || !run.test_metrics->contains(key)) return NAN;
  const nlohmann::json* j = &(*run.test_metrics)[key];
  if (sub) {
    if (!j->contains(sub)) return NAN;
    j = &(*j)[sub];
  }
  return j->is_number() ? j->get<double>() : NAN;
}

struct NamedFigure {
  std::string name, caption;
  Figure figure;
};

std::vector<NamedFigure> comparison_figures(const std::vector<RunRecord>& runs) {
  const ComparisonCurves curves = comparison_curves(runs);
  std::vector<NamedFigure> figures;
  ChartOptions o;
  o.width = 560;
  o.height = 360;
  o.x_label = "epoch";
  o.title = "Validation accuracy";
  o.y_label = "accuracy";
  figures.push_back({"accuracy", "Validation accuracy per epoch (training accuracy for runs without validation).",
                     line_chart(curves.accuracy, o)});
  o.title = "Loss";
  o.y_label = "cross-entropy loss";
  figures.push_back({"loss", "Training loss (solid) and validation loss (dashed), one colour per run.",
                     line_chart(curves.loss, o)});
  o.title = "Learning rate";
  o.y_label = "learning rate";
  o.log_y = true;
  figures.push_back({"lr", "The learning rate at the end of each epoch.", line_chart(curves.lr, o)});

  std::vector<std::string> names;
  BarSeries accuracy{"test accuracy", {}, {}}, f1{"test F1 (macro)", {}, {}};
  bool any_test = false;
  for (const RunRecord& run : runs) {
    names.push_back(run.name);
    accuracy.values.push_back(test_number(run, "accuracy"));
    f1.values.push_back(test_number(run, "macro_avg", "f1"));
    any_test = any_test || run.test_metrics.has_value();
  }
  if (any_test) {
    BarChartOptions b;
    b.width = std::max(480, 140 + 110 * static_cast<int>(runs.size()));
    b.height = 340;
    b.title = "Test metrics";
    b.y_label = "score";
    b.y_min = 0;
    b.y_max = 1;
    b.show_values = true;
    figures.push_back({"test_metrics", "Each run's best checkpoint on its test split.",
                       bar_chart(names, {accuracy, f1}, b)});
  }
  return figures;
}

}  // namespace

ComparisonCurves comparison_curves(const std::vector<RunRecord>& runs) {
  ComparisonCurves curves;
  for (size_t r = 0; r < runs.size(); ++r) {
    const RunRecord& run = runs[r];
    std::vector<double> epoch, accuracy, train_loss, val_loss, lr;
    for (const EpochRow& e : run.epochs) {
      epoch.push_back(e.epoch);
      accuracy.push_back(run.has_validation() ? e.val_accuracy : e.train_accuracy);
      train_loss.push_back(e.train_loss);
      val_loss.push_back(e.val_loss);
      lr.push_back(e.lr);
    }
    const Rgb color = series_color(r);
    const bool markers = run.epochs.size() <= 30;
    curves.accuracy.push_back(Series{run.name + (run.has_validation() ? "" : " (train)"), epoch, accuracy, false, color, markers});
    curves.loss.push_back(Series{run.name + " train", epoch, train_loss, false, color, markers});
    if (run.has_validation()) curves.loss.push_back(Series{run.name + " val", epoch, val_loss, true, color, markers});
    curves.lr.push_back(Series{run.name, epoch, lr, false, color, markers});
  }
  return curves;
}

std::vector<std::string> comparison_table_header() {
  return {"run", "model", "parameters", "batch", "epochs", "optimizer", "augment", "device", "training time",
          "peak memory", "val accuracy", "val F1", "test accuracy", "test F1", "test AUC"};
}

std::vector<std::vector<std::string>> comparison_table(const std::vector<RunRecord>& runs) {
  std::vector<std::vector<std::string>> rows;
  for (const RunRecord& run : runs) {
    const nlohmann::json& c = run.config;
    const std::optional<size_t> best = run.best_epoch_index();
    const bool validated = best && run.has_validation();
    std::string optimizer;
    if (c.contains("optimizer"))
      optimizer = c["optimizer"].value("name", std::string()) + " lr " + c["optimizer"]["lr"].dump();
    const std::string augment = c.value("augment", std::string());
    char memory[32];
    std::snprintf(memory, sizeof(memory), "%.0f MiB", run.peak_memory_mb());
    rows.push_back({run.name,
                    c.contains("model") ? c["model"].value("arch", std::string("?")) : "?",
                    run.info ? format_count(run.info->parameters) : "?",
                    c.contains("batch_size") ? c["batch_size"].dump() : "?",
                    std::to_string(run.epochs.size()),
                    optimizer,
                    augment.empty() ? "none" : augment,
                    run.info && !run.info->device_name.empty() ? run.info->device_name : c.value("device", std::string("?")),
                    format_seconds(run.training_seconds()),
                    memory,
                    validated ? format_fixed(run.epochs[*best].val_accuracy, 4) : "n/a",
                    validated ? format_fixed(run.epochs[*best].val_f1, 4) : "n/a",
                    format_fixed(test_number(run, "accuracy"), 4),
                    format_fixed(test_number(run, "macro_avg", "f1"), 4),
                    format_fixed(test_number(run, "macro_avg", "auc"), 4)});
  }
  return rows;
}

std::string compare_report_html(const std::vector<RunRecord>& runs, const std::string& generated) {
  KILN_CHECK(!runs.empty(), "report --compare: give at least one run folder");
  std::string names;
  for (const RunRecord& run : runs) names += (names.empty() ? "" : ", ") + run.name;
  std::string html = page_start("kiln run comparison", std::to_string(runs.size()) + " runs: " + names +
                                                           "  ·  generated " + generated,
                                {{"table", "Metrics"}, {"curves", "Curves"}, {"runs", "Run folders"}});
  html += section_start("table", "Metrics");
  html += "<p class=\"note\">Validation accuracy and F1 at each run's best epoch (the epoch of best.safetensors); "
          "test metrics of that checkpoint from test_metrics.json; training time summed over the epochs' "
          "training passes.</p>\n";
  html += table_html(comparison_table_header(), comparison_table(runs), "numbers") + section_end();
  html += section_start("curves", "Curves");
  html += "<div class=\"figures\">";
  for (const NamedFigure& f : comparison_figures(runs)) html += figure_html(f.figure, FigureEmbed::svg, f.caption);
  html += "</div>\n" + section_end();
  html += section_start("runs", "Run folders");
  std::vector<std::vector<std::string>> rows;
  for (const RunRecord& run : runs)
    rows.push_back({run.name, run.dir, run.info ? run.info->command : "(not recorded)"});
  html += table_html({"run", "folder", "command"}, rows) + section_end();
  return html + page_end("kiln " + std::string(kVersion) + "  ·  kiln report --compare");
}

std::string write_compare_report(const std::string& path, const std::vector<RunRecord>& runs) {
  const std::filesystem::path page(path);
  const std::string figure_dir = (page.parent_path() / (page.stem().string() + "_figures")).string();
  std::filesystem::create_directories(figure_dir);
  for (const NamedFigure& f : comparison_figures(runs)) write_figure_png(figure_dir + "/" + f.name + ".png", f.figure);
  const std::string html = compare_report_html(runs, local_time_stamp());
  write_file_atomically(path, [&](std::ostream& out) { out << html; });
  return figure_dir;
}

}  // namespace kiln::report
