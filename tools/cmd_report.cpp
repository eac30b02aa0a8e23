// `kiln report`: the HTML report of a training run, written again from its folder,
// or several runs compared on one page.
//   kiln report runs/x                       re-evaluates runs/x/best.safetensors on the
//                                            test split recorded in runs/x/split.json and
//                                            writes runs/x/report.html and runs/x/figures/
//   kiln report --compare runs/a runs/b -o compare.html
//                                            curves overlaid and a metrics table, from the
//                                            runs' logs (no model is evaluated)
//   kiln report sweeps/s                     a sweep folder (it holds journal.json): writes
//                                            sweeps/s/sweep.html (report/sweep_report.h) with
//                                            the best model's figures (tools/sweep_figures.h)
// The run's data is found where training read it (run_info.json, config.json); give
// --data when it has moved.
#include <cstdio>
#include <filesystem>

#include "data/class_stats.h"
#include "engine/train/multilabel.h"
#include "engine/train/trainer.h"
#include "report/compare_report.h"
#include "report/multilabel_report.h"
#include "report/run_folder.h"
#include "report/run_report.h"
#include "tools/commands.h"
#include "tools/data_options.h"
#include "tools/model_options.h"
#include "report/sweep_journal.h"
#include "tools/run_model.h"
#include "tools/sweep_figures.h"
#include "tools/train_report.h"

