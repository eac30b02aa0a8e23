// Rendering a run report (report/run_report.h): the figures, the page, the files.
#include "report/html.h"
#include "report/run_report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "engine/core/backend_info.h"
#include "engine/core/json_parse.h"
#include "report/image.h"
#include "weights/atomic_file.h"

namespace kiln::report {
namespace {

constexpr int kThumbnailSize = 96;  // pixels, the longer side of a prediction thumbnail

// Thumbnails of small images (Fashion-MNIST's 32 px) are enlarged without blurring.
bool small_images(const std::vector<CaptionedImage>& images) {
  return !images.empty() && images.front().image.width <= 48;
}

const ReportFigure* find_figure(const std::vector<ReportFigure>& figures, const std::string& name) {
  for (const ReportFigure& f : figures)
    if (f.name == name) return &f;
  return nullptr;
}

std::string figure_block(const std::vector<ReportFigure>& figures, const std::string& name) {
  const ReportFigure* f = find_figure(figures, name);
  return f ? figure_html(f->figure, FigureEmbed::svg, f->caption) : "";
}

// The per-class table with its two average rows set apart.
std::string per_class_table(const metrics::ClassificationReport& t) {
  std::string out = "<table class=\"numbers\">\n<thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
                    "<th>support</th><th>AUC</th></tr></thead>\n<tbody>\n";
  auto row = [&](const std::string& name, double p, double r, double f1, int64_t support, double auc,
                 const char* css) {
    out += std::string("<tr") + css + "><td>" + html_escape(name) + "</td><td>" + format_fixed(p, 4) + "</td><td>" +
           format_fixed(r, 4) + "</td><td>" + format_fixed(f1, 4) + "</td><td>" + format_count(support) + "</td><td>" +
           format_fixed(auc, 4) + "</td></tr>\n";
  };
  for (size_t k = 0; k < t.per_class.size(); ++k) {
    const metrics::ClassMetrics& m = t.per_class[k];
    row(m.name, m.precision, m.recall, m.f1, m.support, t.roc[k].auc, "");
  }
  row("macro average", t.macro.precision, t.macro.recall, t.macro.f1, t.count, t.macro_auc, " class=\"average\"");
  row("weighted average", t.weighted.precision, t.weighted.recall, t.weighted.f1, t.count, t.weighted_auc,
      " class=\"average\"");
  return out + "</tbody></table>\n";
}

std::string tile(const std::string& label, const std::string& value) {
  return "<div class=\"tile\"><div class=\"label\">" + html_escape(label) + "</div><div class=\"big\">" +
         html_escape(value) + "</div></div>";
}

}  // namespace

std::vector<ReportFigure> run_report_figures(const RunReportInputs& inputs) {
  std::vector<ReportFigure> figures;
  const TrainingCurves curves = training_curves(inputs.run);
  if (!inputs.run.epochs.empty()) {
    ChartOptions o;
    o.width = 390;
    o.height = 300;
    o.x_label = "epoch";
    o.title = "Loss";
    o.y_label = "cross-entropy loss";
    figures.push_back({"loss", "Mean cross-entropy per epoch: training batches (solid), validation set (dashed).",
                       line_chart(curves.loss, o)});
    o.title = "Accuracy";
    o.y_label = "accuracy";
    o.y_max = 1.0;
    figures.push_back({"accuracy", "Accuracy per epoch; validation F1 is the macro average over classes.",
                       line_chart(curves.accuracy, o)});
    o.y_max.reset();
    o.title = "Learning rate";
    o.y_label = "learning rate";
    o.log_y = true;
    o.legend = LegendPosition::none;
    figures.push_back({"lr", "The learning rate at the end of each epoch (the head's, with per-stage rates).",
                       line_chart(curves.lr, o)});
    if (!curves.image_size.empty()) {
      o.title = "Image size";
      o.y_label = "pixels on a side";
      o.log_y = false;
      o.y_min = 0;
      figures.push_back({"image_size",
                         "--progressive: the side of the training images in each epoch (validation runs at the "
                         "same size; the final test at the last size).",
                         line_chart(curves.image_size, o)});
    }
  }
  if (inputs.test) {
    const metrics::ClassificationReport& t = *inputs.test;
    HeatmapOptions h;
    h.title = "Confusion matrix (test)";
    figures.push_back({"confusion_matrix",
                       "Rows: true class, columns: predicted class; each cell counts test images.",
                       confusion_matrix_chart(t.confusion_matrix, t.class_names, h)});
    ChartOptions r;
    r.width = 560;
    r.height = 440;
    figures.push_back({"roc", "One-vs-rest ROC curve of each class from its softmax probability; AUC by the trapezoid rule.",
                       roc_chart(roc_series(t), r)});
    BarChartOptions b;
    b.width = std::max(560, 90 + 60 * static_cast<int>(t.num_classes()));
    b.height = 340;
    b.title = "Per-class precision, recall and F1 (test)";
    b.y_label = "score";
    b.y_min = 0;
    b.y_max = 1;
    std::vector<BarSeries> bars{{"precision", {}, {}}, {"recall", {}, {}}, {"F1", {}, {}}};
    for (const metrics::ClassMetrics& m : t.per_class) {
      bars[0].values.push_back(m.precision);
      bars[1].values.push_back(m.recall);
      bars[2].values.push_back(m.f1);
    }
    figures.push_back({"per_class", "", bar_chart(t.class_names, bars, b)});
  }
  for (const auto& [name, images, title] :
       {std::tuple{"correct_predictions", &inputs.correct, "Correct test predictions"},
        std::tuple{"wrong_predictions", &inputs.wrong, "Wrong test predictions (most confident first)"}}) {
    if (images->empty()) continue;
    ImageGridOptions g;
    g.columns = 10;
    g.thumbnail_size = kThumbnailSize;
    g.title = title;
    g.pixelated = small_images(*images);
    figures.push_back({name, "", image_grid(*images, g)});
  }
  return figures;
}

std::string run_report_html(const RunReportInputs& inputs, const std::vector<ReportFigure>& figures) {
  const RunRecord& run = inputs.run;
  const std::optional<RunInfo>& info = run.info;
  const std::string version = info && !info->kiln_version.empty() ? info->kiln_version : kVersion;
  const std::string device = info ? (info->device_name.empty() ? info->device : info->device_name)
                                  : run.config.value("device", std::string("unknown device"));
  std::vector<std::pair<std::string, std::string>> nav{{"summary", "Summary"}, {"curves", "Training curves"}};
  if (inputs.test) {
    nav.push_back({"confusion", "Confusion matrix"});
    nav.push_back({"roc", "ROC"});
    nav.push_back({"per-class", "Per-class metrics"});
    nav.push_back({"predictions", "Predictions"});
  }
  if (inputs.hardest) nav.push_back({"hardest", "Hardest images"});
  if (inputs.rules) nav.push_back({"rules", "Rules"});
  nav.push_back({"reproduce", "Reproduce"});

  std::string html = page_start("kiln run report: " + run.name,
                                run.dir + "  ·  " + run.config.value("model", nlohmann::json::object()).value("arch", "") +
                                    "  ·  " + device + "  ·  generated " + inputs.generated,
                                nav);
  html += section_start("summary", "Summary");
  html += "<div class=\"tiles\">";
  if (inputs.test) {
    html += tile("test accuracy", format_fixed(100 * inputs.test->accuracy, 2) + "%");
    html += tile("test F1 (macro)", format_fixed(inputs.test->macro.f1, 4));
    html += tile("test AUC (macro)", format_fixed(inputs.test->macro_auc, 4));
  }
  if (const std::optional<size_t> best = run.best_epoch_index(); best && run.has_validation())
    html += tile("validation accuracy", format_fixed(100 * run.epochs[*best].val_accuracy, 2) + "%");
  html += tile("training time", format_seconds(run.training_seconds()));
  html += "</div>\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, value] : run_table(inputs)) rows.push_back({name, value});
  html += table_html({}, rows, "kv") + section_end();

  html += section_start("curves", "Training curves");
  if (run.epochs.empty()) html += "<p class=\"note\">No epoch was logged (an --epochs 0 run evaluates the model as built).</p>\n";
  html += "<div class=\"figures\">" + figure_block(figures, "loss") + figure_block(figures, "accuracy") +
          figure_block(figures, "lr") + figure_block(figures, "image_size") + "</div>\n" + section_end();

  if (inputs.test) {
    html += section_start("confusion", "Confusion matrix");
    html += "<p class=\"note\">The " + inputs.checkpoint + " checkpoint on the " + format_count(inputs.test->count) +
            " test images. The diagonal holds the correct predictions.</p>\n";
    html += figure_block(figures, "confusion_matrix") + section_end();
    html += section_start("roc", "ROC curves");
    html += "<p class=\"note\">For each class, images of that class are positives and all others negatives; "
            "sweeping a threshold over the class's probability traces (false positive rate, true positive rate). "
            "Macro AUC " + format_fixed(inputs.test->macro_auc, 4) + ".</p>\n";
    html += figure_block(figures, "roc") + section_end();
    html += section_start("per-class", "Per-class metrics");
    html += per_class_table(*inputs.test) + figure_block(figures, "per_class") + section_end();
    html += section_start("predictions", "Test predictions");
    html += "<p class=\"note\">Each image shows its true class and the predicted class with the probability the model "
            "gave it (green: correct, red: wrong). Correct ones are taken class by class; wrong ones are the most "
            "confident mistakes.</p>\n";
    // As HTML (browser fonts, one <img> per thumbnail); figures/*.png hold the same grids as pictures.
    if (!inputs.correct.empty())
      html += image_grid_html("Correct test predictions", inputs.correct, kThumbnailSize, small_images(inputs.correct));
    if (!inputs.wrong.empty())
      html += image_grid_html("Wrong test predictions (most confident first)", inputs.wrong, kThumbnailSize,
                              small_images(inputs.wrong));
    else if (!inputs.correct.empty())
      html += "<p class=\"note\">No test image was misclassified.</p>\n";
    html += section_end();
  }

  if (inputs.hardest) {
    const nlohmann::json& h = *inputs.hardest;
    const nlohmann::json about = h.value("about", nlohmann::json::object());
    html += section_start("hardest", "Hardest images");
    html += "<p class=\"note\">The " + std::to_string(h["examples"].size()) + " images of the " +
            html_escape(about.value("subset", std::string("?"))) + " subset (" +
            std::to_string(json_int64_or(about, "images", 0, "hardest.json")) + " images) with the highest cross-entropy under " +
            html_escape(about.value("checkpoint", std::string("?"))) +
            ", hardest first (<code>kiln eval --hardest</code>; the full list is hardest.csv). A confident mistake "
            "and a hesitant correct answer both score high: look for wrong labels, look-alike classes and objects "
            "too small at the training size.</p>\n";
    if (!inputs.hardest_png.empty())
      html += "<img alt=\"hardest images\" style=\"max-width:100%\" src=\"data:image/png;base64," +
              base64(inputs.hardest_png) + "\">\n";
    std::vector<std::vector<std::string>> rows;
    for (const nlohmann::json& c : h["classes"])
      rows.push_back({c.value("class", std::string()), std::to_string(json_int64_or(c, "hardest", 0, "hardest.json")) + " / " +
                                                           std::to_string(json_int64_or(c, "images", 0, "hardest.json")),
                      format_fixed(c.value("mean_loss", 0.0), 3)});
    html += table_html({"class", "hardest / images", "mean loss of its hardest"}, rows) + section_end();
  }
  if (inputs.rules) {
    const nlohmann::json& r = *inputs.rules;
    html += section_start("rules", "Rules");
    html += "<p class=\"note\">The benchmark rules <code>" + html_escape(r.value("rules", std::string())) +
            "</code> checked on this run's model, config.json and split.json (<code>kiln check-rules</code>, or "
            "<code>kiln train --rules</code> before the first epoch): " +
            (r.value("holds", false) ? std::string("no violation.") : std::string("violated.")) + "</p>\n";
    std::vector<std::vector<std::string>> rows;
    for (const nlohmann::json& v : r.value("verdicts", nlohmann::json::array()))
      rows.push_back({v.value("rule", std::string()), v.value("verdict", std::string())});
    html += table_html({"rule", "verdict"}, rows);
    rows.clear();
    for (const nlohmann::json& v : r.value("violations", nlohmann::json::array()))
      rows.push_back({v.value("rule", std::string()), v.value("where", std::string()), v.value("detail", std::string())});
    if (!rows.empty()) html += table_html({"violated rule", "where", "what"}, rows);
    html += section_end();
  }

  html += section_start("reproduce", "Reproduce");
  if (info && !info->command.empty()) {
    html += "<h3>Command</h3>\n<pre>" + html_escape(info->command) + "</pre>\n";
    for (const std::string& resume : info->resume_commands)
      html += "<p class=\"note\">Resumed with:</p><pre>" + html_escape(resume) + "</pre>\n";
  } else {
    html += "<p class=\"note\">The command line was not recorded (no run_info.json in the run folder).</p>\n";
  }
  const bool has_split = std::filesystem::exists(run.dir + "/split.json");  // kiln demo's run has none
  html += "<p class=\"note\">" +
          (has_split ? "The same split is reused with <code>--split-file " + html_escape(run.dir) + "/split.json</code>; "
                     : std::string()) +
          "<code>kiln report " + html_escape(run.dir) + "</code> regenerates this page.</p>\n";
  html += "<h3>config.json</h3>\n<pre>" + html_escape(run.config.dump(2)) + "</pre>\n";
  html += table_html({}, {{"kiln version", version}, {"device", device}, {"report generated", inputs.generated}}, "kv");
  html += section_end();
  return html + page_end("kiln " + version + "  ·  " + device + "  ·  " + run.dir);
}

std::string write_run_report(const std::string& dir, const RunReportInputs& inputs) {
  const std::vector<ReportFigure> figures = run_report_figures(inputs);
  std::filesystem::create_directories(dir + "/figures");
  for (const ReportFigure& f : figures) write_figure_png(dir + "/figures/" + f.name + ".png", f.figure);
  const std::string path = dir + "/report.html";
  const std::string html = run_report_html(inputs, figures);
  write_file_atomically(path, [&](std::ostream& out) { out << html; });
  return path;
}

}  // namespace kiln::report
