#include "sweep/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/core/check.h"
#include "engine/core/json_parse.h"

namespace kiln::sweep {

const char* kind_name(ParameterKind kind) {
  switch (kind) {
    case ParameterKind::categorical: return "categorical";
    case ParameterKind::constant: return "constant";
    case ParameterKind::continuous: return "continuous";
    case ParameterKind::integer: return "integer";
  }
  return "?";
}

bool Parameter::log_scale() const {
  return distribution == "log_uniform" || distribution == "log_uniform_values" ||
         distribution == "q_log_uniform_values";
}
double Parameter::low_value() const { return distribution == "log_uniform" ? std::exp(min) : min; }
double Parameter::high_value() const { return distribution == "log_uniform" ? std::exp(max) : max; }

const Parameter* SweepConfig::find(const std::string& wanted) const {
  for (const Parameter& p : parameters)
    if (p.name == wanted) return &p;
  return nullptr;
}

std::string flag_name(const std::string& key) {
  std::string name = key;
  while (!name.empty() && name[0] == '-') name.erase(0, 1);
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

std::string format_value(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number_integer()) return value.dump();
  if (value.is_number_float()) {
    const double x = value.get<double>();
    if (x == std::floor(x) && std::fabs(x) < 1e15) return std::to_string(static_cast<long long>(x));
    char text[64];
    for (int digits = 1; digits <= 17; ++digits) {  // the shortest text that reads back exactly
      std::snprintf(text, sizeof(text), "%.*g", digits, x);
      if (std::strtod(text, nullptr) == x) break;
    }
    return text;
  }
  return value.dump();
}

int64_t whole_number(const nlohmann::json& value, const std::string& where, int64_t low, int64_t high) {
  KILN_CHECK(value.is_number_integer(), where, " must be a whole number, got ", value.dump());
  const bool is_unsigned = value.is_number_unsigned();
  KILN_CHECK(!is_unsigned || value.get<uint64_t>() <= static_cast<uint64_t>(high), where, " must be at most ", high,
             ", got ", value.dump());
  const int64_t n = value.get<int64_t>();
  KILN_CHECK(n >= low && n <= high, where, " must be in [", low, ", ", high, "], got ", n);
  return n;
}

namespace {

// A plain YAML scalar as JSON: integers and reals become numbers, true/false booleans.
// (YAML 1.1 also reads on/off/yes/no as booleans; kiln keeps them strings because
// --batch-norm takes the words on and off.) Quoted scalars always stay strings.
nlohmann::json yaml_scalar(const YAML::Node& node) {
  const std::string text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  if (text == "null" || text == "~" || text.empty()) return nullptr;
  char* end = nullptr;
  const long long integer = std::strtoll(text.c_str(), &end, 10);
  if (end && *end == '\0' && text.find_first_of(".eE") == std::string::npos) return integer;
  const double real = std::strtod(text.c_str(), &end);
  if (end && *end == '\0' && text.find_first_not_of("+-0123456789.eE") == std::string::npos) return real;
  return text;
}

nlohmann::json yaml_node_to_json(const YAML::Node& node, int depth) {
  KILN_CHECK(depth < 32, "YAML nested deeper than 32 levels");
  switch (node.Type()) {
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Scalar: return yaml_scalar(node);
    case YAML::NodeType::Sequence: {
      nlohmann::json list = nlohmann::json::array();
      for (const YAML::Node& item : node) list.push_back(yaml_node_to_json(item, depth + 1));
      return list;
    }
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& item : node) object[item.first.Scalar()] = yaml_node_to_json(item.second, depth + 1);
      return object;
    }
    default: return nullptr;
  }
}

double number(const nlohmann::json& value, const std::string& where) {
  KILN_CHECK(value.is_number(), where, " must be a number, got ", value.dump());
  return value.get<double>();
}

void check_keys(const nlohmann::json& object, const std::set<std::string>& known, const std::string& where) {
  for (const auto& item : object.items()) {
    if (known.count(item.key())) continue;
    std::string listed;
    for (const std::string& k : known) listed += (listed.empty() ? "" : ", ") + k;
    KILN_FAIL(where, ": unknown key '", item.key(), "' (known: ", listed, ")");
  }
}

