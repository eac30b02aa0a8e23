// A sweep configuration: which `kiln train` flags to vary, how, and how to judge a
// trial. It reads like the hosted tools' sweep files (docs/sweeps.md), in YAML or JSON:
//
//   name: cnn5-fashion            method: grid | random | bayes | halving
//   metric: {name: val_accuracy, goal: maximize}
//   data: fashion-mnist           run_cap: 20        seed: 0        epochs: 9
//   early_terminate: {type: hyperband, min_iter: 1, eta: 3}
//   parameters:
//     lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
//     activation: {values: [relu, gelu, silu]}
//     filters: {value: 16}        # a fixed flag
//
// Every parameter name is a `kiln train` flag (weight_decay and weight-decay both
// mean --weight-decay). This file checks the structure (keys, distributions, ranges);
// whether a flag exists and accepts a value is checked by the caller with the train
// command's own option table (tools/train_options.h), before any trial starts.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::sweep {

enum class ParameterKind { categorical, constant, continuous, integer };
const char* kind_name(ParameterKind kind);

struct Parameter {
  std::string name;          // the train flag without "--", dashes: "weight-decay"
  ParameterKind kind = ParameterKind::categorical;
  std::string distribution;  // categorical, constant, uniform, int_uniform, q_uniform,
                             // log_uniform, log_uniform_values, q_log_uniform_values
  std::vector<nlohmann::json> values;  // categorical (the choices) and constant (one)
  double min = 0, max = 0;             // as written (log_uniform: natural-log exponents)
  double q = 0;                        // q_*: the quantum (0: none)
  // Sampled in log space (log_uniform, log_uniform_values, q_log_uniform_values).
  bool log_scale() const;
  // The bounds of the value itself (log_uniform: exp(min), exp(max)).
  double low_value() const;
  double high_value() const;
};

struct EarlyTerminate {
  bool enabled = false;
  int min_iter = 1;  // epochs before the first rung
  int eta = 3;       // keep the best 1/eta at each rung
};

struct SweepConfig {
  std::string source;    // the file it was read from (for messages)
  std::string name;
  std::string method;    // grid | random | bayes | halving
  std::string metric = "val_accuracy";
  std::string goal = "maximize";
  std::string data = "fashion-mnist";
  int64_t run_cap = 0;   // 0: none (grid: the whole grid)
  uint64_t seed = 0;
  int epochs = 10;
  EarlyTerminate early_terminate;
  std::vector<Parameter> parameters;  // sorted by name (JSON objects are); constants included

  bool maximize() const { return goal == "maximize"; }
  const Parameter* find(const std::string& name) const;
  nlohmann::json parameters_json() const;  // the journal's "parameters" block
};

// YAML (by file extension .yaml/.yml) or JSON. Throws kiln::Error naming the file and
// the key for anything unknown, missing or impossible.
SweepConfig load_sweep_config(const std::string& path);
// The same from parsed JSON (YAML is converted to JSON first: plain scalars that read
// as integers, reals or true/false become numbers and booleans, all else strings).
SweepConfig parse_sweep_config(const nlohmann::json& document, const std::string& source);
nlohmann::json yaml_to_json(const std::string& text, const std::string& source);

// The journal's parameters block back into Parameters (kiln sweep --resume).
std::vector<Parameter> parameters_from_json(const nlohmann::json& block, const std::string& source);

// A whole number in [low, high] from a config or journal field, or a kiln::Error naming
// `where` (a real, a string or an out-of-range value: never a silent cast).
int64_t whole_number(const nlohmann::json& value, const std::string& where, int64_t low, int64_t high);

// "weight_decay" -> "weight-decay"; "--lr" -> "lr".
std::string flag_name(const std::string& key);
// A value as a command-line word: the shortest decimal that reads back as the same
// double, strings as they are, booleans true/false.
std::string format_value(const nlohmann::json& value);

}  // namespace kiln::sweep
