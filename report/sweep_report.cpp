// Rendering the sweep report (report/sweep_report.h).
#include "report/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "engine/core/backend_info.h"
#include "report/html.h"
#include "report/run_folder.h"
#include "report/run_report.h"
#include "report/sweep_charts.h"
#include "weights/atomic_file.h"

namespace kiln::report {
namespace {

std::string path_in(const std::string& sweep_dir, const std::string& relative) {
  return (std::filesystem::path(sweep_dir) / relative).string();
}

std::string tile(const std::string& label, const std::string& value) {
  return "<div class=\"tile\"><div class=\"label\">" + html_escape(label) + "</div><div class=\"big\">" +
         html_escape(value) + "</div></div>";
}

// A number cell: shown with `decimals`, sorted by its full value (empty for NaN).
std::string number_cell(double value, int decimals) {
  if (!std::isfinite(value)) return "<td data-sort=\"\">n/a</td>";
  char sort[40];
  std::snprintf(sort, sizeof(sort), "%.17g", value);
  return "<td data-sort=\"" + std::string(sort) + "\">" + format_fixed(value, decimals) + "</td>";
}

// A correlation cell with a bar from the middle: right and blue for positive, left and
// red for negative, its length |r| of half the cell.
std::string correlation_cell(double r) {
  if (!std::isfinite(r)) return "<td data-sort=\"\">n/a</td>";
  const double percent = 50 * std::abs(r);
  char bar[200];
  std::snprintf(bar, sizeof(bar), "<span class=\"bar %s\" style=\"%s:50%%;width:%.1f%%\"></span>",
                r >= 0 ? "pos" : "neg", r >= 0 ? "left" : "right", percent);
  char sort[40];
  std::snprintf(sort, sizeof(sort), "%.17g", r);
  return "<td class=\"barcell\" data-sort=\"" + std::string(sort) + "\">" + bar + "<span class=\"value\">" +
         format_fixed(r, 3) + "</span></td>";
}

std::string importance_cell(double v) {
  char bar[120];
  std::snprintf(bar, sizeof(bar), "<span class=\"bar imp\" style=\"left:0;width:%.1f%%\"></span>", 100 * v);
  char sort[40];
  std::snprintf(sort, sizeof(sort), "%.17g", v);
  return "<td class=\"barcell\" data-sort=\"" + std::string(sort) + "\">" + bar + "<span class=\"value\">" +
         format_fixed(v, 3) + "</span></td>";
}

const char* kSweepStyle = R"(<style>
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th.sorted-up::after { content: " \25B2"; font-size: 10px; }
table.sortable th.sorted-down::after { content: " \25BC"; font-size: 10px; }
tr.best td { background: #e6f4e6 !important; font-weight: 600; }
td.status-stopped { color: #c45f00; } td.status-failed { color: #c62828; } td.status-finished { color: #1f5f99; }
td.barcell { position: relative; min-width: 130px; }
td.barcell .bar { position: absolute; top: 5px; bottom: 5px; opacity: .35; }
td.barcell .bar.pos { background: #1f77b4; } td.barcell .bar.neg { background: #d62728; } td.barcell .bar.imp { background: #2ca02c; }
td.barcell .value { position: relative; }
.legend-dot { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin: 0 4px 0 10px; }
</style>
)";

// Sorting any table.sortable by a click on a header: by data-sort (numbers when every
// value is a number, else text), ascending, then descending on a second click.
const char* kSortScript = R"(<script>
(function () {
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var headers = table.querySelectorAll('thead th');
    headers.forEach(function (th, column) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var up = !th.classList.contains('sorted-up');
        var key = function (row) {
          var cell = row.cells[column];
          return cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : cell.textContent;
        };
        var numeric = rows.every(function (r) { var k = key(r); return k === '' || !isNaN(Number(k)); });
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (numeric) {
            if (x === '') return 1; if (y === '') return -1;  // n/a last either way
            return up ? x - y : y - x;
          }
          return up ? x.localeCompare(y) : y.localeCompare(x);
        });
        rows.forEach(function (r) { body.appendChild(r); });
        headers.forEach(function (h) { h.classList.remove('sorted-up', 'sorted-down'); });
        th.classList.add(up ? 'sorted-up' : 'sorted-down');
      });
    });
  });
})();
</script>
)";

