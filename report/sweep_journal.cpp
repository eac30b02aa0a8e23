// Reading a sweep's journal.json (report/sweep_journal.h).
#include "report/sweep_journal.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "engine/core/check.h"

namespace kiln::report {
namespace {

using nlohmann::json;

// Reads the fields of one JSON object; every error names the file and the field's path.
class Fields {
 public:
  Fields(const json& object, const std::string& file, const std::string& path)
      : object_(object), file_(file), path_(path) {
    KILN_CHECK(object.is_object(), file, ": ", path.empty() ? "the journal" : path, ": expected a JSON object, got ",
               object.type_name());
  }

  std::string where(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool has(const std::string& key) const { return object_.contains(key) && !object_[key].is_null(); }
  const json& at(const std::string& key) const {
    KILN_CHECK(object_.contains(key), file_, ": ", where(key), " is missing");
    return object_[key];
  }

  std::string text(const std::string& key, const std::optional<std::string>& fallback = std::nullopt) const {
    if (!has(key) && fallback) return *fallback;
    const json& v = at(key);
    KILN_CHECK(v.is_string(), file_, ": ", where(key), ": expected a string, got ", v.dump());
    return v.get<std::string>();
  }
  double number(const std::string& key) const {
    const json& v = at(key);
    KILN_CHECK(v.is_number(), file_, ": ", where(key), ": expected a number, got ", v.dump());
    return v.get<double>();
  }
  std::optional<double> optional_number(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    return number(key);
  }
  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const {
    if (!has(key) && fallback) return *fallback;
    const json& v = at(key);
    KILN_CHECK(v.is_number_integer() || v.is_number_unsigned(), file_, ": ", where(key),
               ": expected an integer, got ", v.dump());
    return v.get<int64_t>();
  }
  std::string one_of(const std::string& key, const std::vector<std::string>& allowed,
                     const std::optional<std::string>& fallback = std::nullopt) const {
    const std::string value = text(key, fallback);
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      KILN_FAIL(file_, ": ", where(key), ": expected one of ", list, ", got '", value, "'");
    }
    return value;
  }

