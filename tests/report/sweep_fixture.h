// A sweep folder as `kiln sweep` leaves it, written by hand for the sweep report tests
// (tests/report/test_sweep_report.cpp): a journal of six trials over a log-uniform lr,
// an integer filter count and a categorical activation, one trial stopped early by
// the halving rule and one failed, each scored trial with a run folder
// (tests/report/sample_run.h's, with the trial's own numbers).
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "report/sample_run.h"

namespace kiln::test {

inline nlohmann::json sample_sweep_journal() {
  using nlohmann::json;
  json trials = json::array();
  const double lr[] = {0.001, 0.03, 0.0003, 0.01, 0.1, 0.003};
  const int filters[] = {16, 32, 64, 32, 16, 64};
  const char* activation[] = {"relu", "gelu", "relu", "silu", "gelu", "silu"};
  const char* status[] = {"finished", "finished", "stopped", "finished", "failed", "finished"};
  const double metric[] = {0.71, 0.78, 0.52, 0.83, NAN, 0.80};
  for (int i = 0; i < 6; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "trial-%03d", i);
    json t = {{"id", i}, {"name", name}, {"created", "2026-12-05T06:0" + std::to_string(i) + ":00Z"}, {"order", i},
              {"params", {{"lr", lr[i]}, {"filters", filters[i]}, {"activation", activation[i]}, {"epochs", 3}}},
              {"status", status[i]}, {"run_dir", name}, {"epochs_done", status[i] == std::string("stopped") ? 1 : 3},
              {"metric", std::isnan(metric[i]) ? json(nullptr) : json(metric[i])},
              {"command", std::string("kiln train data/flowers --lr ") + std::to_string(lr[i]) + " --activation " +
                              activation[i]},
              {"error", status[i] == std::string("failed") ? "loss became NaN at epoch 1" : ""}};
    if (status[i] == std::string("stopped")) t["rungs"] = json::array({{{"epoch", 1}, {"metric", 0.52}, {"kept", false}}});
    trials.push_back(t);
  }
  return {{"format", "kiln-sweep-journal/1"}, {"name", "tiny"}, {"method", "halving"}, {"seed", 0},
          {"metric", {{"name", "val_accuracy"}, {"goal", "maximize"}}}, {"data", "data/flowers"}, {"split", "split.json"},
          {"parameters",
           {{"lr", {{"kind", "continuous"}, {"min", 1e-4}, {"max", 0.1}, {"distribution", "log_uniform_values"}}},
            {"filters", {{"kind", "categorical"}, {"values", {16, 32, 64}}}},
            {"activation", {{"kind", "categorical"}, {"values", {"relu", "gelu", "silu"}}}},
            {"epochs", {{"kind", "constant"}, {"values", {3}}}}}},
          {"trials", trials}, {"best", 3}, {"finish", nullptr}};
}

// The journal and a run folder for every trial but the failed one.
inline void write_sample_sweep(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const nlohmann::json journal = sample_sweep_journal();
  write_text(dir + "/journal.json", journal.dump(1));
  for (const nlohmann::json& t : journal["trials"])
    if (t["status"] != "failed") {
      const std::string run = dir + "/" + t["run_dir"].get<std::string>();
      std::filesystem::create_directories(run);
      write_sample_run(run);
    }
}

}  // namespace kiln::test