std::string status_counts(const SweepJournal& journal) {
  std::string out;
  for (const char* status : {"finished", "stopped", "failed", "running", "pending"}) {
    const auto n = std::count_if(journal.trials.begin(), journal.trials.end(),
                                 [&](const SweepTrial& t) { return t.status == status; });
    if (n > 0) out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + status;
  }
  return out.empty() ? "no trials yet" : out;
}

std::string trials_table(const SweepJournal& journal, const SweepAnalysis& analysis,
                         const std::vector<TrialRunSummary>& runs, const SweepTrial* best) {
  std::string out = "<table class=\"numbers sortable\" id=\"trials-table\">\n<thead><tr><th>#</th><th>trial</th><th>status</th>";
  for (const SweepAxis& axis : analysis.axes) out += "<th>" + html_escape(axis.name) + "</th>";
  out += "<th>epochs</th><th>" + html_escape(journal.metric_name) + "</th><th>val loss</th><th>train time</th>"
         "<th>created</th><th>note</th></tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < journal.trials.size(); ++i) {
    const SweepTrial& t = journal.trials[i];
    out += std::string("<tr") + (&t == best ? " class=\"best\"" : "") + ">";
    out += number_cell(t.order + 1, 0) + "<td>" + html_escape(t.name) + "</td><td class=\"status-" + t.status + "\">" +
           t.status + "</td>";
    for (const SweepAxis& axis : analysis.axes) {
      if (!t.params.contains(axis.name)) {
        out += "<td data-sort=\"\">-</td>";
        continue;
      }
      const nlohmann::json& v = t.params[axis.name];
      out += v.is_number() ? "<td data-sort=\"" + v.dump() + "\">" + html_escape(parameter_label(v)) + "</td>"
                           : "<td>" + html_escape(parameter_label(v)) + "</td>";
    }
    out += number_cell(t.epochs_done, 0) + number_cell(t.metric ? *t.metric : NAN, 4) + number_cell(runs[i].val_loss, 4);
    out += "<td data-sort=\"" + std::to_string(runs[i].seconds) + "\">" +
           (runs[i].found ? format_seconds(runs[i].seconds) : "-") + "</td>";
    out += "<td>" + html_escape(t.created) + "</td><td>";
    std::string note;
    if (t.status == "stopped" && !t.rungs.empty()) note = "stopped at epoch " + std::to_string(t.rungs.back().epoch);
    if (!t.error.empty()) note = t.error;
    out += html_escape(note) + "</td></tr>\n";
  }
  return out + "</tbody></table>\n";
}

std::string correlation_table(const SweepJournal& journal, const SweepAnalysis& a) {
  std::string out = "<table class=\"numbers sortable\" id=\"correlation-table\">\n<thead><tr><th>parameter</th><th>"
                    "correlation with " + html_escape(journal.metric_name) +
                    "</th><th>correlation with val loss</th><th>importance</th></tr></thead>\n<tbody>\n";
  for (size_t c = 0; c < a.columns.size(); ++c)
    out += "<tr><td>" + html_escape(a.columns[c]) + "</td>" + correlation_cell(a.pearson_metric[c]) +
           correlation_cell(a.pearson_loss[c]) + importance_cell(a.importance[c]) + "</tr>\n";
  return out + "</tbody></table>\n";
}

// N rows x (label, image, gradient): the N x 1 grid of guided backpropagation.
Figure guided_figure(const std::vector<GuidedNeuron>& neurons, const std::string& layer) {
  constexpr int kTile = 112, kGap = 8, kLabel = 150, kTitle = 30;
  Figure f(kLabel + 2 * kTile + 3 * kGap, kTitle + static_cast<int>(neurons.size()) * (kTile + kGap) + kGap);
  f.text({static_cast<double>(kGap), 20}, "Guided backpropagation, " + layer, {14, TextAnchor::start, 0, true});
  char peak[32];
  for (size_t i = 0; i < neurons.size(); ++i) {
    const GuidedNeuron& n = neurons[i];
    const double top = kTitle + static_cast<double>(i) * (kTile + kGap);
    std::snprintf(peak, sizeof(peak), "peak %.3g", n.peak);
    f.text({static_cast<double>(kGap), top + kTile / 2.0 - 4}, "channel " + std::to_string(n.channel),
           {12, TextAnchor::start, 0, true});
    f.text({static_cast<double>(kGap), top + kTile / 2.0 + 12}, peak, {11});
    const bool small = n.image.width <= 64;
    f.image(n.image, kLabel, top, kTile, kTile, small);
    f.image(n.gradient, kLabel + kTile + kGap, top, kTile, kTile, small);
  }
  return f;
}

