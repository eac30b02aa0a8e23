// Running a sweep: create trials (grid / random / bayes), start each as a `kiln train`
// child process (sweep/trial_process.h), watch its epochs.csv for rung decisions
// (sweep/early_stop.h), and record everything in the journal after every change.
//
// Trial k's parameters depend only on the seed, k and (bayes) the trials before it, so
// `kiln sweep --resume` after a crash, Ctrl-C or kill -9 creates the same trials:
// finished ones are kept, a "running" one continues from its last.safetensors
// (kiln train --resume, bit-exact), pending ones start.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "sweep/config.h"
#include "sweep/journal.h"

namespace kiln::sweep {

struct RunnerOptions {
  std::string sweep_dir;
  std::string program = "/proc/self/exe";  // the kiln binary the trials run
  int parallel = 1;                         // trials at once
  std::vector<std::string> devices;         // one per slot (--devices cuda:0,cuda:1); empty: none given
  int threads_per_trial = 0;                // > 0: --threads for each trial
  // Throws kiln::Error when `kiln train ARGS` would refuse its flags (tools/train_options.h).
  std::function<void(const std::vector<std::string>& args)> check_train_args;
  // Called with the sweep folder after each trial ends, after each halving rung, and
  // when the sweep stops (done or interrupted), once the journal is saved: the place
  // for the sweep report (report::write_sweep_report). Unset: nothing is called.
  std::function<void(const std::string& sweep_dir)> on_journal_updated;
  bool print_progress = true;
};

// A new journal for `config` (no trials yet). max_runs > 0 overrides run_cap (grid:
// that many points of the grid, drawn without replacement).
Journal new_journal(const SweepConfig& config, int64_t max_runs);

// The trial list is fixed for grid and halving (all created at once) and grows one by
// one for random and bayes; this creates trial `id` (appended to the journal).
// Constants are part of every trial's params (so the report shows the whole recipe).
Trial& create_trial(Journal& journal, const std::vector<Parameter>& parameters, const std::string& sweep_dir);

// DATA + shared flags + the trial's parameters as `kiln train` arguments; `internal`
// adds the per-trial flags the sweep sets (--epochs, --monitor, --split-file, --run-dir,
// --quiet). --resume and --threads/--device are added by the runner.
std::vector<std::string> trial_arguments(const Journal& journal, const Trial& trial, const std::string& sweep_dir);
// "--lr=0.01" etc. for the trial's swept parameters only (journal order).
std::vector<std::string> parameter_arguments(const nlohmann::json& params);

// Checks every trial the sweep can already know (the whole grid, or a dry sample of
// random draws) with options.check_train_args; throws naming the parameters.
void check_trials_before_start(const Journal& journal, const std::vector<Parameter>& parameters,
                               const RunnerOptions& options);

// Runs until every trial is done. Returns 0, or 130 when SIGINT/SIGTERM interrupted it
// (the journal is saved and the resume command printed).
int run_sweep(Journal& journal, const RunnerOptions& options);

}  // namespace kiln::sweep