const std::vector<std::string> kDistributions = {"categorical", "constant", "uniform", "int_uniform", "q_uniform",
                                                 "log_uniform", "log_uniform_values", "q_log_uniform_values"};

Parameter parse_parameter(const std::string& key, const nlohmann::json& spec, const std::string& source) {
  const std::string where = source + ": parameters." + key;
  Parameter p;
  p.name = flag_name(key);
  KILN_CHECK(spec.is_object(), where, " must be a mapping (values:, value:, or distribution: with min: and max:), got ",
             spec.dump());
  check_keys(spec, {"values", "value", "distribution", "min", "max", "q"}, where);
  std::string distribution = spec.value("distribution", std::string());
  if (distribution.empty())  // inferred as the hosted tools do
    distribution = spec.contains("values") ? "categorical"
                   : spec.contains("value") ? "constant"
                   : (spec.contains("min") && spec["min"].is_number_integer() && spec.contains("max") &&
                      spec["max"].is_number_integer())
                       ? "int_uniform"
                       : "uniform";
  std::string listed;
  for (const std::string& d : kDistributions) listed += (listed.empty() ? "" : ", ") + d;
  KILN_CHECK(std::find(kDistributions.begin(), kDistributions.end(), distribution) != kDistributions.end(), where,
             ": unknown distribution '", distribution, "' (kiln implements: ", listed, ")");
  p.distribution = distribution;
  if (distribution == "categorical") {
    KILN_CHECK(spec.contains("values") && spec["values"].is_array() && !spec["values"].empty(), where,
               ": categorical needs a non-empty list values: [...]");
    for (const nlohmann::json& v : spec["values"]) {
      KILN_CHECK(v.is_string() || v.is_number() || v.is_boolean(), where,
                 ": values must be numbers, strings or booleans, got ", v.dump());
      KILN_CHECK(std::find(p.values.begin(), p.values.end(), v) == p.values.end(), where, ": value ", v.dump(),
                 " is listed twice");
      p.values.push_back(v);
    }
    p.kind = ParameterKind::categorical;
    return p;
  }
  if (distribution == "constant") {
    KILN_CHECK(spec.contains("value"), where, ": constant needs value:");
    const nlohmann::json& v = spec["value"];
    KILN_CHECK(v.is_string() || v.is_number() || v.is_boolean(), where,
               ": value must be a number, a string or a boolean, got ", v.dump());
    p.values = {v};
    p.kind = ParameterKind::constant;
    return p;
  }
  KILN_CHECK(spec.contains("min") && spec.contains("max"), where, ": ", distribution, " needs min: and max:");
  KILN_CHECK(!spec.contains("values") && !spec.contains("value"), where, ": ", distribution,
             " takes min: and max:, not values:/value:");
  p.min = number(spec["min"], where + ".min");
  p.max = number(spec["max"], where + ".max");
  KILN_CHECK(std::isfinite(p.min) && std::isfinite(p.max) && p.min < p.max, where, ": min must be below max, got min ",
             p.min, ", max ", p.max);
  if (distribution == "log_uniform_values" || distribution == "q_log_uniform_values")
    KILN_CHECK(p.min > 0, where, ": ", distribution, " needs min > 0 (they are values, sampled in log space), got ",
               p.min, "; log_uniform takes natural-log exponents instead");
  // Values stay exact in a double and in an int64 (|x| <= 2^53).
  constexpr double kExact = 9007199254740992.0;
  KILN_CHECK(std::fabs(p.min) <= kExact && std::fabs(p.max) <= kExact, where, ": min and max must be within +-2^53, got ",
             p.min, " and ", p.max);
  if (distribution == "int_uniform") {
    KILN_CHECK(p.min == std::floor(p.min) && p.max == std::floor(p.max), where,
               ": int_uniform needs whole-number min and max, got ", p.min, " and ", p.max);
    p.kind = ParameterKind::integer;
  } else {
    p.kind = ParameterKind::continuous;
  }
  if (spec.contains("q")) {
    KILN_CHECK(distribution == "q_uniform" || distribution == "q_log_uniform_values", where,
               ": q: is for q_uniform and q_log_uniform_values, not ", distribution);
    p.q = number(spec["q"], where + ".q");
    KILN_CHECK(p.q > 0 && std::isfinite(p.q), where, ".q must be positive, got ", p.q);
  } else if (distribution == "q_uniform" || distribution == "q_log_uniform_values") {
    p.q = 1;  // the hosted tools' default
  }
  return p;
}

}  // namespace

