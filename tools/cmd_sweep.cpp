// `kiln sweep`: hyper-parameter sweeps over `kiln train` flags, offline (docs/sweeps.md).
//   kiln sweep sweep.yaml [--max-runs N] [--parallel N] [--devices cuda:0,cuda:1] [--dir D]
//   kiln sweep --resume sweeps/<name>         continue after a crash, Ctrl-C or kill -9
//   kiln sweep --finish sweeps/<name> [--retrain]
// The sweep folder (default sweeps/<name>) holds journal.json (sweep/journal.h),
// split.json (one split for every trial: validation per class, the test part never
// used to choose), and one `kiln train` run folder per trial.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/cpu_threads.h"
#include "engine/core/device.h"
#include "engine/train/run_lock.h"
#include "engine/train/trainer.h"
#include "data/split.h"
#include "sweep/runner.h"
#include "sweep/search_space.h"
#include "sweep/trial_process.h"
#include "tools/commands.h"
#include "report/sweep_report.h"
#include "tools/run_model.h"
#include "tools/sweep_figures.h"
#include "tools/train_options.h"

namespace kiln::tools {
namespace {

namespace fs = std::filesystem;

struct SweepOptions {
  std::string config;
  std::string resume, finish;
  bool retrain = false;
  std::string dir;
  int64_t max_runs = 0;
  int parallel = 0;
  std::string devices;
  bool quiet = false;
} options;

// The train flags of a trial as `kiln train` would read them: the data options are
// what the sweep's split and --finish need.
TrainOptions trial_train_options(const sweep::Journal& journal, const sweep::Trial& trial, const std::string& dir) {
  return parse_train_arguments(sweep::trial_arguments(journal, trial, dir));
}

sweep::RunnerOptions runner_options(const std::string& dir) {
  sweep::RunnerOptions r;
  r.sweep_dir = dir;
  r.check_train_args = [](const std::vector<std::string>& args) { parse_train_arguments(args); };
  r.print_progress = !options.quiet;
  // sweep.html after every trial and rung (without the best model's figures, which load
  // a checkpoint: those come at the end). A report that cannot be written is a warning:
  // it must not stop a sweep of many hours.
  r.on_journal_updated = [](const std::string& sweep_dir) {
    try {
      report::write_sweep_report(sweep_dir);
    } catch (const Error& e) {
      std::fprintf(stderr, "kiln sweep: warning: %s/sweep.html not updated: %s\n", sweep_dir.c_str(), e.what());
    }
  };
  if (!options.devices.empty()) {
    std::stringstream list(options.devices);
    for (std::string device; std::getline(list, device, ',');) {
      KILN_CHECK(Device::parse(device).is_cuda(), "--devices: ", device, " is not a GPU (cuda:N)");
      r.devices.push_back(device);
    }
  }
  r.parallel = options.parallel > 0 ? options.parallel : std::max<int>(1, static_cast<int>(r.devices.size()));
  KILN_CHECK(r.devices.empty() || r.parallel <= static_cast<int>(r.devices.size()), "--parallel ", r.parallel,
             " needs as many --devices, got ", r.devices.size());
  // CPU trials share the machine's threads; GPU trials each keep the default.
  if (r.devices.empty()) r.threads_per_trial = std::max(1, cpu_threads() / r.parallel);
  return r;
}

int finish_message(const sweep::Journal& journal, const std::string& dir, int status) {
  if (status != 0) return status;
  if (!journal.best) {
    const auto failed = std::count_if(journal.trials.begin(), journal.trials.end(),
                                      [](const sweep::Trial& t) { return t.status == "failed"; });
    std::fprintf(stderr, "kiln: error: sweep %s: no trial finished (%ld failed; each trial's error is in %s/journal.json "
                 "and its train.log)\n", dir.c_str(), static_cast<long>(failed), dir.c_str());
    return 1;
  }
  std::printf("sweep done: %s/journal.json | the best trial on the test split: kiln sweep --finish %s\n", dir.c_str(),
              dir.c_str());
  std::printf("report: %s\n", write_sweep_report_with_figures(dir).c_str());
  return 0;
}

// --devices gives each trial its --device: a device parameter would give it two.
void check_devices(const sweep::RunnerOptions& runner, const sweep::Journal& journal) {
  KILN_CHECK(runner.devices.empty() || !journal.parameters.contains("device"), "--devices sets each trial's --device; ",
             "remove the device parameter from the sweep (or --devices)");
}

int start_sweep() {
  const sweep::SweepConfig config = sweep::load_sweep_config(options.config);
  const std::string dir = options.dir.empty() ? "sweeps/" + config.name : options.dir;
  KILN_CHECK(!fs::exists(dir + "/journal.json"), dir, " already holds a sweep: continue it with kiln sweep --resume ",
             dir, ", or give this one another name: (or --dir)");
  sweep::Journal journal = sweep::new_journal(config, options.max_runs);
  const sweep::RunnerOptions runner = runner_options(dir);
  check_devices(runner, journal);
  // Every trial the sweep can know now must be one kiln train accepts: before any
  // file is written or any trial runs.
  sweep::check_trials_before_start(journal, config.parameters, runner);
  const train::RunLock lock(dir);
  // One split for the whole sweep, from the data flags the trials share.
  sweep::Trial probe;
  probe.run_dir = "split-probe";
  sweep::Stream stream(config.seed, 0, sweep::kRandomDraw);
  probe.params = sweep::sample_parameters(config.parameters, stream);
  TrainOptions shared = trial_train_options(journal, probe, dir);
  shared.data.split_file.clear();
  const PreparedData data = prepare_data(shared.data, dir);  // writes split.json and class_stats.json
  std::printf("kiln sweep %s: %s, %lld trials, %s (%s) | train %lld, val %lld images | %s\n", journal.name.c_str(),
              journal.method.c_str(), static_cast<long long>(journal.run_cap), journal.metric.c_str(),
              journal.goal.c_str(), static_cast<long long>(data.train.size()), static_cast<long long>(data.val.size()),
              dir.c_str());
  sweep::save_journal(dir, journal);
  const int status = sweep::run_sweep(journal, runner);
  return finish_message(journal, dir, status);
}

int resume_sweep() {
  const std::string dir = options.resume;
  sweep::Journal journal = sweep::load_journal(dir);
  const train::RunLock lock(dir);
  std::printf("kiln sweep --resume %s: %zu of %lld trials created\n", dir.c_str(), journal.trials.size(),
              static_cast<long long>(journal.run_cap));
  const sweep::RunnerOptions runner = runner_options(dir);
  check_devices(runner, journal);
  const int status = sweep::run_sweep(journal, runner);
  return finish_message(journal, dir, status);
}

// The test metrics of a checkpoint on the sweep's test split.
train::Evaluation evaluate_on_test(const std::string& checkpoint, DataOptions data, const std::string& split_file) {
  const Device device = resolve_device("auto");
  LoadedRun run = load_run(checkpoint, device);
  data.size = run.model.image.out_size;
  data.fit = run.fit;
  data.split_file = split_file;
  const PreparedData prepared = prepare_data(data, "");
  KILN_CHECK(prepared.test.size() > 0, split_file, ": the split has no test images to evaluate on");
  return train::evaluate(*run.model.module, prepared.test, run.model.image, device, 128);
}

int finish_sweep() {
  const std::string dir = options.finish;
  sweep::Journal journal = sweep::load_journal(dir);
  const train::RunLock lock(dir);
  journal.update_best();
  KILN_CHECK(journal.best.has_value(), dir, ": no trial has finished with a ", journal.metric,
             " yet (kiln sweep --resume ", dir, ")");
  const sweep::Trial& best = journal.trials[static_cast<size_t>(*journal.best)];
  const TrainOptions train = trial_train_options(journal, best, dir);
  std::string checkpoint = dir + "/" + best.run_dir + "/best.safetensors";
  std::string run_dir = best.run_dir;
  if (options.retrain) {
    // The best configuration again, on train + validation (no validation left: the
    // last epoch's weights are the model), then the test split once.
    data::Split split = data::load_split(dir + "/" + journal.split);
    split.train.insert(split.train.end(), split.val.begin(), split.val.end());
    split.val.clear();
    data::save_split(dir + "/split-train-val.json", split);
    run_dir = "retrain-" + best.name;
    sweep::Trial again = best;
    again.run_dir = run_dir;
    std::vector<std::string> args = {"train"};
    for (const std::string& a : sweep::trial_arguments(journal, again, dir))
      args.push_back(a.rfind("--split-file=", 0) == 0 ? "--split-file=" + dir + "/split-train-val.json" : a);
    if (fs::exists(dir + "/" + run_dir)) fs::remove_all(dir + "/" + run_dir);
    fs::create_directories(dir + "/" + run_dir);
    std::printf("retraining %s on train + validation: %s/%s (log: train.log)\n", best.name.c_str(), dir.c_str(),
                run_dir.c_str());
    std::fflush(stdout);
    sweep::TrialProcess process("/proc/self/exe", args, dir + "/" + run_dir + "/train.log");
    process.wait();
    KILN_CHECK(process.exit_code() == 0, "the retraining run failed: ",
               sweep::last_error_line(dir + "/" + run_dir + "/train.log"));
    checkpoint = dir + "/" + run_dir + "/last.safetensors";
  }
  const train::Evaluation e = evaluate_on_test(checkpoint, train.data, dir + "/" + journal.split);
  journal.finish = {{"trial", best.id},          {"test_accuracy", e.accuracy}, {"test_loss", e.loss},
                    {"run_dir", run_dir},        {"checkpoint", checkpoint},    {"retrained", options.retrain},
                    {"test_images", e.count}};
  sweep::save_journal(dir, journal);
  std::printf("best trial %s (%s %.4f): test accuracy %.2f%%, test loss %.4f on %lld images%s\n  kiln train %s\n",
              best.name.c_str(), journal.metric.c_str(), *best.metric, 100.0 * e.accuracy, e.loss,
              static_cast<long long>(e.count), options.retrain ? " (retrained on train + validation)" : "",
              best.command.substr(std::string("kiln train ").size()).c_str());
  std::printf("report: %s\n", write_sweep_report_with_figures(dir).c_str());
  return 0;
}

int run_sweep_command() {
  const int modes = !options.config.empty() + !options.resume.empty() + !options.finish.empty();
  KILN_CHECK(modes == 1, "kiln sweep: give one of CONFIG (a new sweep), --resume DIR or --finish DIR");
  KILN_CHECK(!options.retrain || !options.finish.empty(), "--retrain goes with --finish");
  if (!options.resume.empty()) return resume_sweep();
  if (!options.finish.empty()) return finish_sweep();
  return start_sweep();
}

const bool registered = register_command({
    "sweep",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("sweep", "hyper-parameter sweep over kiln train flags (grid, random, bayes, halving)");
      SweepOptions& o = options;
      cmd->add_option("config", o.config, "sweep.yaml or sweep.json (docs/sweeps.md)")->check(CLI::ExistingFile);
      cmd->add_option("--resume", o.resume, "continue the sweep in this folder")->check(CLI::ExistingDirectory);
      cmd->add_option("--finish", o.finish, "evaluate the sweep's best trial on the test split")
          ->check(CLI::ExistingDirectory);
      cmd->add_flag("--retrain", o.retrain, "with --finish: train the best configuration again on train + validation");
      cmd->add_option("--dir", o.dir, "the sweep folder (default sweeps/<name>)");
      cmd->add_option("--max-runs", o.max_runs, "at most N trials (grid: N points drawn without replacement)")
          ->check(CLI::PositiveNumber);
      cmd->add_option("--parallel", o.parallel, "trials at once (CPU threads are split between them)")
          ->check(CLI::PositiveNumber);
      cmd->add_option("--devices", o.devices, "one GPU per parallel trial, e.g. cuda:0,cuda:1");
      cmd->add_flag("--quiet", o.quiet, "no progress lines");
    },
    run_sweep_command,
});

}  // namespace
}  // namespace kiln::tools
