// A sweep's journal (sweeps/<name>/journal.json, written by `kiln sweep`) read into
// plain structs for the sweep report (report/sweep_report.h). The format,
// "kiln-sweep-journal/1":
//
//   { "format": "kiln-sweep-journal/1", "name": "...", "method": "grid|random|bayes|halving",
//     "seed": 0, "metric": {"name": "val_accuracy", "goal": "maximize"},
//     "data": "<DATA as given>", "split": "split.json",
//     "parameters": {"<flag>": {"kind": "categorical|continuous|integer|constant",
//                               "values": [...], "min": x, "max": y, "distribution": "...", "q": q}},
//     "trials": [{"id": 0, "name": "trial-000", "created": "<ISO-8601 UTC>", "order": 0,
//                 "params": {"lr": 0.01, ...}, "status": "pending|running|finished|stopped|failed",
//                 "run_dir": "trial-000", "epochs_done": 5, "metric": 0.83,
//                 "rungs": [{"epoch": 3, "metric": 0.61, "kept": true}],
//                 "command": "kiln train ...", "error": ""}],
//     "best": 3,
//     "finish": null | {"trial": 3, "test_accuracy": 0.87, "test_loss": 0.41, "run_dir": "...",
//                       "checkpoint": "..." (optional)} }
//
// Every error names the file and the field ("sweeps/a/journal.json: trials[2].status:
// expected one of pending, running, finished, stopped, failed, got 'done'"). Keys the
// report does not use are allowed (a later writer may add some); a trial's run_dir is
// relative to the sweep folder.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::report {

inline constexpr const char* kSweepJournalFormat = "kiln-sweep-journal/1";

struct SweepParameter {
  std::string name;                   // the kiln train flag, without "--"
  std::string kind;                   // categorical | continuous | integer | constant
  std::vector<nlohmann::json> values; // categorical / constant: the values as given
  std::optional<double> min, max;     // continuous / integer ranges
  std::string distribution;           // uniform, log_uniform_values, ... ("" when not given)
  std::optional<double> q;            // q_uniform's step

  // Drawn on a log scale (log_uniform, log_uniform_values, q_log_uniform*, inv_log_*).
  bool log_scale() const;
  // A parameter that varies between trials (not constant, not a single value).
  bool swept() const;
};

struct SweepRung {
  int epoch = 0;
  double metric = 0;
  bool kept = true;  // false: the trial was stopped at this rung
};

struct SweepTrial {
  int id = 0;
  std::string name, created;  // created: ISO-8601 UTC
  int order = 0;              // the order trials were created in
  nlohmann::json params = nlohmann::json::object();
  std::string status;         // pending | running | finished | stopped | failed
  std::string run_dir;        // relative to the sweep folder
  int epochs_done = 0;
  std::optional<double> metric;  // null until the trial has been validated
  std::vector<SweepRung> rungs;
  std::string command, error;
};

struct SweepFinish {
  int trial = 0;
  double test_accuracy = 0, test_loss = 0;
  std::string run_dir;     // relative to the sweep folder
  std::string checkpoint;  // the checkpoint evaluated ("" when not recorded)
};

struct SweepJournal {
  std::string file;  // the journal's path, for messages
  std::string name, method;
  int64_t seed = 0;
  std::string metric_name = "val_accuracy", goal = "maximize";
  std::string data, split;
  std::vector<SweepParameter> parameters;  // in the journal's key order
  std::vector<SweepTrial> trials;          // in the journal's order
  std::optional<int> best;                 // a trial id
  std::optional<SweepFinish> finish;

  bool maximize() const { return goal == "maximize"; }
  // The trial with `id`; nullptr when there is none.
  const SweepTrial* trial(int id) const;
};

// Parses a journal already read as JSON; `file` names it in errors.
SweepJournal parse_sweep_journal(const nlohmann::json& journal, const std::string& file);
// Reads <sweep_dir>/journal.json; throws naming the file when it is missing or not JSON.
SweepJournal read_sweep_journal(const std::string& sweep_dir);
// Whether `dir` holds a journal.json (so `kiln report DIR` builds a sweep report).
bool is_sweep_folder(const std::string& dir);

}  // namespace kiln::report
