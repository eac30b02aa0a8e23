// The schedules of lr_schedule.h and the registry that builds them from a CLI string.
#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "engine/core/check.h"

namespace kiln::optim {

StepLr::StepLr(int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {
  KILN_CHECK(step_size > 0, "lr schedule step: step_size must be > 0, got ", step_size);
}
double StepLr::lr_factor(int64_t step) const { return std::pow(gamma_, static_cast<double>(step / step_size_)); }
std::string StepLr::describe() const { return str("step(step_size=", step_size_, ", gamma=", gamma_, ")"); }

MultiStepLr::MultiStepLr(std::vector<int64_t> milestones, double gamma)
    : milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
}
double MultiStepLr::lr_factor(int64_t step) const {
  // torch's bisect_right: a milestone at `step` already applies at `step`
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
  return std::pow(gamma_, static_cast<double>(passed));
}
std::string MultiStepLr::describe() const {
  std::string list;
  for (int64_t m : milestones_) list += (list.empty() ? "" : ",") + std::to_string(m);
  return str("multistep(milestones=", list, ", gamma=", gamma_, ")");
}

double ExponentialLr::lr_factor(int64_t step) const { return std::pow(gamma_, static_cast<double>(step)); }
std::string ExponentialLr::describe() const { return str("exponential(gamma=", gamma_, ")"); }

WarmupCosineLr::WarmupCosineLr(int64_t warmup, int64_t total, double min_factor)
    : warmup_(warmup), total_(total), min_factor_(min_factor) {
  KILN_CHECK(total > warmup && warmup >= 0, "lr schedule cosine: needs 0 <= warmup < total, got warmup=", warmup,
             ", total=", total, " (total defaults to the run's step count)");
}
double WarmupCosineLr::lr_factor(int64_t step) const {
  // Warmup starts at 0: the first update is the gentlest, while the statistics
  // of a freshly initialised network (and Adam's v) are least reliable.
  if (step < warmup_) return static_cast<double>(step) / static_cast<double>(warmup_);
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_));
  return min_factor_ + (1.0 - min_factor_) * 0.5 * (1.0 + std::cos(M_PI * progress));
}
std::string WarmupCosineLr::describe() const {
  return str("cosine(warmup=", warmup_, ", total=", total_, ", min_factor=", min_factor_, ")");
}

CyclicLr::CyclicLr(CyclicMode mode, double base_lr, double max_lr, double step_size_up, double step_size_down,
                   double gamma, double optimizer_lr)
    : mode_(mode), base_lr_(base_lr), max_lr_(max_lr), step_size_up_(step_size_up),
      step_size_down_(step_size_down), gamma_(gamma), optimizer_lr_(optimizer_lr) {
  KILN_CHECK(step_size_up > 0 && step_size_down > 0, "lr schedule cyclic: step sizes must be > 0, got up=",
             step_size_up, ", down=", step_size_down);
  KILN_CHECK(optimizer_lr > 0, "lr schedule cyclic: the optimizer's lr must be > 0 to express lrs as factors");
}
double CyclicLr::lr(int64_t step) const {
  // torch CyclicLR.get_lr with last_epoch = step
  const double total = step_size_up_ + step_size_down_;
  const double step_ratio = step_size_up_ / total;
  const double s = static_cast<double>(step);
  const double cycle = std::floor(1.0 + s / total);
  const double x = 1.0 + s / total - cycle;  // position in the cycle, [0, 1)
  const double scale_factor = x <= step_ratio ? x / step_ratio : (x - 1.0) / (step_ratio - 1.0);
  const double base_height = (max_lr_ - base_lr_) * scale_factor;
  double scale = 1.0;  // triangular
  if (mode_ == CyclicMode::triangular2) scale = 1.0 / std::pow(2.0, cycle - 1.0);
  if (mode_ == CyclicMode::exp_range) scale = std::pow(gamma_, s);  // per step, not per cycle
  return base_lr_ + base_height * scale;
}
std::string CyclicLr::describe() const {
  const char* mode = mode_ == CyclicMode::triangular ? "triangular"
                     : mode_ == CyclicMode::triangular2 ? "triangular2" : "exp_range";
  return str("cyclic(mode=", mode, ", base_lr=", base_lr_, ", max_lr=", max_lr_, ", step_size_up=", step_size_up_,
             ", step_size_down=", step_size_down_, ", gamma=", gamma_, ")");
}