nlohmann::json yaml_to_json(const std::string& text, const std::string& source) {
  try {
    return yaml_node_to_json(YAML::Load(text), 0);
  } catch (const YAML::Exception& e) {
    KILN_FAIL(source, ": not valid YAML: line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ", e.msg);
  }
}

SweepConfig load_sweep_config(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  KILN_CHECK(file, "sweep config ", path, ": cannot be read");
  std::stringstream text;
  text << file.rdbuf();
  const bool yaml = path.size() > 5 && (path.substr(path.size() - 5) == ".yaml" || path.substr(path.size() - 4) == ".yml");
  const bool json = path.size() > 5 && path.substr(path.size() - 5) == ".json";
  KILN_CHECK(yaml || json, "sweep config ", path, ": name it .yaml, .yml or .json");
  return parse_sweep_config(yaml ? yaml_to_json(text.str(), path) : parse_json_limited(text.str(), path), path);
}

SweepConfig parse_sweep_config(const nlohmann::json& doc, const std::string& source) {
  KILN_CHECK(doc.is_object(), source, ": a sweep config is a mapping of keys (method:, parameters:, ...)");
  KILN_CHECK(!doc.contains("command") && !doc.contains("program"), source,
             ": no command:/program: here: every trial is `kiln train`, and every parameter is one of its flags");
  check_keys(doc, {"name", "description", "method", "metric", "parameters", "data", "run_cap", "early_terminate",
                   "seed", "epochs"},
             source);
  SweepConfig c;
  c.source = source;
  return read_json_fields(source, [&] {
    c.method = doc.value("method", std::string());
    KILN_CHECK(c.method == "grid" || c.method == "random" || c.method == "bayes" || c.method == "halving", source,
               ": method must be grid, random, bayes or halving, got '", c.method, "'");
    std::string stem = std::filesystem::path(source).stem().string();
    c.name = doc.value("name", stem);
    KILN_CHECK(!c.name.empty() && c.name.find_first_of("/\\ ") == std::string::npos && c.name[0] != '.', source,
               ": name must be a folder name (no slashes or spaces), got '", c.name, "'");
    if (doc.contains("metric")) {
      const nlohmann::json& metric = doc["metric"];
      KILN_CHECK(metric.is_object(), source, ": metric must be {name: ..., goal: ...}");
      check_keys(metric, {"name", "goal"}, source + ": metric");
      c.metric = metric.value("name", c.metric);
      c.goal = metric.value("goal", c.metric == "val_loss" ? std::string("minimize") : std::string("maximize"));
    }
    KILN_CHECK(c.metric == "val_accuracy" || c.metric == "val_loss" || c.metric == "val_f1", source,
               ": metric.name must be val_accuracy, val_loss or val_f1 (a column of the trials' epochs.csv), got '",
               c.metric, "'");
    KILN_CHECK(c.goal == "maximize" || c.goal == "minimize", source, ": metric.goal must be maximize or minimize, got '",
               c.goal, "'");
    c.data = doc.value("data", c.data);
    const auto field = [&](const nlohmann::json& object, const char* key, int64_t fallback, int64_t low, int64_t high,
                           const std::string& where) {
      return object.contains(key) ? whole_number(object[key], where + key, low, high) : fallback;
    };
    c.run_cap = field(doc, "run_cap", 0, 0, 1000000, source + ": ");
    c.seed = static_cast<uint64_t>(field(doc, "seed", 0, 0, INT64_MAX, source + ": "));
    c.epochs = static_cast<int>(field(doc, "epochs", 10, 1, 1000000, source + ": "));
    if (doc.contains("early_terminate")) {
      const nlohmann::json& et = doc["early_terminate"];
      KILN_CHECK(et.is_object(), source, ": early_terminate must be {type: hyperband, min_iter: N, eta: N}");
      check_keys(et, {"type", "min_iter", "eta"}, source + ": early_terminate");
      KILN_CHECK(et.value("type", std::string()) == "hyperband", source,
                 ": early_terminate.type must be hyperband, got '", et.value("type", std::string()), "'");
      c.early_terminate.enabled = true;
      c.early_terminate.min_iter = static_cast<int>(field(et, "min_iter", 1, 1, 1000000, source + ": early_terminate."));
      c.early_terminate.eta = static_cast<int>(field(et, "eta", 3, 2, 1000, source + ": early_terminate."));
    }
    if (c.method == "halving") c.early_terminate.enabled = true;  // with early_terminate's rungs or the defaults
    KILN_CHECK(!c.early_terminate.enabled || c.early_terminate.min_iter < c.epochs, source,
               ": early_terminate.min_iter (", c.early_terminate.min_iter, ") must be below epochs (", c.epochs,
               "), or no trial is ever judged before it ends");
    KILN_CHECK(doc.contains("parameters") && doc["parameters"].is_object() && !doc["parameters"].empty(), source,
               ": parameters: must map kiln train flags to values:, value: or a distribution:");
    for (const auto& item : doc["parameters"].items()) {
      Parameter p = parse_parameter(item.key(), item.value(), source);
      KILN_CHECK(c.find(p.name) == nullptr, source, ": parameters.", item.key(), " names --", p.name, " a second time");
      for (const char* reserved : {"run-dir", "resume", "split-file", "quiet", "threads", "monitor", "epochs"})
        KILN_CHECK(p.name != reserved, source, ": parameters.", item.key(), ": --", p.name, " is set by kiln sweep",
                   p.name == "epochs"     ? " from the top-level epochs: key (the rungs need one value)"
                   : p.name == "monitor" ? " from metric.name"
                                         : " for each trial");
      c.parameters.push_back(p);
    }
    const bool searchable = std::any_of(c.parameters.begin(), c.parameters.end(),
                                        [](const Parameter& p) { return p.kind != ParameterKind::constant; });
    KILN_CHECK(searchable, source, ": every parameter is a constant (value:): there is nothing to sweep");
    if (c.method == "grid")
      for (const Parameter& p : c.parameters)
        KILN_CHECK(p.kind == ParameterKind::categorical || p.kind == ParameterKind::constant, source,
                   ": parameters.", p.name, ": method grid needs values: lists (", p.distribution,
                   " has no grid points); use random or bayes");
    const bool all_values = std::all_of(c.parameters.begin(), c.parameters.end(), [](const Parameter& p) {
      return p.kind == ParameterKind::categorical || p.kind == ParameterKind::constant;
    });
    // (halving over values: lists races the whole grid, like method grid)
    KILN_CHECK(c.method == "grid" || (c.method == "halving" && all_values) || c.run_cap > 0, source, ": method ",
               c.method, " needs run_cap: (the number of trials), or --max-runs");
    return c;
  });
}

