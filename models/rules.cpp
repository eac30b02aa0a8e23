#include "models/rules.h"

#include <algorithm>
#include <set>

#include "engine/core/json_parse.h"
#include "engine/nn/layers.h"
#include "models/blocks.h"
#include "models/summary.h"

namespace kiln::models {

namespace {

const char* kRuleNames = "no-dropout, no-fc, no-1x1-expand, max-params=N, max-epochs=N, no-pretrained, "
                         "no-val-in-train, tiny-imagenet";

// The pointwise conv of a SeparableConv2d: its 1x1 widening is half of a separable conv.
std::set<const nn::Module*> separable_pointwise_convs(nn::Module& model) {
  std::set<const nn::Module*> out;
  for_each_module(model, [&](const std::string&, nn::Module& m) {
    if (auto* separable = dynamic_cast<nn::SeparableConv2d*>(&m)) out.insert(separable->pointwise.get());
  });
  return out;
}

}  // namespace

int64_t parse_count(const std::string& text, const std::string& flag) {
  double scale = 1;
  std::string number = text;
  if (!text.empty()) {
    const char suffix = text.back();
    if (suffix == 'K' || suffix == 'k') scale = 1e3;
    if (suffix == 'M' || suffix == 'm') scale = 1e6;
    if (suffix == 'G' || suffix == 'g') scale = 1e9;
    if (scale != 1) number = text.substr(0, text.size() - 1);
  }
  try {
    size_t end = 0;
    const double value = std::stod(number, &end);
    if (end == number.size() && value >= 0) return static_cast<int64_t>(value * scale + 0.5);
  } catch (const std::exception&) {
  }
  KILN_FAIL(flag, " needs a count such as 26M, 1.5K or 1000, got '", text, "'");
}

RuleSet parse_rules(const std::string& spec) {
  RuleSet rules;
  rules.spec = spec;
  KILN_CHECK(!spec.empty(), "--rules is empty (valid: ", kRuleNames, ")");
  std::string list = spec + ",";
  for (size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1) {
    const std::string rule = list.substr(start, comma - start);
    const size_t eq = rule.find('=');
    const std::string name = rule.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : rule.substr(eq + 1);
    if (name == "tiny-imagenet") {
      rules.no_dropout = rules.no_fc = rules.no_1x1_expand = rules.no_pretrained = rules.no_val_in_train = true;
      rules.max_params = 26000000;
      rules.max_epochs = 500;
    } else if (name == "no-dropout") {
      rules.no_dropout = true;
    } else if (name == "no-fc") {
      rules.no_fc = true;
    } else if (name == "no-1x1-expand") {
      rules.no_1x1_expand = true;
    } else if (name == "no-pretrained") {
      rules.no_pretrained = true;
    } else if (name == "no-val-in-train") {
      rules.no_val_in_train = true;
    } else if (name == "max-params") {
      rules.max_params = parse_count(value, "--rules max-params");
    } else if (name == "max-epochs") {
      rules.max_epochs = parse_count(value, "--rules max-epochs");
    } else {
      KILN_FAIL("--rules: unknown rule '", rule, "' (valid: ", kRuleNames, ")");
    }
  }
  return rules;
}

std::vector<std::string> largest_layers(const nn::Module& model, size_t count) {
  std::vector<std::pair<int64_t, std::string>> sizes;
  nn::Module& root = const_cast<nn::Module&>(model);  // for_each_module walks mutable trees; nothing is changed
  for_each_module(root, [&](const std::string& name, nn::Module& m) {
    int64_t own = m.parameter_count();
    for (const auto& [child_name, child] : m.named_children()) own -= child->parameter_count();
    if (own > 0) sizes.emplace_back(own, name.empty() ? m.type_name() : name);
  });
  std::stable_sort(sizes.begin(), sizes.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < sizes.size() && i < count; ++i)
    out.push_back(sizes[i].second + " " + with_thousands(sizes[i].first));
  return out;
}

RulesReport check_rules(const RuleSet& rules, nn::Module* model, const nlohmann::json* run_config,
                        const nlohmann::json* split) {
  RulesReport report;
  const auto violate = [&](const std::string& rule, const std::string& where, const std::string& detail) {
    report.violations.push_back({rule, where, detail});
  };
  const bool model_rules = rules.no_dropout || rules.no_fc || rules.no_1x1_expand || rules.max_params >= 0;
  if (model_rules && model == nullptr) report.not_checked.push_back("the model rules (no model given)");
  if (model) {
    const std::set<const nn::Module*> pointwise = separable_pointwise_convs(*model);
    for_each_module(*model, [&](const std::string& name, nn::Module& m) {
      if (auto* dropout = dynamic_cast<nn::Dropout*>(&m); dropout && rules.no_dropout && dropout->p > 0)
        violate("no-dropout", name, str("Dropout(p=", dropout->p, ")"));
      if (auto* linear = dynamic_cast<nn::Linear*>(&m); linear && rules.no_fc)
        violate("no-fc", name, str("Linear(", linear->weight.size(1), " -> ", linear->weight.size(0), ")"));
      if (auto* conv = dynamic_cast<nn::Conv2d*>(&m); conv && rules.no_1x1_expand && !pointwise.count(conv)) {
        const Shape& w = conv->weight.shape();  // (K, C / groups, R, S)
        const int64_t in_channels = w[1] * conv->params.groups;
        if (w[2] == 1 && w[3] == 1 && conv->params.groups == 1 && w[0] > in_channels)
          violate("no-1x1-expand", name, str("1x1 conv widening ", in_channels, " -> ", w[0], " channels"));
      }
    });
    if (rules.max_params >= 0 && model->parameter_count() > rules.max_params) {
      std::string largest;
      for (const std::string& layer : largest_layers(*model)) largest += (largest.empty() ? "" : "; ") + layer;
      violate("max-params", "model", str(with_thousands(model->parameter_count()), " parameters > ",
                                         with_thousands(rules.max_params), " (largest: ", largest, ")"));
    }
  }
  const bool run_rules = rules.max_epochs >= 0 || rules.no_pretrained;
  if (run_rules && run_config == nullptr) report.not_checked.push_back("max-epochs, no-pretrained (no run config)");
  if (run_config) {
    if (rules.max_epochs >= 0) {
      const int64_t epochs = json_int64_or(*run_config, "epochs", -1, "the run's config");
      if (epochs < 0) report.not_checked.push_back("max-epochs (config.json has no 'epochs')");
      if (epochs > rules.max_epochs)
        violate("max-epochs", "config.json", str("epochs ", epochs, " > ", rules.max_epochs));
    }
    if (rules.no_pretrained && run_config->contains("model")) {
      const std::string pretrained = run_config->at("model").value("pretrained", std::string());
      if (!pretrained.empty()) violate("no-pretrained", "config.json", "model.pretrained = " + pretrained);
    }
  }
  if (rules.no_val_in_train && split == nullptr) report.not_checked.push_back("no-val-in-train (no split.json)");
  if (rules.no_val_in_train && split) {
    KILN_CHECK(split->contains("train"), "split.json: no 'train' list");
    const auto train_ids = split->at("train").get<std::vector<std::string>>();
    const std::set<std::string> train(train_ids.begin(), train_ids.end());
    for (const char* held_out : {"val", "test"}) {
      if (!split->contains(held_out)) continue;
      int64_t shared = 0;
      std::string first;
      for (const std::string& id : split->at(held_out).get<std::vector<std::string>>())
        if (train.count(id)) {
          if (shared++ == 0) first = id;
        }
      if (shared > 0)
        violate("no-val-in-train", "split.json",
                str(shared, " ", held_out, " image(s) also in train, the first '", first, "'"));
    }
  }
  // One verdict per rule of the set, from what was given and what was found.
  const auto violated = [&](const std::string& rule) {
    return std::any_of(report.violations.begin(), report.violations.end(),
                       [&](const RuleViolation& v) { return v.rule == rule; });
  };
  const auto verdict = [&](const std::string& rule, const char* missing) {
    report.verdicts.push_back({rule, missing ? std::string("not checked (") + missing + ")"
                                             : violated(rule) ? "violated" : "holds"});
  };
  const char* no_model = model ? nullptr : "no model";
  const char* no_config = run_config ? nullptr : "no run config";
  if (rules.no_dropout) verdict("no-dropout", no_model);
  if (rules.no_fc) verdict("no-fc", no_model);
  if (rules.no_1x1_expand) verdict("no-1x1-expand", no_model);
  if (rules.max_params >= 0) verdict("max-params", no_model);
  if (rules.max_epochs >= 0)
    verdict("max-epochs", !run_config ? no_config
                          : json_int64_or(*run_config, "epochs", -1, "the run's config") < 0 ? "config.json has no 'epochs'"
                                                                         : nullptr);
  if (rules.no_pretrained) verdict("no-pretrained", no_config);
  if (rules.no_val_in_train) verdict("no-val-in-train", split ? nullptr : "no split.json");
  return report;
}

std::string RulesReport::to_text() const {
  std::string out;
  for (const RuleViolation& v : violations) out += "violation: " + v.rule + " at " + v.where + ": " + v.detail + "\n";
  for (const std::string& n : not_checked) out += "not checked: " + n + "\n";
  // Unchecked rules are not claimed to hold.
  if (violations.empty()) out += not_checked.empty() ? "all rules hold\n" : "all checked rules hold\n";
  return out;
}

nlohmann::json RulesReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const RuleViolation& v : violations) list.push_back({{"rule", v.rule}, {"where", v.where}, {"detail", v.detail}});
  nlohmann::json verdict_list = nlohmann::json::array();
  for (const auto& [rule, verdict] : verdicts) verdict_list.push_back({{"rule", rule}, {"verdict", verdict}});
  return {{"holds", holds()}, {"violations", list}, {"not_checked", not_checked}, {"verdicts", verdict_list}};
}

}  // namespace kiln::models