OneCycleLr::OneCycleLr(OneCycleOptions o, double optimizer_lr) : options_(o), optimizer_lr_(optimizer_lr) {
  KILN_CHECK(o.total_steps > 1, "lr schedule onecycle: total must be > 1, got ", o.total_steps,
             " (total defaults to the run's step count)");
  KILN_CHECK(o.pct_start > 0 && o.pct_start < 1, "lr schedule onecycle: pct_start must lie in (0, 1), got ",
             o.pct_start);
  KILN_CHECK(optimizer_lr > 0, "lr schedule onecycle: the optimizer's lr must be > 0 to express lrs as factors");
  const double initial_lr = o.max_lr / o.div_factor;
  const double min_lr = initial_lr / o.final_div_factor;
  const double total = static_cast<double>(o.total_steps);
  // torch's phase boundaries, fractional end steps included
  if (o.three_phase) {
    phases_ = {{o.pct_start * total - 1, initial_lr, o.max_lr},
               {2 * o.pct_start * total - 2, o.max_lr, initial_lr},
               {total - 1, initial_lr, min_lr}};
  } else {
    phases_ = {{o.pct_start * total - 1, initial_lr, o.max_lr}, {total - 1, o.max_lr, min_lr}};
  }
}
double OneCycleLr::lr(int64_t step) const {
  // torch raises past total_steps; a pure function just holds the last lr
  const double s = static_cast<double>(std::min(step, options_.total_steps - 1));
  double start_step = 0;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& phase = phases_[i];
    if (s <= phase.end_step || i + 1 == phases_.size()) {
      const double pct = (s - start_step) / (phase.end_step - start_step);
      if (!options_.cosine_anneal) return (phase.end_lr - phase.start_lr) * pct + phase.start_lr;
      return phase.end_lr + (phase.start_lr - phase.end_lr) / 2.0 * (std::cos(M_PI * pct) + 1);
    }
    start_step = phase.end_step;
  }
  return phases_.back().end_lr;
}
std::string OneCycleLr::describe() const {
  const OneCycleOptions& o = options_;
  return str("onecycle(max_lr=", o.max_lr, ", total=", o.total_steps, ", pct_start=", o.pct_start,
             ", anneal=", o.cosine_anneal ? "cos" : "linear", ", div_factor=", o.div_factor,
             ", final_div_factor=", o.final_div_factor, ", three_phase=", o.three_phase ? 1 : 0, ")");
}

// ---- the registry

namespace {

// The key=value pairs of one spec, with typed reads whose errors name the key.
class SpecArgs {
 public:
  SpecArgs(std::string schedule, std::map<std::string, std::string> values)
      : schedule_(std::move(schedule)), values_(std::move(values)) {}
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  std::string text(const std::string& key, const std::string& fallback) const {
    return has(key) ? values_.at(key) : fallback;
  }
  double number(const std::string& key, double fallback) const {
    const std::string value = text(key, "");
    if (value.empty()) return fallback;
    try {
      size_t end = 0;
      const double x = std::stod(value, &end);
      // Finite and below 2^53: step counts are cast to int64 (a float beyond its range
      // makes that cast undefined; found by tests/fuzz/fuzz_schedule.cpp), and no rate,
      // factor or step count of a real run comes near.
      if (end == value.size() && std::isfinite(x) && std::abs(x) <= 9007199254740992.0) return x;
    } catch (const std::exception&) {
    }
    KILN_FAIL("lr schedule ", schedule_, ": key '", key, "' needs a finite number of magnitude at most 2^53, got '",
              value, "'");
  }
  double required(const std::string& key) const {
    KILN_CHECK(has(key), "lr schedule ", schedule_, ": the key '", key, "' is required");
    return number(key, 0);
  }
  std::vector<int64_t> integers(const std::string& key) const {
    KILN_CHECK(has(key), "lr schedule ", schedule_, ": the key '", key, "' is required");
    std::vector<int64_t> out;
    std::string list = text(key, "") + ",";
    for (size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1)
      out.push_back(static_cast<int64_t>(SpecArgs(schedule_, {{key, list.substr(start, comma - start)}})
                                             .required(key)));
    return out;
  }
  // Checked before anything is built, so a misspelt key is reported as such and
  // not as whatever its default then breaks.
  void check_keys(const std::vector<std::string>& valid) const {
    for (const auto& [key, value] : values_) {
      if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
      std::string list;
      for (const std::string& k : valid) list += (list.empty() ? "" : ", ") + k;
      KILN_FAIL("lr schedule ", schedule_, ": unknown key '", key, "' (valid: ", list.empty() ? "none" : list, ")");
    }
  }