namespace kiln::tools {
namespace {

struct ReportOptions {
  std::vector<std::string> runs;
  bool compare = false;
  std::string out;
  std::string checkpoint;  // "" : best.safetensors, else last.safetensors
  std::string data;        // "" : where the run read its data
  std::string cache_dir = ".cache/kiln";
  std::string device = "auto";
  int64_t batch_size = 128;
  int neurons = 10;  // a sweep report's guided-backprop neurons
  CLI::Option* neurons_option = nullptr;  // to refuse --neurons for a run folder
} options;

// A multi-label run (docs/multilabel.md): the best checkpoint's sigmoid outputs on the
// test split under the decision rule saved with it.
int report_multi_label_run(const ReportOptions& o, LoadedRun& run, const PreparedData& data,
                           const std::string& run_dir, const Device& device) {
  const train::MultiLabelSetup setup = train::MultiLabelSetup::from_json(run.checkpoint.config["multi_label"]);
  report::MultilabelReportInputs inputs;
  inputs.run_dir = run_dir;
  inputs.class_names = run.checkpoint.class_names;
  inputs.rule = setup.rule;
  for (const std::vector<int64_t>& row : data::class_stats(data.train).cooccurrence)
    inputs.train_cooccurrence.emplace_back(row.begin(), row.end());
  if (data.test.size() > 0) {
    const Tensor logits = train::evaluate(*run.model.module, data.test, run.model.image, device, o.batch_size,
                                          train::Precision::f32, setup)
                              .logits;
    inputs.test_probabilities = train::sigmoid_probabilities(logits);
    inputs.test_targets = train::targets_as_ints(train::targets_for_classes(data.test, inputs.class_names));
    inputs.test_set = &data.test;
    std::printf("evaluated the multi-label checkpoint on %lld test images (%s)\n",
                static_cast<long long>(data.test.size()), setup.rule.describe().c_str());
  }
  const std::string path = report::write_multilabel_report(inputs);
  std::printf("wrote %s and %s/figures/\n", path.c_str(), run_dir.c_str());
  return 0;
}

int report_one_run(const ReportOptions& o, const std::string& run_dir) {
  const report::RunRecord record = report::read_run_folder(run_dir);
  const std::string checkpoint = o.checkpoint.empty() ? evaluated_checkpoint(run_dir)
                                                      : std::filesystem::path(o.checkpoint).filename().string();
  if (checkpoint.empty()) {
    // An --epochs 0 run keeps no weights: the report has the logs and no test figures.
    std::printf("%s holds no checkpoint: the report has no test figures\n", run_dir.c_str());
    const std::string path = report::write_report_for_run(run_dir, data::Dataset{}, Tensor{}, "");
    std::printf("wrote %s\n", path.c_str());
    return 0;
  }
  const std::string checkpoint_path = o.checkpoint.empty() ? run_dir + "/" + checkpoint : o.checkpoint;
  const Device device = resolve_device(o.device);
  LoadedRun run = load_run(checkpoint_path, device);

  // The test split as training made it: same source, size, fit and channels, and the
  // file lists of split.json.
  const DataOptions data_options = run_data_options(record, run, run_dir, o.data, o.cache_dir);
  const PreparedData data = prepare_data(data_options, "");
  KILN_CHECK(data.test.class_names == run.checkpoint.class_names || run.checkpoint.class_names.empty(),
             "report: the test data's classes differ from the checkpoint's ('", checkpoint_path, "')");
  if (run.checkpoint.config.contains("multi_label")) return report_multi_label_run(o, run, data, run_dir, device);
  Tensor logits;
  if (data.test.size() > 0) {
    logits = train::evaluate(*run.model.module, data.test, run.model.image, device, o.batch_size).logits;
    std::printf("evaluated %s on %lld test images\n", checkpoint_path.c_str(), static_cast<long long>(data.test.size()));
  }
  const std::string path = report::write_report_for_run(run_dir, data.test, logits, checkpoint);
  std::printf("wrote %s and %s/figures/\n", path.c_str(), run_dir.c_str());
  return 0;
}

int run_report() {
  const ReportOptions& o = options;
  KILN_CHECK(!o.runs.empty(), "report: give a run folder (kiln report runs/x) or --compare RUN_A RUN_B ...");
  if (!o.compare) {
    KILN_CHECK(o.runs.size() == 1, "report: one run folder at a time (", o.runs.size(),
               " given); use --compare to put several on one page");
    KILN_CHECK(o.out.empty(), "report: -o is for --compare; a run's report is always <run>/report.html");
    if (report::is_sweep_folder(o.runs[0])) {
      KILN_CHECK(o.checkpoint.empty(), "report: --checkpoint is for a run folder; a sweep report uses its best trial's");
      SweepFigureOptions figures;
      figures.device = o.device;
      figures.data = o.data;
      figures.cache_dir = o.cache_dir;
      figures.batch_size = o.batch_size;
      figures.neurons = o.neurons;
      const std::string path = write_sweep_report_with_figures(o.runs[0], figures);
      std::printf("wrote %s\n", path.c_str());
      return 0;
    }
    KILN_CHECK(o.neurons_option->count() == 0, "report: --neurons is for a sweep folder (one with journal.json); '",
               o.runs[0], "' is a run folder");
    return report_one_run(o, o.runs[0]);
  }
  KILN_CHECK(o.neurons_option->count() == 0, "report: --neurons is for a sweep folder, not --compare");
  std::vector<report::RunRecord> runs;
  for (const std::string& dir : o.runs) runs.push_back(report::read_run_folder(dir));
  const std::string out = o.out.empty() ? "compare.html" : o.out;
  const std::string figures = report::write_compare_report(out, runs);
  std::printf("wrote %s (%zu runs) and %s/\n", out.c_str(), runs.size(), figures.c_str());
  return 0;
}

const bool registered = register_command({
    "report",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand(
          "report", "write a run's report.html (or a sweep folder's sweep.html) again, or compare runs on one page");
      ReportOptions& o = options;
      cmd->add_option("runs", o.runs, "run folder(s) written by kiln train, or a sweep folder written by kiln sweep")
          ->required()
          ->check(CLI::ExistingDirectory);
      cmd->add_flag("--compare", o.compare, "compare the runs: overlaid curves and a metrics table");
      cmd->add_option("-o,--out", o.out, "--compare: the page to write (default compare.html)");
      cmd->add_option("--checkpoint", o.checkpoint, "the checkpoint to evaluate (default <run>/best.safetensors)")
          ->check(CLI::ExistingFile);
      cmd->add_option("--data", o.data, "the run's data, when it is no longer where training read it");
      cmd->add_option("--cache-dir", o.cache_dir, "where folders are packed once")->capture_default_str();
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
      o.neurons_option = cmd->add_option("--neurons", o.neurons, "sweep report: guided backpropagation of this many conv5 channels")
          ->capture_default_str()
          ->check(CLI::Range(1, 512));
    },
    run_report,
});

}  // namespace
}  // namespace kiln::tools