std::string best_figures_html(const SweepBestFigures& b) {
  std::string html = "<p class=\"note\">Trial <b>" + html_escape(b.trial) + "</b>, checkpoint <code>" +
                     html_escape(b.run_dir + "/" + b.checkpoint) + "</code>, on the " + b.split + " split: " +
                     format_fixed(100 * b.accuracy, 2) + "% of " + format_count(b.images) + " images correct.";
  if (b.split == "validation")
    html += " The sweep has not been finished (<code>kiln sweep --finish</code>), so these are validation images, "
            "the ones the search was scored on; the test split stays untouched.";
  html += "</p>\n<h3>Predictions</h3>\n";
  if (!b.predictions.empty()) {
    ImageGridOptions g;
    g.columns = 10;
    g.thumbnail_size = 96;
    g.pixelated = b.predictions.front().image.width <= 48;
    g.title = "Predictions on " + b.split + " images, most confident first (green: correct, red: wrong)";
    html += figure_html(image_grid(b.predictions, g), FigureEmbed::png,
                        "30 images spread evenly over the ranking by the predicted class's probability, from the "
                        "most to the least confident.");
  }
  html += "<h3>First-layer filters</h3>\n";
  if (b.filters.width > 0) {
    Figure f(b.filters.width, b.filters.height);
    f.image(b.filters, 0, 0, b.filters.width, b.filters.height, true);
    html += figure_html(f, FigureEmbed::png,
                        "The " + std::to_string(b.filter_count) + " kernels of " + b.filter_layer +
                            ", each min-max scaled on its own (colour for RGB input, grey otherwise).");
  }
  html += "<h3>Guided backpropagation</h3>\n";
  if (!b.guided.empty())
    html += figure_html(guided_figure(b.guided, b.guided_layer), FigureEmbed::png,
                        std::to_string(b.guided.size()) + " neurons of " + b.guided_layer +
                            ", one row each (channel k at its strongest position): the " + b.split +
                            " image that excites it most, and beside it the guided-backpropagation gradient of that "
                            "activation with respect to the pixels (grey: zero).");
  return html;
}

}  // namespace

std::vector<TrialRunSummary> read_trial_runs(const std::string& sweep_dir, const SweepJournal& journal) {
  std::vector<TrialRunSummary> runs;
  for (const SweepTrial& t : journal.trials) {
    TrialRunSummary s;
    const std::string dir = path_in(sweep_dir, t.run_dir);
    if (std::filesystem::is_regular_file(std::filesystem::path(dir) / "config.json")) {
      try {
        const RunRecord run = read_run_folder(dir);
        s.found = true;
        s.seconds = run.training_seconds();
        if (const std::optional<size_t> e = run.best_epoch_index(); e && run.has_validation()) {
          s.val_loss = run.epochs[*e].val_loss;
          s.val_accuracy = run.epochs[*e].val_accuracy;
        }
      } catch (const std::exception&) {
        // A trial still writing (or killed mid-write): the report shows it without the folder's numbers.
      }
    }
    runs.push_back(s);
  }
  return runs;
}

const SweepTrial* best_trial(const SweepJournal& journal) {
  if (journal.best) return journal.trial(*journal.best);
  const SweepTrial* best = nullptr;
  for (const SweepTrial& t : journal.trials)
    if ((t.status == "finished" || t.status == "stopped") && t.metric && std::isfinite(*t.metric) &&
        (!best || (journal.maximize() ? *t.metric > *best->metric : *t.metric < *best->metric)))
      best = &t;
  return best;
}

