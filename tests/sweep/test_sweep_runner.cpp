// The runner's pure parts (sweep/runner.h) and trial processes (sweep/trial_process.h):
// the trials a journal creates, the kiln train arguments of a trial, and a child
// process's exit code, signal and log.
#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "sweep/runner.h"
#include "sweep/trial_process.h"

using namespace kiln::sweep;

namespace {

SweepConfig grid_config(const std::string& method) {
  return parse_sweep_config(yaml_to_json("method: " + method +
                                             "\nepochs: 3\nparameters:\n  activation: {values: [relu, gelu, silu]}\n"
                                             "  filters: {values: [4, 8]}\n  dense: {value: 16}\n",
                                         "g.yaml"),
                            "g.yaml");
}

}  // namespace

TEST_CASE("sweep runner: a grid makes one trial per point, --max-runs a seeded sample without repeats") {
  const SweepConfig config = grid_config("grid");
  Journal all = new_journal(config, 0);
  CHECK(all.run_cap == 6);
  for (int i = 0; i < 6; ++i) create_trial(all, config.parameters, "sweeps/g");
  CHECK(all.trials[0].params == nlohmann::json({{"activation", "relu"}, {"dense", 16}, {"filters", 4}}));
  CHECK(all.trials[5].params == nlohmann::json({{"activation", "silu"}, {"dense", 16}, {"filters", 8}}));
  Journal some = new_journal(config, 4), again = new_journal(config, 4);
  CHECK(some.run_cap == 4);
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    const Trial& t = create_trial(some, config.parameters, "sweeps/g");
    CHECK(t.params == create_trial(again, config.parameters, "sweeps/g").params);
    seen.insert(t.params.dump());
  }
  CHECK(seen.size() == 4);
  // halving over values: lists races the grid.
  CHECK(new_journal(grid_config("halving"), 0).run_cap == 6);
}

TEST_CASE("sweep runner: a trial's kiln train arguments and its ready command") {
  const SweepConfig config = grid_config("grid");
  Journal j = new_journal(config, 0);
  const Trial& t = create_trial(j, config.parameters, "sweeps/g");
  CHECK(t.name == "trial-000");
  CHECK(t.status == "pending");
  CHECK(trial_arguments(j, t, "sweeps/g") ==
        std::vector<std::string>{"fashion-mnist", "--epochs=3", "--monitor=val_accuracy",
                                 "--split-file=sweeps/g/split.json", "--run-dir=sweeps/g/trial-000", "--quiet",
                                 "--activation=relu", "--dense=16", "--filters=4"});
  CHECK(t.command ==
        "kiln train fashion-mnist --epochs=3 --monitor=val_accuracy --split-file=sweeps/g/split.json "
        "--run-dir=sweeps/g/trial-000 --quiet --activation=relu --dense=16 --filters=4");
  CHECK(parameter_arguments({{"augment", "crop:0.6-1,hflip:0.5"}, {"nesterov", true}}) ==
        std::vector<std::string>{"--augment=crop:0.6-1,hflip:0.5", "--nesterov=true"});
}

TEST_CASE("sweep trial process: exit code, signal and the log's last error line") {
  const std::string log = std::filesystem::temp_directory_path() / ("kiln_sweep_trial_" + std::to_string(getpid()) + ".log");
  std::filesystem::remove(log);
  {
    TrialProcess p("/bin/sh", {"-c", "echo step 1; echo 'kiln: error: out of memory' >&2; echo bye; exit 3"}, log);
    p.wait();
    CHECK(p.exit_code() == 3);
    CHECK(p.term_signal() == 0);
  }
  CHECK(last_error_line(log) == "kiln: error: out of memory");
  {
    TrialProcess p("/bin/sh", {"-c", "exec sleep 30"}, log);
    CHECK_FALSE(p.poll());
    p.signal(SIGTERM);
    p.wait();
    CHECK(p.term_signal() == SIGTERM);
    CHECK(p.exit_code() == -1);
  }
  {
    TrialProcess p("/nonexistent/kiln", {}, log);
    p.wait();
    CHECK(p.exit_code() == 127);
  }
  CHECK(last_error_line(log) == "kiln: error: the trial could not be started (exec failed)");
  std::filesystem::remove(log);
}
