// The schedules of lr_schedule.h and the registry that builds them from a CLI string.
#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "engine/core/check.h"

namespace kiln::optim {

StepLr::StepLr(int64_t step_size, double gamma) {
  KILN_CHECK(step_size > 0, "lr schedule step: step_size must be > 0, got ", step_size);
  params_.kind = LrScheduleKind::step;
  params_.period = static_cast<double>(step_size);
  params_.gamma = gamma;
}
std::string StepLr::describe() const {
  return str("step(step_size=", static_cast<int64_t>(params_.period), ", gamma=", params_.gamma, ")");
}

MultiStepLr::MultiStepLr(std::vector<int64_t> milestones, double gamma) {
  KILN_CHECK(milestones.size() <= static_cast<size_t>(kLrScheduleTableSize), "lr schedule multistep: at most ",
             kLrScheduleTableSize, " milestones (they travel in the fused optimizer kernels' arguments), got ",
             milestones.size());
  std::sort(milestones.begin(), milestones.end());
  params_.kind = LrScheduleKind::multistep;
  params_.gamma = gamma;
  params_.table_size = static_cast<int32_t>(milestones.size());
  for (size_t i = 0; i < milestones.size(); ++i) params_.table[i] = static_cast<double>(milestones[i]);
}
std::string MultiStepLr::describe() const {
  std::string list;
  for (int i = 0; i < params_.table_size; ++i)
    list += (list.empty() ? "" : ",") + std::to_string(static_cast<int64_t>(params_.table[i]));
  return str("multistep(milestones=", list, ", gamma=", params_.gamma, ")");
}

ExponentialLr::ExponentialLr(double gamma) {
  params_.kind = LrScheduleKind::exponential;
  params_.gamma = gamma;
}
std::string ExponentialLr::describe() const { return str("exponential(gamma=", params_.gamma, ")"); }

WarmupCosineLr::WarmupCosineLr(int64_t warmup, int64_t total, double min_factor) {
  KILN_CHECK(total > warmup && warmup >= 0, "lr schedule cosine: needs 0 <= warmup < total, got warmup=", warmup,
             ", total=", total, " (total defaults to the run's step count)");
  params_.kind = LrScheduleKind::cosine;
  params_.warmup = static_cast<double>(warmup);
  params_.total = static_cast<double>(total);
  params_.min_factor = min_factor;
}
std::string WarmupCosineLr::describe() const {
  return str("cosine(warmup=", static_cast<int64_t>(params_.warmup), ", total=", static_cast<int64_t>(params_.total),
             ", min_factor=", params_.min_factor, ")");
}

CyclicLr::CyclicLr(CyclicMode mode, double base_lr, double max_lr, double step_size_up, double step_size_down,
                   double gamma, double optimizer_lr) {
  // A half cycle shorter than one step means nothing, and a tiny one makes
  // step / cycle overflow to inf and the position in the cycle inf - inf = NaN.
  KILN_CHECK(step_size_up >= 1 && step_size_down >= 1, "lr schedule cyclic: step_size_up and step_size_down are ",
             "steps and must be >= 1, got up=", step_size_up, ", down=", step_size_down);
  KILN_CHECK(optimizer_lr > 0, "lr schedule cyclic: the optimizer's lr must be > 0 to express lrs as factors");
  params_.kind = LrScheduleKind::cyclic;
  params_.cyclic_mode = mode;
  params_.low_lr = base_lr;
  params_.high_lr = max_lr;
  params_.period = step_size_up;
  params_.period_down = step_size_down;
  params_.gamma = gamma;
  params_.optimizer_lr = optimizer_lr;
}
std::string CyclicLr::describe() const {
  const CyclicMode m = params_.cyclic_mode;
  const char* mode = m == CyclicMode::triangular ? "triangular" : m == CyclicMode::triangular2 ? "triangular2"
                                                                                                : "exp_range";
  return str("cyclic(mode=", mode, ", base_lr=", params_.low_lr, ", max_lr=", params_.high_lr,
             ", step_size_up=", params_.period, ", step_size_down=", params_.period_down, ", gamma=", params_.gamma,
             ")");
}

OneCycleLr::OneCycleLr(OneCycleOptions o, double optimizer_lr) : options_(o) {
  KILN_CHECK(o.total_steps > 1, "lr schedule onecycle: total must be > 1, got ", o.total_steps,
             " (total defaults to the run's step count)");
  KILN_CHECK(o.pct_start > 0 && o.pct_start < 1, "lr schedule onecycle: pct_start must lie in (0, 1), got ",
             o.pct_start);
  KILN_CHECK(optimizer_lr > 0, "lr schedule onecycle: the optimizer's lr must be > 0 to express lrs as factors");
  // torch divides by both factors too (Python raises ZeroDivisionError for 0); a
  // factor of 0, or one so small that the start or final lr overflows, would give
  // inf lrs and then inf - inf = NaN between phases (found by tests/fuzz/fuzz_schedule.cpp).
  KILN_CHECK(o.div_factor > 0 && o.final_div_factor > 0,
             "lr schedule onecycle: div_factor and final_div_factor must be > 0, got div_factor=", o.div_factor,
             ", final_div_factor=", o.final_div_factor);
  const double initial_lr = o.max_lr / o.div_factor;
  const double min_lr = initial_lr / o.final_div_factor;
  KILN_CHECK(std::isfinite(initial_lr) && std::isfinite(min_lr),
             "lr schedule onecycle: the start lr max_lr / div_factor = ", initial_lr,
             " and final lr start / final_div_factor = ", min_lr, " must be finite (max_lr=", o.max_lr,
             ", div_factor=", o.div_factor, ", final_div_factor=", o.final_div_factor, ")");
  const double total = static_cast<double>(o.total_steps);
  // torch's phase boundaries, fractional end steps included: {end_step, start_lr, end_lr}
  std::vector<double> phases;
  if (o.three_phase) {
    phases = {o.pct_start * total - 1, initial_lr, o.max_lr, 2 * o.pct_start * total - 2, o.max_lr, initial_lr,
              total - 1, initial_lr, min_lr};
  } else {
    phases = {o.pct_start * total - 1, initial_lr, o.max_lr, total - 1, o.max_lr, min_lr};
  }
  // torch divides by each phase's length and raises ZeroDivisionError for an empty
  // one (pct_start * total == 1, say); here 0 / 0 would be a NaN lr.
  double phase_start = 0;
  for (size_t i = 0; i < phases.size(); i += 3) {
    KILN_CHECK(phases[i] != phase_start, "lr schedule onecycle: phase ", i / 3 + 1, " has no steps (pct_start=",
               o.pct_start, ", total=", o.total_steps, o.three_phase ? ", three_phase=1" : "",
               "); change pct_start or total");
    phase_start = phases[i];
  }
  params_.kind = LrScheduleKind::onecycle;
  params_.total = total;
  params_.cosine_anneal = o.cosine_anneal ? 1 : 0;
  params_.optimizer_lr = optimizer_lr;
  params_.table_size = static_cast<int32_t>(phases.size());
  std::copy(phases.begin(), phases.end(), params_.table);
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