// The trial's recorded command without the flags that only the sweep needs: its own
// --run-dir (pasting the command must not overwrite the trial's folder) and --quiet.
// Words are separated by spaces outside single quotes (sweep/runner.cpp's shell_quote).
std::string without_sweep_flags(const std::string& command) {
  std::vector<std::string> words(1);
  bool quoted = false, escaped = false;
  for (char c : command) {
    if (c == ' ' && !quoted && !escaped) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    words.back() += c;
    if (escaped) {
      escaped = false;
    } else if (c == '\\' && !quoted) {
      escaped = true;
    } else if (c == '\'') {
      quoted = !quoted;
    }
  }
  std::string kept;
  for (const std::string& word : words) {
    const std::string bare = !word.empty() && word[0] == '\'' ? word.substr(1) : word;
    if (bare.rfind("--run-dir=", 0) == 0 || word == "--quiet") continue;
    kept += (kept.empty() ? "" : " ") + word;
  }
  return kept;
}

std::string best_train_command(const SweepJournal& journal, const SweepTrial& trial) {
  if (!trial.command.empty()) return without_sweep_flags(trial.command);
  auto quote = [](const std::string& s) {
    return s.find_first_of(" '\"$`\\;&|<>()*?") == std::string::npos ? s : "'" + s + "'";
  };
  std::string command = "kiln train " + quote(journal.data.empty() ? "DATA" : journal.data);
  for (const auto& [name, value] : trial.params.items()) {
    if (value.is_boolean()) {
      command += " --" + name + "=" + (value.get<bool>() ? "true" : "false");
    } else {
      command += " --" + name + " " + quote(parameter_label(value));
    }
  }
  return command;
}

