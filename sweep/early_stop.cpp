#include "sweep/early_stop.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace kiln::sweep {

std::vector<int> rung_epochs(const EarlyTerminate& et, int epochs) {
  std::vector<int> rungs;
  if (!et.enabled) return rungs;
  for (int64_t r = et.min_iter; r < epochs; r *= et.eta) rungs.push_back(static_cast<int>(r));
  return rungs;
}

int64_t keep_count(int64_t reached, int eta) { return std::max<int64_t>(1, reached / eta); }

bool keep_at_rung(double metric, const std::vector<double>& others, int eta, bool maximize) {
  const int64_t keep = keep_count(static_cast<int64_t>(others.size()) + 1, eta);
  int64_t strictly_better = 0;
  for (double other : others) strictly_better += maximize ? other > metric : other < metric;
  return strictly_better < keep;
}

std::vector<double> read_epoch_column(const std::string& csv_path, const std::string& column) {
  std::vector<double> values;
  std::ifstream file(csv_path);
  if (!file) return values;
  std::stringstream whole;
  whole << file.rdbuf();
  const std::string text = whole.str();
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  if (lines.empty()) return values;
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
    return cells;
  };
  const std::vector<std::string> header = split(lines[0]);
  const auto at = std::find(header.begin(), header.end(), column);
  if (at == header.end()) return values;
  const size_t index = static_cast<size_t>(at - header.begin());
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> cells = split(lines[i]);
    if (cells.size() != header.size()) break;
    values.push_back(std::strtod(cells[index].c_str(), nullptr));
  }
  return values;
}

std::optional<double> best_of(const std::vector<double>& values, int epochs, bool maximize) {
  const size_t n = epochs <= 0 ? values.size() : std::min(values.size(), static_cast<size_t>(epochs));
  if (n == 0) return std::nullopt;
  return maximize ? *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n))
                  : *std::min_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n));
}

namespace {
HalvingStep step_of(HalvingStep::Kind kind) {
  HalvingStep step;
  step.kind = kind;
  return step;
}
}  // namespace

HalvingStep next_halving_step(const Journal& j, const std::set<int64_t>& busy) {
  std::vector<int> levels = rung_epochs(j.early_terminate, j.epochs);
  levels.push_back(j.epochs);  // the last level: the survivors finish
  std::vector<int64_t> survivors;
  for (const Trial& t : j.trials)
    if (t.status != "failed") survivors.push_back(t.id);
  for (size_t level = 0; level < levels.size(); ++level) {
    const int epoch = levels[level];
    const bool last = level + 1 == levels.size();
    std::vector<int64_t> next;
    bool decided = !survivors.empty(), waiting = false;
    for (int64_t id : survivors) {
      const Trial& t = j.trials[static_cast<size_t>(id)];
      if (t.status == "failed") continue;
      const auto rung = std::find_if(t.rungs.begin(), t.rungs.end(), [&](const Rung& r) { return r.epoch == epoch; });
      if (!last && rung != t.rungs.end()) {
        if (rung->kept) next.push_back(id);
        continue;
      }
      decided = false;
      const bool reached = last ? t.status == "finished" : (t.epochs_done >= epoch || t.status == "finished");
      if (reached) continue;
      if (busy.count(id)) {
        waiting = true;
        continue;
      }
      HalvingStep step;
      step.kind = HalvingStep::Kind::run;
      step.trial = id;
      step.target_epoch = epoch;
      return step;
    }
    if (waiting) return step_of(HalvingStep::Kind::wait);
    if (last) return step_of(HalvingStep::Kind::done);
    if (!decided) {
      // Every survivor (that did not fail) reached the rung: rank them.
      HalvingStep step;
      step.kind = HalvingStep::Kind::decide;
      step.rung_epoch = epoch;
      for (int64_t id : survivors)
        if (j.trials[static_cast<size_t>(id)].status != "failed") step.survivors.push_back(id);
      if (!step.survivors.empty()) return step;
    }
    survivors = next;
  }
  return step_of(HalvingStep::Kind::done);
}

int64_t apply_halving_decision(Journal& j, const HalvingStep& step, std::vector<std::pair<int64_t, double>> ranked) {
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) { return j.better(a.second, b.second); });
  const int64_t keep = keep_count(static_cast<int64_t>(ranked.size()), j.early_terminate.eta);
  for (size_t i = 0; i < ranked.size(); ++i) {
    Trial& t = j.trials[static_cast<size_t>(ranked[i].first)];
    t.rungs.erase(std::remove_if(t.rungs.begin(), t.rungs.end(), [&](const Rung& r) { return r.epoch == step.rung_epoch; }),
                  t.rungs.end());
    const bool kept = static_cast<int64_t>(i) < keep;
    t.rungs.push_back({step.rung_epoch, ranked[i].second, kept});
    if (!kept && t.status != "finished") {
      t.status = "stopped";
      t.metric = ranked[i].second;  // the value it was judged on (it may have run on a little before the pause)
    }
  }
  return keep;
}

}  // namespace kiln::sweep
