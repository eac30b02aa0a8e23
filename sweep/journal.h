// The sweep's state on disk: sweeps/<name>/journal.json, rewritten atomically
// (temp file + rename) after every change, so a crash or kill -9 leaves either the
// previous state or the new one. It is also the contract with the sweep report
// (report/sweep_report.*), which reads it; the format is "kiln-sweep-journal/1":
//
//   { "format": "kiln-sweep-journal/1", "name": ..., "method": ..., "seed": 0,
//     "metric": {"name": "val_accuracy", "goal": "maximize"},
//     "data": "<DATA as given>", "split": "split.json",       (relative to the sweep folder)
//     "epochs": 9, "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 3} | null,
//     "parameters": {"lr": {"kind": "continuous", "distribution": ..., "min": .., "max": ..}, ...},
//     "trials": [ {"id": 0, "name": "trial-000", "created": "<ISO-8601 UTC>", "order": 0,
//                  "params": {...}, "status": "pending|running|finished|stopped|failed",
//                  "run_dir": "trial-000", "epochs_done": 5, "metric": 0.83 | null,
//                  "rungs": [{"epoch": 3, "metric": 0.61, "kept": true}],
//                  "command": "kiln train DATA --lr=0.01 ...", "error": ""} ],
//     "best": 3 | null,
//     "finish": null | {"trial": 3, "test_accuracy": .., "test_loss": .., "run_dir": ..} }
//
// A trial's metric is the best value of metric.name over the epochs it ran (the epoch
// whose checkpoint is best.safetensors); "stopped" trials were ended at a rung, and
// their metric is the one they were judged on there (a trial can run on a few steps
// before the stop lands: epochs_done counts them, the metric does not).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sweep/config.h"

namespace kiln::sweep {

struct Rung {
  int epoch = 0;
  double metric = 0;
  bool kept = true;
};

struct Trial {
  int64_t id = 0;
  std::string name;     // trial-000
  std::string created;  // ISO-8601 UTC
  int64_t order = 0;    // creation order (= id: trials are created one by one)
  nlohmann::json params = nlohmann::json::object();
  std::string status = "pending";
  std::string run_dir;  // relative to the sweep folder
  int epochs_done = 0;
  std::optional<double> metric;
  std::vector<Rung> rungs;
  std::string command;
  std::string error;
  bool done() const { return status == "finished" || status == "stopped" || status == "failed"; }
};

struct Journal {
  std::string name, method;
  uint64_t seed = 0;
  std::string metric = "val_accuracy", goal = "maximize";
  std::string data;
  std::string split = "split.json";
  int epochs = 10;
  EarlyTerminate early_terminate;
  int64_t run_cap = 0;  // trials in all (grid: the grid or --max-runs of it)
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<Trial> trials;
  std::optional<int64_t> best;
  nlohmann::json finish = nullptr;

  bool maximize() const { return goal == "maximize"; }
  // true when `a` is a better metric value than `b` under the goal.
  bool better(double a, double b) const { return maximize() ? a > b : a < b; }
  void update_best();  // the finished or stopped trial with the best metric
};

nlohmann::json journal_to_json(const Journal& journal);
Journal journal_from_json(const nlohmann::json& document, const std::string& source);

void save_journal(const std::string& sweep_dir, const Journal& journal);  // atomic
Journal load_journal(const std::string& sweep_dir);  // throws naming the file and the field

// "2026-12-05T06:01:02Z"
std::string utc_timestamp();

}  // namespace kiln::sweep
