// The sweep journal reader, the sweep analysis (axes, one-hot columns) and the sweep
// report page (report/sweep_journal.h, sweep_analysis.h, sweep_report.h).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "report/sweep_analysis.h"
#include "report/sweep_charts.h"
#include "report/sweep_fixture.h"
#include "report/sweep_journal.h"
#include "report/sweep_report.h"

using namespace kiln;
using nlohmann::json;

namespace {

std::string parse_error(const json& journal) {
  try {
    report::parse_sweep_journal(journal, "sweeps/x/journal.json");
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("sweep journal: read into structs, every field of the contract") {
  const report::SweepJournal j = report::parse_sweep_journal(test::sample_sweep_journal(), "journal.json");
  CHECK(j.name == "tiny");
  CHECK(j.method == "halving");
  CHECK(j.maximize());
  CHECK(j.metric_name == "val_accuracy");
  REQUIRE(j.parameters.size() == 4);
  CHECK(j.parameters[0].name == "activation");  // the journal's key order (nlohmann sorts keys)
  const report::SweepParameter& lr = j.parameters[3];
  CHECK(lr.name == "lr");
  CHECK(lr.log_scale());
  CHECK(lr.swept());
  CHECK_FALSE(j.parameters[1].swept());  // epochs: constant
  REQUIRE(j.trials.size() == 6);
  CHECK(j.trials[2].status == "stopped");
  REQUIRE(j.trials[2].rungs.size() == 1);
  CHECK_FALSE(j.trials[2].rungs[0].kept);
  CHECK_FALSE(j.trials[4].metric.has_value());
  CHECK(j.trials[4].error == "loss became NaN at epoch 1");
  CHECK(j.best == 3);
  CHECK_FALSE(j.finish.has_value());
  CHECK(report::best_trial(j)->name == "trial-003");
  // Without "best" the report picks it: the best metric of the finished and stopped trials.
  json without_best = test::sample_sweep_journal();
  without_best["best"] = nullptr;
  CHECK(report::best_trial(report::parse_sweep_journal(without_best, "journal.json"))->name == "trial-003");
  without_best["metric"]["goal"] = "minimize";
  CHECK(report::best_trial(report::parse_sweep_journal(without_best, "journal.json"))->name == "trial-002");
}

TEST_CASE("sweep journal: errors name the file and the field") {
  json j = test::sample_sweep_journal();
  SUBCASE("format") {
    j["format"] = "kiln-sweep-journal/9";
    CHECK(parse_error(j) == "sweeps/x/journal.json: format: expected 'kiln-sweep-journal/1', got "
                            "'kiln-sweep-journal/9' (a journal written by another kiln version?)");
  }
  SUBCASE("a trial's status") {
    j["trials"][1]["status"] = "done";
    CHECK(parse_error(j) == "sweeps/x/journal.json: trials[1].status: expected one of pending, running, finished, "
                            "stopped, failed, got 'done'");
  }
  SUBCASE("a metric that is not a number") {
    j["trials"][0]["metric"] = "high";
    CHECK(parse_error(j) == "sweeps/x/journal.json: trials[0].metric: expected a number, got \"high\"");
  }
  SUBCASE("a rung") {
    j["trials"][2]["rungs"][0].erase("epoch");
    CHECK(parse_error(j) == "sweeps/x/journal.json: trials[2].rungs[0].epoch is missing");
  }
  SUBCASE("trials missing") {
    j.erase("trials");
    CHECK(parse_error(j) == "sweeps/x/journal.json: trials is missing");
  }
  SUBCASE("best names no trial") {
    j["best"] = 17;
    CHECK(parse_error(j) == "sweeps/x/journal.json: best: no trial has id 17");
  }
  SUBCASE("a duplicate id") {
    j["trials"][5]["id"] = 0;
    CHECK(parse_error(j) == "sweeps/x/journal.json: trials[5].id: 0 is used by an earlier trial too");
  }
  SUBCASE("a parameter's kind") {
    j["parameters"]["lr"]["kind"] = "float";
    CHECK(parse_error(j) == "sweeps/x/journal.json: parameters.lr.kind: expected one of categorical, continuous, "
                            "integer, constant, got 'float'");
  }
  SUBCASE("a range without max") {
    j["parameters"]["lr"].erase("max");
    CHECK(parse_error(j) == "sweeps/x/journal.json: parameters.lr: a continuous parameter needs min and max");
  }
  SUBCASE("finish without its numbers") {
    j["finish"] = {{"trial", 3}, {"run_dir", "finish"}};
    CHECK(parse_error(j) == "sweeps/x/journal.json: finish.test_accuracy is missing");
  }
  SUBCASE("a finish block is read, its checkpoint optional") {
    j["finish"] = {{"trial", 3}, {"test_accuracy", 0.8}, {"test_loss", 0.5}, {"run_dir", "trial-003"}};
    CHECK(report::parse_sweep_journal(j, "journal.json").finish->checkpoint.empty());
    j["finish"]["checkpoint"] = "sweeps/x/trial-003/last.safetensors";
    const report::SweepJournal read = report::parse_sweep_journal(j, "journal.json");
    REQUIRE(read.finish.has_value());
    CHECK(read.finish->trial == 3);
    CHECK(read.finish->test_accuracy == 0.8);
    CHECK(read.finish->checkpoint == "sweeps/x/trial-003/last.safetensors");
    j["finish"]["trial"] = 9;
    CHECK(parse_error(j) == "sweeps/x/journal.json: finish.trial: no trial has id 9");
  }
  SUBCASE("not an object") {
    CHECK(parse_error(json::array()) == "sweeps/x/journal.json: the journal: expected a JSON object, got array");
  }
}

TEST_CASE("sweep journal: a missing or broken file is named") {
  test::TempDir dir("sweep-journal");
  CHECK_FALSE(report::is_sweep_folder(dir.str()));
  CHECK_THROWS_WITH_AS(report::read_sweep_journal(dir.str()),
                       doctest::Contains("journal.json: cannot open the sweep journal"), Error);
  test::write_text(dir / "journal.json", "{\"format\": ");
  CHECK(report::is_sweep_folder(dir.str()));
  CHECK_THROWS_WITH_AS(report::read_sweep_journal(dir.str()), doctest::Contains("journal.json: not valid JSON"), Error);
}

TEST_CASE("sweep analysis: swept parameters become axes, categoricals one-hot, numeric categoricals numeric, log lr") {
  const report::SweepJournal j = report::parse_sweep_journal(test::sample_sweep_journal(), "journal.json");
  std::vector<double> loss(j.trials.size(), NAN);
  loss[0] = 0.9, loss[1] = 0.7, loss[2] = 1.3, loss[3] = 0.5, loss[5] = 0.6;
  const report::SweepAnalysis a = report::analyze_sweep(j, loss);
  REQUIRE(a.axes.size() == 3);  // epochs is constant
  CHECK(a.axes[0].name == "activation");
  CHECK(a.axes[0].categorical);
  CHECK(a.axes[0].categories == std::vector<std::string>{"relu", "gelu", "silu"});
  CHECK(a.axes[1].name == "filters");
  CHECK_FALSE(a.axes[1].categorical);
  CHECK_FALSE(a.axes[1].log);  // 16..64 spans less than a factor of 100
  CHECK(a.axes[2].log);
  CHECK(a.columns == std::vector<std::string>{"activation=relu", "activation=gelu", "activation=silu", "filters",
                                              "log10(lr)"});
  CHECK(a.trials == std::vector<size_t>{0, 1, 2, 3, 5});  // the failed trial has no metric
  REQUIRE(a.design.size() == 5);
  CHECK(a.design[3] == std::vector<double>{0, 0, 1, 32, -2});  // trial-003: silu, 32, lr 0.01
  CHECK(a.pearson_metric.size() == 5);
  CHECK(std::isfinite(a.pearson_loss[4]));
  double total = 0;
  for (double v : a.importance) total += v;
  CHECK(total == doctest::Approx(1.0));
  CHECK(a.axis_importance[0] == doctest::Approx(a.importance[0] + a.importance[1] + a.importance[2]));
}

TEST_CASE("sweep report: sweep.html has every section, both parallel-coordinate pictures and the sortable table") {
  test::TempDir dir("sweep-report");
  test::write_sample_sweep(dir.str());
  const std::string path = report::write_sweep_report(dir.str());
  CHECK(path == dir / "sweep.html");
  const std::string html = read_file(path);
  for (const char* part :
       {"<section id=\"summary\"", "<section id=\"progress\"", "<section id=\"parallel\"", "<section id=\"importance\"",
        "<section id=\"trials\"", "<section id=\"best\"", "<section id=\"figures\"", "class=\"pc-interactive\"",
        "class=\"pc-brush-area\"", "table class=\"numbers sortable\" id=\"trials-table\"", "id=\"correlation-table\"",
        "activation=gelu", "log10(lr)", "<tr class=\"best\"><td data-sort=\"4\">4</td><td>trial-003</td>",
        "kiln train data/flowers --lr 0.010000 --activation silu", "stopped at epoch 1", "loss became NaN at epoch 1",
        "kiln report " /* how to add the figures */, "data-figures-loaded"})
    CHECK_MESSAGE(html.find(part) != std::string::npos, "sweep.html lacks: ", part);
  CHECK(html.find("src=\"http") == std::string::npos);  // nothing from a network
}

TEST_CASE("sweep report: the best command is built from the parameters when the journal has none") {
  json j = test::sample_sweep_journal();
  j["trials"][3].erase("command");
  j["trials"][3]["params"]["batch-norm"] = true;
  const report::SweepJournal journal = report::parse_sweep_journal(j, "journal.json");
  CHECK(report::best_train_command(journal, *journal.trial(3)) ==
        "kiln train data/flowers --activation silu --batch-norm=true --epochs 3 --filters 32 --lr 0.01");
}

TEST_CASE("sweep charts: metric by creation order marks finished, stopped and failed trials and steps the best") {
  const report::SweepJournal j = report::parse_sweep_journal(test::sample_sweep_journal(), "journal.json");
  const report::Figure f = report::metric_order_chart(j);
  int filled = 0, hollow = 0, failed_strokes = 0;
  std::vector<report::Point> best_line;
  auto same = [](report::Rgb a, report::Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; };
  for (const report::Primitive& p : f.primitives()) {
    if (const auto* c = std::get_if<report::CirclePrimitive>(&p)) {
      if (c->fill && same(*c->fill, report::finished_color)) ++filled;
      if (c->stroke && same(*c->stroke, report::stopped_color)) ++hollow;
    } else if (const auto* l = std::get_if<report::PolylinePrimitive>(&p)) {
      if (same(l->style.color, report::failed_color)) ++failed_strokes;
      if (same(l->style.color, report::best_line_color) && l->points.size() > best_line.size()) best_line = l->points;
    }
  }
  CHECK(filled == 4);          // trials 0, 1, 3, 5
  CHECK(hollow == 1);          // trial 2, stopped at its rung
  CHECK(failed_strokes == 2);  // one cross for trial 4
  // The best so far: 0.71 (trial-000), 0.78 (trial-001), 0.83 (trial-003), kept to the last: it rises twice.
  REQUIRE(best_line.size() >= 2);
  int rises = 0;
  for (size_t i = 1; i < best_line.size(); ++i) rises += best_line[i].y < best_line[i - 1].y - 1e-9;
  CHECK(rises == 2);
  CHECK(best_line.back().x > best_line.front().x);
}

TEST_CASE("sweep charts: parallel coordinates place categories evenly, lr on a log axis, the best trial yellow") {
  const report::SweepJournal j = report::parse_sweep_journal(test::sample_sweep_journal(), "journal.json");
  const report::SweepAnalysis a = report::analyze_sweep(j, std::vector<double>(j.trials.size(), NAN));
  const report::ParallelLayout l = report::parallel_layout(j, a, 900, 420);
  REQUIRE(l.axes.size() == 4);  // activation, filters, lr, val_accuracy
  CHECK(l.axes[2].title == "lr (log)");
  // filters was a list (16, 32, 64): a tick at each value, 16 at the bottom and 64 at the top.
  REQUIRE(l.axes[1].ticks.size() == 3);
  CHECK(l.axes[1].ticks[0] == std::pair<double, std::string>{l.bottom, "16"});
  CHECK(l.axes[1].ticks[2] == std::pair<double, std::string>{l.top, "64"});
  CHECK(l.axes[3].title == "val_accuracy");
  REQUIRE(l.lines.size() == 5);
  const double span = l.bottom - l.top;
  // trial-003 (row 3): silu, the third of three categories, at (2 + 0.5) / 3 of the height.
  CHECK(l.lines[3][0] == doctest::Approx(l.bottom - 2.5 / 3 * span));
  // lr 0.001, 0.03, 0.0003, 0.01, 0.003 (rows 0, 1, 2, 3, 5): on a log axis, 0.03 and 0.003 are
  // as far apart as 0.01 and 0.001.
  CHECK(l.lines[4][2] - l.lines[1][2] == doctest::Approx(l.lines[0][2] - l.lines[3][2]));
  // Colour: the best trial (0.83, row 3) is 1, the worst (0.52, row 2) 0; higher metric higher up.
  CHECK(l.color_value[3] == 1.0);
  CHECK(l.color_value[2] == 0.0);
  CHECK(l.lines[3][3] < l.lines[0][3]);
  // With the goal minimize (a loss), the lowest metric is the best end of the colours.
  report::SweepJournal minimize = j;
  minimize.goal = "minimize";
  const report::ParallelLayout m = report::parallel_layout(minimize, a, 900, 420);
  CHECK(m.color_value[2] == 1.0);
  CHECK(m.color_value[3] == 0.0);
  const std::string html = report::parallel_coordinates_interactive_html(l);
  CHECK(html.find("<title>trial-003</title>") != std::string::npos);
  size_t lines = 0;
  for (size_t at = html.find("class=\"pc-line\""); at != std::string::npos; at = html.find("class=\"pc-line\"", at + 1))
    ++lines;
  CHECK(lines == 5);
}
