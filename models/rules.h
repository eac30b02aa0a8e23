// Benchmark rules: what a course's capped benchmark forbids, checked on the built
// model (module types and names) and on a run's folder (config.json, split.json),
// so a student learns of a violation before days of training, not after.
//
//   no-dropout        no Dropout module (p > 0)
//   no-fc             no Linear module: a classifier must be a 1x1 conv on the pooled map
//   no-1x1-expand     no 1x1 conv (groups 1) with more output than input channels; the
//                     pointwise half of a SeparableConv2d is part of a separable conv
//                     and is allowed
//   max-params=26M    at most that many parameters (K, M, G suffixes; plain numbers too)
//   max-epochs=500    the run's config asks for at most that many epochs
//   no-pretrained     the run started from no pretrained weights
//   no-val-in-train   no image id of the run's split is both a training and a
//                     validation or test image
//   tiny-imagenet     all of the above with 26M and 500 (the course's benchmark)
//
// Model rules need a model, run rules need the run's config and split; a rule whose
// input is absent is reported as not checked rather than as holding.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "engine/nn/module.h"

namespace kiln::models {

struct RuleSet {
  bool no_dropout = false, no_fc = false, no_1x1_expand = false, no_pretrained = false, no_val_in_train = false;
  int64_t max_params = -1;  // -1: not checked
  int64_t max_epochs = -1;
  std::string spec;         // as given, for the report
};

// "tiny-imagenet" or a comma-separated list of the rules above. Errors name the
// unknown rule and list the valid ones.
RuleSet parse_rules(const std::string& spec);

// "26M" -> 26000000, "1.5K" -> 1500, "1000" -> 1000; errors name `flag`.
int64_t parse_count(const std::string& text, const std::string& flag);

struct RuleViolation {
  std::string rule;    // "no-fc"
  std::string where;   // the module ("head.2") or the file ("config.json")
  std::string detail;  // "Linear(16 -> 10)"
};

struct RulesReport {
  std::vector<RuleViolation> violations;
  std::vector<std::string> not_checked;  // rules whose input was not given
  // Every rule of the set in order, with its verdict: "holds", "violated" or
  // "not checked (why)" (the run report's table).
  std::vector<std::pair<std::string, std::string>> verdicts;
  bool holds() const { return violations.empty(); }
  // Every violation and unchecked rule on a line, then "all rules hold" (or "all
  // checked rules hold" when some could not be checked) if there is no violation.
  std::string to_text() const;
  nlohmann::json to_json() const;        // for the run report
};

// model, run_config (config.json) and split (split.json) may each be null.
RulesReport check_rules(const RuleSet& rules, nn::Module* model, const nlohmann::json* run_config,
                        const nlohmann::json* split);

// The five largest layers by parameters, "layer4.1.conv2 2,359,296" each (for
// the --max-params error and the max-params violation).
std::vector<std::string> largest_layers(const nn::Module& model, size_t count = 5);

}  // namespace kiln::models
