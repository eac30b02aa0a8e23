#include "report/multilabel_report.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <utility>

#include "report/charts.h"
#include "report/html.h"
#include "report/predictions.h"
#include "report/run_folder.h"
#include "weights/atomic_file.h"

namespace kiln::report {
namespace {

// A line or a bar series with the chart's default colour (the aggregate's other
// fields keep their defaults).
Series series(std::string label, std::vector<double> x, std::vector<double> y, bool dashed = false) {
  Series s;
  s.label = std::move(label);
  s.x = std::move(x);
  s.y = std::move(y);
  s.dashed = dashed;
  return s;
}

BarSeries bars(std::string label, std::vector<double> values) {
  BarSeries b;
  b.label = std::move(label);
  b.values = std::move(values);
  return b;
}

constexpr Rgb kGrey{130, 130, 130};

// Per-epoch multi-label columns from epochs.jsonl (RunRecord's EpochRow holds the
// single-label ones).
struct MultilabelEpochs {
  std::vector<double> epoch, train_loss, val_loss, val_map, val_f1_micro, val_f1_macro;
};
MultilabelEpochs read_epochs(const std::string& run_dir) {
  MultilabelEpochs e;
  std::ifstream in(run_dir + "/epochs.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    e.epoch.push_back(j.value("epoch", 0.0));
    e.train_loss.push_back(j.value("train_loss", NAN));
    e.val_loss.push_back(j.value("val_loss", NAN));
    e.val_map.push_back(j.value("val_map", NAN));
    e.val_f1_micro.push_back(j.value("val_f1_micro", NAN));
    e.val_f1_macro.push_back(j.value("val_f1_macro", NAN));
  }
  return e;
}

std::string percent(double v) { return format_fixed(100 * v, 2) + "%"; }

}  // namespace

std::vector<std::pair<std::string, int>> label_set_captions(const int* truth, const int* predicted,
                                                            const double* probabilities,
                                                            const std::vector<std::string>& names) {
  // kind: 0 right (green), 1 missed (red), 2 extra (grey)
  std::vector<std::pair<std::string, int>> lines;
  for (size_t k = 0; k < names.size(); ++k) {
    if (!truth[k] && !predicted[k]) continue;
    const int kind = truth[k] && predicted[k] ? 0 : (truth[k] ? 1 : 2);
    const char* mark = kind == 0 ? "+ " : (kind == 1 ? "- " : "? ");
    lines.push_back({mark + names[k] + " " + format_fixed(probabilities[k], 2), kind});
  }
  if (lines.empty()) lines.push_back({"(no labels)", 0});
  return lines;
}

std::string write_multilabel_report(const MultilabelReportInputs& in) {
  const RunRecord run = read_run_folder(in.run_dir);
  const int64_t K = static_cast<int64_t>(in.class_names.size());
  const bool has_test = !in.test_targets.empty();
  const metrics::MultilabelReport test =
      has_test ? metrics::multilabel_report(in.test_probabilities, in.test_targets, K, in.rule, in.class_names)
               : metrics::MultilabelReport{};
  metrics::DecisionRule half;
  half.thresholds.assign(static_cast<size_t>(K), 0.5);
  metrics::DecisionRule top2;
  top2.top_k = std::min<int64_t>(2, K);

  std::vector<std::pair<std::string, Figure>> figures;  // (PNG stem, figure)
  std::string html = page_start("kiln multi-label run: " + run.name, in.run_dir,
                                {{"run", "Run"}, {"curves", "Training"}, {"classes", "Per class"},
                                 {"thresholds", "Thresholds"}, {"cooccurrence", "Co-occurrence"},
                                 {"examples", "Examples"}});
  // ---- run table
  std::vector<std::vector<std::string>> rows;
  const auto add = [&](const std::string& key, const std::string& value) { rows.push_back({key, value}); };
  if (run.info) {
    add("Model", run.info->model_description);
    add("Parameters", format_count(run.info->parameters) + " (" + format_count(run.info->trainable_parameters) +
                          " trainable)");
    add("Device", run.info->device + (run.info->device_name.empty() ? "" : " (" + run.info->device_name + ")"));
    add("Data", run.info->data_source + (run.info->test_data.empty() ? "" : ", test " + run.info->test_data));
    add("Images", "train " + format_count(run.info->train_images) + ", val " + format_count(run.info->val_images) +
                      ", test " + format_count(run.info->test_images));
  }
  if (run.config.contains("multi_label")) {
    const nlohmann::json& ml = run.config["multi_label"];
    std::string loss = ml.value("loss", std::string("bce"));
    if (loss == "focal") loss += " (gamma " + format_fixed(ml.value("gamma", 2.0), 2) + ", alpha " +
                                 format_fixed(ml.value("alpha", 0.25), 2) + ")";
    if (ml.contains("pos_weight")) loss += " with pos_weight";
    add("Loss", "sigmoid per class + " + loss);
  }
  add("Classes", std::to_string(K));
  add("Decision rule", in.rule.describe());
  add("Monitor", run.config.value("monitor", std::string("val_map")));
  add("Epochs", std::to_string(run.epochs.size()) + ", training " + format_seconds(run.training_seconds()));
  if (has_test) {
    add("Test micro-F1", format_fixed(test.micro.f1, 4));
    add("Test macro-F1", format_fixed(test.macro.f1, 4));
    add("Test samples-F1", format_fixed(test.samples.f1, 4));
    add("Test mAP", format_fixed(test.mean_average_precision, 4));
    add("Test subset accuracy", percent(test.subset_accuracy));
    add("Test hamming loss", format_fixed(test.hamming_loss, 4));
    add("Test ranking loss / coverage",
        format_fixed(test.label_ranking_loss, 4) + " / " + format_fixed(test.coverage_error, 2));
  }
  html += section_start("run", "Run") + table_html({"", ""}, rows, "kv");
  if (has_test) {
    std::vector<std::vector<std::string>> compared;
    for (const metrics::DecisionRule& rule : {in.rule, half, top2}) {
      const metrics::MultilabelReport r =
          metrics::multilabel_report(in.test_probabilities, in.test_targets, K, rule, in.class_names);
      compared.push_back({r.rule, format_fixed(r.micro.f1, 4), format_fixed(r.macro.f1, 4),
                          format_fixed(r.samples.f1, 4), percent(r.subset_accuracy)});
    }
    html += "<p>The test split under the saved rule and two fixed ones:</p>" +
            table_html({"decision rule", "micro-F1", "macro-F1", "samples-F1", "subset accuracy"}, compared,
                       "numbers");
  }
  html += section_end();

  // ---- curves
  const MultilabelEpochs e = read_epochs(in.run_dir);
  ChartOptions loss_options;
  loss_options.title = "Loss per epoch";
  loss_options.x_label = "epoch";
  loss_options.y_label = "loss (mean over images x classes)";
  Series val_loss = series("validation", e.epoch, e.val_loss, true);
  figures.push_back({"loss", line_chart({series("train", e.epoch, e.train_loss), val_loss}, loss_options)});
  ChartOptions metric_options;
  metric_options.title = "Validation mAP and F1 per epoch";
  metric_options.x_label = "epoch";
  metric_options.y_label = "score";
  metric_options.y_min = 0;
  metric_options.y_max = 1;
  figures.push_back({"validation_metrics",
                     line_chart({series("mAP", e.epoch, e.val_map), series("F1 micro", e.epoch, e.val_f1_micro),
                                 series("F1 macro", e.epoch, e.val_f1_macro)},
                                metric_options)});
  html += section_start("curves", "Training") + figure_html(figures[0].second, FigureEmbed::svg) +
          figure_html(figures[1].second, FigureEmbed::svg,
                      "Validation F1 at " + (in.rule.top_k > 0 ? in.rule.describe() : std::string("the fixed rule")) +
                          " during training; tuned thresholds are chosen after the last epoch.") +
          section_end();

  if (has_test) {
    // ---- per class: bars and precision-recall curves
    std::vector<double> f1s, aps;
    std::vector<Series> curves;
    for (int64_t k = 0; k < K; ++k) {
      f1s.push_back(test.per_class[k].f1);
      aps.push_back(std::isnan(test.per_class[k].average_precision) ? 0.0 : test.per_class[k].average_precision);
      std::vector<double> scores(test.count);
      std::vector<int> positives(test.count);
      for (int64_t n = 0; n < test.count; ++n) {
        scores[n] = in.test_probabilities[n * K + k];
        positives[n] = in.test_targets[n * K + k];
      }
      const metrics::PrecisionRecallCurve pr = metrics::precision_recall_curve(scores, positives);
      Series s = series(in.class_names[k] + " (AP " + format_fixed(test.per_class[k].average_precision, 2) + ")",
                        pr.recall, pr.precision);
      s.line_width = 1.5;
      curves.push_back(s);
    }
    BarChartOptions bar_options;
    bar_options.title = "Test F1 and average precision per class";
    bar_options.y_label = "score";
    bar_options.y_min = 0;
    bar_options.y_max = 1;
    bar_options.width = std::max(640, static_cast<int>(60 * K));
    figures.push_back({"per_class", bar_chart(in.class_names, {bars("F1", f1s), bars("AP", aps)},
                                              bar_options)});
    ChartOptions pr_options;
    pr_options.title = "Precision-recall curves (test)";
    pr_options.x_label = "recall";
    pr_options.y_label = "precision";
    pr_options.x_min = 0;
    pr_options.x_max = 1;
    pr_options.y_min = 0;
    pr_options.y_max = 1;
    pr_options.width = 760;
    pr_options.legend = LegendPosition::outside_right;
    figures.push_back({"precision_recall", line_chart(curves, pr_options)});
    html += section_start("classes", "Per class") + figure_html(figures[2].second, FigureEmbed::svg) +
            figure_html(figures[3].second, FigureEmbed::svg,
                        "One point per distinct score; AP is the sum of precision times each recall step.") +
            section_end();

    // ---- thresholds
    std::vector<std::vector<std::string>> threshold_rows;
    for (const metrics::MultilabelClassMetrics& m : test.per_class)
      threshold_rows.push_back({m.name, in.rule.top_k > 0 ? "top-k" : format_fixed(m.threshold, 2),
                                format_fixed(m.precision, 4), format_fixed(m.recall, 4), format_fixed(m.f1, 4),
                                std::to_string(m.support), format_fixed(m.average_precision, 4)});
    html += section_start("thresholds", "Thresholds") +
            table_html({"class", "threshold", "precision", "recall", "F1", "support", "AP"}, threshold_rows,
                       "numbers") +
            "<p>Saved in the checkpoint and in thresholds.json next to it.</p>" + section_end();
  }

  // ---- co-occurrence
  if (!in.train_cooccurrence.empty()) {
    HeatmapOptions heat;
    heat.title = "Label co-occurrence (training split)";
    heat.x_label = "label";
    heat.y_label = "label";
    figures.push_back({"cooccurrence", heatmap(in.train_cooccurrence, in.class_names, in.class_names,
                                               heat)});
    html += section_start("cooccurrence", "Co-occurrence") +
            figure_html(figures.back().second, FigureEmbed::svg,
                        "Cell (i, j): training images carrying both labels; the diagonal counts each label.") +
            section_end();
  }

  // ---- examples
  if (has_test && in.test_set && in.examples > 0) {
    const std::vector<int> predicted = metrics::decide(in.test_probabilities, K, in.rule);
    std::vector<CaptionedImage> examples;
    const int64_t N = test.count;
    const int64_t step = std::max<int64_t>(1, N / static_cast<int64_t>(in.examples));
    for (int64_t n = 0; n < N && examples.size() < in.examples; n += step) {
      CaptionedImage image;
      image.image = dataset_image(*in.test_set, n);
      for (const auto& [text, kind] : label_set_captions(in.test_targets.data() + n * K, predicted.data() + n * K,
                                                         in.test_probabilities.data() + n * K, in.class_names))
        image.captions.push_back({text, kind == 0 ? caption_green : (kind == 1 ? caption_red : kGrey)});
      examples.push_back(image);
    }
    html += section_start("examples", "Examples") +
            image_grid_html("Test images: green = predicted and true, red = missed, grey = predicted but not true",
                            examples, 96, false) +
            section_end();
  }
  html += page_end("kiln " + run.config.value("kiln", std::string()) + " | " + in.rule.describe());

  const std::string figure_dir = in.run_dir + "/figures";
  std::filesystem::create_directories(figure_dir);
  for (const auto& [name, figure] : figures) write_figure_png(figure_dir + "/" + name + ".png", figure);
  const std::string path = in.run_dir + "/report.html";
  write_file_atomically(path, [&](std::ostream& out) { out << html; });
  return path;
}

}  // namespace kiln::report