 private:
  const json& object_;
  const std::string& file_;
  std::string path_;
};

SweepParameter parse_parameter(const std::string& name, const json& spec, const std::string& file) {
  const Fields f(spec, file, "parameters." + name);
  SweepParameter p;
  p.name = name;
  p.kind = f.one_of("kind", {"categorical", "continuous", "integer", "constant"});
  if (f.has("values")) {
    const json& values = f.at("values");
    KILN_CHECK(values.is_array(), file, ": ", f.where("values"), ": expected an array, got ", values.dump());
    p.values.assign(values.begin(), values.end());
  }
  p.min = f.optional_number("min");
  p.max = f.optional_number("max");
  p.distribution = f.text("distribution", std::string());
  p.q = f.optional_number("q");
  if (p.kind == "categorical" || p.kind == "constant")
    KILN_CHECK(!p.values.empty(), file, ": ", f.where("values"), ": a ", p.kind, " parameter needs its values");
  if (p.kind == "continuous" || p.kind == "integer") {
    KILN_CHECK(p.min && p.max, file, ": parameters.", name, ": a ", p.kind, " parameter needs min and max");
    KILN_CHECK(*p.min <= *p.max, file, ": parameters.", name, ": min ", *p.min, " is above max ", *p.max);
  }
  return p;
}

SweepTrial parse_trial(const json& spec, const std::string& file, size_t index) {
  const Fields f(spec, file, "trials[" + std::to_string(index) + "]");
  SweepTrial t;
  t.id = static_cast<int>(f.integer("id"));
  t.name = f.text("name", "trial-" + std::to_string(t.id));
  t.created = f.text("created", std::string());
  t.order = static_cast<int>(f.integer("order", static_cast<int64_t>(index)));
  if (f.has("params")) {
    t.params = f.at("params");
    KILN_CHECK(t.params.is_object(), file, ": ", f.where("params"), ": expected an object of flag: value, got ",
               t.params.dump());
  }
  t.status = f.one_of("status", {"pending", "running", "finished", "stopped", "failed"});
  t.run_dir = f.text("run_dir", t.name);
  t.epochs_done = static_cast<int>(f.integer("epochs_done", 0));
  t.metric = f.optional_number("metric");
  if (f.has("rungs")) {
    const json& rungs = f.at("rungs");
    KILN_CHECK(rungs.is_array(), file, ": ", f.where("rungs"), ": expected an array, got ", rungs.dump());
    for (size_t r = 0; r < rungs.size(); ++r) {
      const Fields rung(rungs[r], file, f.where("rungs") + "[" + std::to_string(r) + "]");
      SweepRung out;
      out.epoch = static_cast<int>(rung.integer("epoch"));
      out.metric = rung.number("metric");
      if (rung.has("kept")) {
        KILN_CHECK(rung.at("kept").is_boolean(), file, ": ", rung.where("kept"), ": expected true or false, got ",
                   rung.at("kept").dump());
        out.kept = rung.at("kept").get<bool>();
      }
      t.rungs.push_back(out);
    }
  }
  t.command = f.text("command", std::string());
  t.error = f.text("error", std::string());
  return t;
}

}  // namespace

bool SweepParameter::log_scale() const { return distribution.find("log_uniform") != std::string::npos; }

bool SweepParameter::swept() const {
  if (kind == "constant") return false;
  if (kind == "categorical") return values.size() > 1;
  return min && max && *min < *max;
}

const SweepTrial* SweepJournal::trial(int id) const {
  for (const SweepTrial& t : trials)
    if (t.id == id) return &t;
  return nullptr;
}

SweepJournal parse_sweep_journal(const json& journal, const std::string& file) {
  const Fields f(journal, file, "");
  SweepJournal j;
  j.file = file;
  const std::string format = f.text("format");
  KILN_CHECK(format == kSweepJournalFormat, file, ": format: expected '", kSweepJournalFormat, "', got '", format,
             "' (a journal written by another kiln version?)");
  j.name = f.text("name");
  j.method = f.one_of("method", {"grid", "random", "bayes", "halving"});
  j.seed = f.integer("seed", 0);
  if (f.has("metric")) {
    const Fields metric(f.at("metric"), file, "metric");
    j.metric_name = metric.text("name");
    j.goal = metric.one_of("goal", {"maximize", "minimize"}, std::string("maximize"));
  }
  j.data = f.text("data", std::string());
  j.split = f.text("split", std::string());
  if (f.has("parameters")) {
    const json& parameters = f.at("parameters");
    KILN_CHECK(parameters.is_object(), file, ": parameters: expected an object of flag: spec, got ", parameters.type_name());
    for (const auto& [name, spec] : parameters.items()) j.parameters.push_back(parse_parameter(name, spec, file));
  }
  const json& trials = f.at("trials");
  KILN_CHECK(trials.is_array(), file, ": trials: expected an array, got ", trials.type_name());
  for (size_t i = 0; i < trials.size(); ++i) {
    SweepTrial t = parse_trial(trials[i], file, i);
    KILN_CHECK(j.trial(t.id) == nullptr, file, ": trials[", i, "].id: ", t.id, " is used by an earlier trial too");
    j.trials.push_back(std::move(t));
  }
  if (f.has("best")) {
    j.best = static_cast<int>(f.integer("best"));
    KILN_CHECK(j.trial(*j.best) != nullptr, file, ": best: no trial has id ", *j.best);
  }
  if (f.has("finish")) {
    const Fields finish(f.at("finish"), file, "finish");
    SweepFinish out;
    out.trial = static_cast<int>(finish.integer("trial"));
    KILN_CHECK(j.trial(out.trial) != nullptr, file, ": finish.trial: no trial has id ", out.trial);
    out.test_accuracy = finish.number("test_accuracy");
    out.test_loss = finish.number("test_loss");
    out.run_dir = finish.text("run_dir");
    out.checkpoint = finish.text("checkpoint", std::string());
    j.finish = out;
  }
  return j;
}

SweepJournal read_sweep_journal(const std::string& sweep_dir) {
  const std::string file = (std::filesystem::path(sweep_dir) / "journal.json").string();
  std::ifstream in(file);
  KILN_CHECK(in.good(), file, ": cannot open the sweep journal (is '", sweep_dir, "' a sweep folder written by kiln sweep?)");
  json journal;
  try {
    journal = json::parse(in);
  } catch (const json::parse_error& e) {
    KILN_FAIL(file, ": not valid JSON: ", e.what());
  }
  return parse_sweep_journal(journal, file);
}

bool is_sweep_folder(const std::string& dir) {
  return std::filesystem::is_regular_file(std::filesystem::path(dir) / "journal.json");
}

}  // namespace kiln::report