 private:
  std::string schedule_;
  std::map<std::string, std::string> values_;
};

struct ScheduleEntry {
  std::vector<std::string> keys;
  std::function<std::unique_ptr<LrSchedule>(const SpecArgs&, const LrScheduleContext&)> make;
};

CyclicMode cyclic_mode(const std::string& mode) {
  if (mode == "triangular") return CyclicMode::triangular;
  if (mode == "triangular2") return CyclicMode::triangular2;
  if (mode == "exp_range") return CyclicMode::exp_range;
  KILN_FAIL("lr schedule cyclic: mode must be triangular, triangular2 or exp_range, got '", mode, "'");
}

const std::map<std::string, ScheduleEntry>& registry() {
  static const std::map<std::string, ScheduleEntry> table = {
      {"constant", {{}, [](const SpecArgs&, const LrScheduleContext&) { return std::make_unique<ConstantLr>(); }}},
      {"step",
       {{"step_size", "gamma"},
        [](const SpecArgs& a, const LrScheduleContext&) {
         const auto step_size = static_cast<int64_t>(a.required("step_size"));
         return std::make_unique<StepLr>(step_size, a.number("gamma", 0.1));
        }}},
      {"multistep",
       {{"milestones", "gamma"},
        [](const SpecArgs& a, const LrScheduleContext&) {
         std::vector<int64_t> milestones = a.integers("milestones");
         return std::make_unique<MultiStepLr>(std::move(milestones), a.number("gamma", 0.1));
        }}},
      {"exponential",
       {{"gamma"},
        [](const SpecArgs& a, const LrScheduleContext&) { return std::make_unique<ExponentialLr>(a.required("gamma")); }}},
      {"cosine",
       {{"warmup", "total", "min_factor"},
        [](const SpecArgs& a, const LrScheduleContext& c) {
         const auto warmup = static_cast<int64_t>(a.number("warmup", 0));
         const auto total = static_cast<int64_t>(a.number("total", static_cast<double>(c.total_steps)));
         return std::make_unique<WarmupCosineLr>(warmup, total, a.number("min_factor", 0.0));
        }}},
      {"cyclic",
       {{"mode", "base_lr", "max_lr", "step_size_up", "step_size_down", "gamma"},
        [](const SpecArgs& a, const LrScheduleContext& c) {
         const CyclicMode m = cyclic_mode(a.text("mode", "triangular"));
         const double max_lr = a.required("max_lr");
         const double base_lr = a.number("base_lr", c.base_lr);
         const double up = a.number("step_size_up", 2000);
         const double down = a.number("step_size_down", up);
         return std::make_unique<CyclicLr>(m, base_lr, max_lr, up, down, a.number("gamma", 1.0), c.base_lr);
        }}},
      {"onecycle",
       {{"max_lr", "total", "pct_start", "anneal", "div_factor", "final_div_factor", "three_phase"},
        [](const SpecArgs& a, const LrScheduleContext& c) {
         OneCycleOptions o;
         o.max_lr = a.number("max_lr", c.base_lr);
         o.total_steps = static_cast<int64_t>(a.number("total", static_cast<double>(c.total_steps)));
         o.pct_start = a.number("pct_start", o.pct_start);
         const std::string anneal = a.text("anneal", "cos");
         KILN_CHECK(anneal == "cos" || anneal == "linear", "lr schedule onecycle: anneal must be cos or linear, got '",
                    anneal, "'");
         o.cosine_anneal = anneal == "cos";
         o.div_factor = a.number("div_factor", o.div_factor);
         o.final_div_factor = a.number("final_div_factor", o.final_div_factor);
         o.three_phase = a.number("three_phase", 0) != 0;
         return std::make_unique<OneCycleLr>(o, c.base_lr);
        }}},
  };
  return table;
}

}  // namespace

std::vector<std::string> lr_schedule_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

std::unique_ptr<LrSchedule> make_lr_schedule(const std::string& spec, const LrScheduleContext& context) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const auto found = registry().find(name);
  if (found == registry().end()) {
    std::string valid;
    for (const std::string& n : lr_schedule_names()) valid += (valid.empty() ? "" : ", ") + n;
    KILN_FAIL("unknown lr schedule '", name, "' in '", spec, "' (valid: ", valid, ")");
  }
  std::map<std::string, std::string> values;
  std::string last_key;
  const std::string rest = colon == std::string::npos ? "" : spec.substr(colon + 1) + ",";
  for (size_t start = 0, comma; (comma = rest.find(',', start)) != std::string::npos; start = comma + 1) {
    const std::string item = rest.substr(start, comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {  // a further element of the previous key's list
      KILN_CHECK(!last_key.empty() && !item.empty(), "lr schedule ", name, ": expected key=value, got '", item,
                 "' in '", spec, "'");
      values[last_key] += "," + item;
      continue;
    }
    last_key = item.substr(0, eq);
    KILN_CHECK(values.count(last_key) == 0, "lr schedule ", name, ": key '", last_key, "' given twice");
    values[last_key] = item.substr(eq + 1);
  }
  const SpecArgs args(name, std::move(values));
  args.check_keys(found->second.keys);
  return found->second.make(args, context);
}

}  // namespace kiln::optim