nlohmann::json SweepConfig::parameters_json() const {
  nlohmann::json block = nlohmann::json::object();
  for (const Parameter& p : parameters) {
    nlohmann::json entry = {{"kind", kind_name(p.kind)}, {"distribution", p.distribution}};
    if (p.kind == ParameterKind::categorical || p.kind == ParameterKind::constant) {
      entry["values"] = p.values;
    } else {
      entry["min"] = p.min;
      entry["max"] = p.max;
      if (p.q > 0) entry["q"] = p.q;
    }
    block[p.name] = entry;
  }
  return block;
}

std::vector<Parameter> parameters_from_json(const nlohmann::json& block, const std::string& source) {
  std::vector<Parameter> out;
  KILN_CHECK(block.is_object(), source, ": parameters must be an object");
  for (const auto& item : block.items()) {
    nlohmann::json spec = {{"distribution", item.value().at("distribution")}};
    if (item.value().contains("values")) {
      if (spec["distribution"] == "constant")
        spec["value"] = item.value()["values"].at(0);
      else
        spec["values"] = item.value()["values"];
    }
    for (const char* key : {"min", "max", "q"})
      if (item.value().contains(key)) spec[key] = item.value()[key];
    out.push_back(parse_parameter(item.key(), spec, source));
  }
  return out;
}

}  // namespace kiln::sweep