std::string sweep_report_html(const std::string& sweep_dir, const SweepJournal& journal,
                              const std::vector<TrialRunSummary>& runs, const SweepBestFigures* best_figures,
                              const std::string& generated) {
  std::vector<double> val_loss;
  for (const TrialRunSummary& r : runs) val_loss.push_back(r.val_loss);
  const SweepAnalysis analysis = analyze_sweep(journal, val_loss);
  const SweepTrial* best = best_trial(journal);

  std::string html = page_start("kiln sweep report: " + journal.name,
                                sweep_dir + "  ·  " + journal.method + " search  ·  " + journal.metric_name + " (" +
                                    journal.goal + ")  ·  generated " + generated,
                                {{"summary", "Summary"}, {"progress", "Progress"}, {"parallel", "Parallel coordinates"},
                                 {"importance", "Parameter importance"}, {"trials", "Trials"}, {"best", "Best run"},
                                 {"figures", "Best model's figures"}});
  html += kSweepStyle;
  html += section_start("summary", "Summary");
  html += "<div class=\"tiles\">" + tile("trials", std::to_string(journal.trials.size())) +
          tile("method", journal.method);
  if (best && best->metric) html += tile("best " + journal.metric_name, format_fixed(*best->metric, 4));
  if (best) html += tile("best trial", best->name);
  if (journal.finish) html += tile("test accuracy", format_fixed(100 * journal.finish->test_accuracy, 2) + "%");
  html += "</div>\n";
  html += table_html({}, {{"trials", status_counts(journal)},
                          {"swept parameters", std::to_string(analysis.axes.size())},
                          {"data", journal.data.empty() ? "(not recorded)" : journal.data},
                          {"split", journal.split.empty() ? "(not recorded)" : journal.split},
                          {"seed", std::to_string(journal.seed)}},
                     "kv");
  if (journal.finish)
    html += "<p class=\"note\">After the search, <code>kiln sweep --finish</code> evaluated trial " +
            html_escape(journal.trial(journal.finish->trial)->name) + " on the test split: accuracy " +
            format_fixed(journal.finish->test_accuracy, 4) + ", loss " + format_fixed(journal.finish->test_loss, 4) +
            " (run folder <code>" + html_escape(journal.finish->run_dir) + "</code>).</p>\n";
  html += section_end();

  html += section_start("progress", "Progress");
  html += "<p class=\"note\">Each trial's " + html_escape(journal.metric_name) +
          " (its best validated epoch) in the order the search created the trials; the green step line is the best "
          "so far. Hollow orange: stopped early at a rung (its metric is from that epoch); red cross: failed.</p>\n";
  html += figure_html(metric_order_chart(journal), FigureEmbed::svg) + section_end();

  html += section_start("parallel", "Parallel coordinates");
  if (analysis.trials.empty()) {
    html += "<p class=\"note\">No trial has a metric yet.</p>\n";
  } else {
    const ParallelLayout layout = parallel_layout(journal, analysis);
    html += "<p class=\"note\">One axis per swept parameter and one for " + html_escape(journal.metric_name) +
            "; each line is a trial, coloured by its metric (yellow: best, dark purple: worst). Categorical values "
            "are evenly spaced; parameters drawn from a log distribution have log axes.</p>\n";
    html += figure_html(parallel_coordinates(layout), FigureEmbed::svg, "Static picture (also in print).");
    html += "<h3>Interactive</h3>\n" + parallel_coordinates_interactive_html(layout);
  }
  html += section_end();

  html += section_start("importance", "Parameter importance");
  html += "<p class=\"note\">Over the " + std::to_string(analysis.trials.size()) +
          " trials with a metric. Correlation: Pearson's r between the parameter (log10 on log axes; a 0/1 column per "
          "categorical value) and the metric, or the validation loss at the best epoch. Importance: the impurity "
          "decrease the parameter brings in a random forest of 100 regression trees fitted to predict the metric "
          "from the parameters (normalised to sum to 1; seed " + std::to_string(journal.seed) +
          "). Both describe these trials only: with few trials, read them as hints. docs/sweep_report.md has the "
          "formulas.</p>\n";
  if (analysis.columns.empty()) {
    html += "<p class=\"note\">No parameter varies between the trials.</p>\n";
  } else {
    html += correlation_table(journal, analysis);
    std::vector<std::string> names;
    BarSeries importance{"importance", analysis.axis_importance, best_line_color};
    for (const SweepAxis& axis : analysis.axes) names.push_back(axis.name);
    BarChartOptions b;
    b.width = std::max(420, 120 + 70 * static_cast<int>(names.size()));
    b.height = 320;
    b.title = "Importance per parameter";
    b.y_label = "importance (sum over one-hot columns)";
    b.y_min = 0;
    b.show_values = true;
    b.legend = LegendPosition::none;
    html += figure_html(bar_chart(names, {importance}, b), FigureEmbed::svg);
  }
  html += section_end();

  html += section_start("trials", "Trials");
  html += "<p class=\"note\">Click a column header to sort (again to reverse). The best trial's row is green.</p>\n";
  html += trials_table(journal, analysis, runs, best) + section_end();

  html += section_start("best", "Best run");
  if (best) {
    html += "<p class=\"note\">Trial " + html_escape(best->name) + " (" + html_escape(journal.metric_name) + " " +
            (best->metric ? format_fixed(*best->metric, 4) : std::string("n/a")) + "), run folder <code>" +
            html_escape(path_in(sweep_dir, best->run_dir)) + "</code>. To train it again:</p>\n";
    html += "<pre id=\"best-command\">" + html_escape(best_train_command(journal, *best)) + "</pre>\n";
    html += "<button type=\"button\" onclick=\"navigator.clipboard &amp;&amp; navigator.clipboard.writeText("
            "document.getElementById('best-command').textContent)\">Copy the command</button>\n";
    std::string params;
    for (const auto& [name, value] : best->params.items()) params += name + ": " + parameter_label(value) + "\n";
    html += "<h3>Its parameters</h3>\n<pre>" + html_escape(params) + "</pre>\n";
  } else {
    html += "<p class=\"note\">No trial has a metric yet.</p>\n";
  }
  html += section_end();

  html += section_start("figures", "Best model's figures");
  if (best_figures) {
    html += best_figures_html(*best_figures);
  } else {
    html += "<p class=\"note\">This page was written without evaluating the best model. <code>kiln report " +
            html_escape(sweep_dir) + "</code> loads its checkpoint and adds the predictions, the first-layer "
            "filters and guided backpropagation.</p>\n";
  }
  html += section_end();
  html += parallel_coordinates_script();
  html += kSortScript;
  return html + page_end("kiln " + std::string(kVersion) + "  ·  " + journal.file);
}

std::string write_sweep_report(const std::string& sweep_dir, const SweepBestFigures* best) {
  const SweepJournal journal = read_sweep_journal(sweep_dir);
  const std::vector<TrialRunSummary> runs = read_trial_runs(sweep_dir, journal);
  const std::string html = sweep_report_html(sweep_dir, journal, runs, best, local_time_stamp());
  const std::string path = path_in(sweep_dir, "sweep.html");
  write_file_atomically(path, [&](std::ostream& out) { out << html; });
  return path;
}

}  // namespace kiln::report
