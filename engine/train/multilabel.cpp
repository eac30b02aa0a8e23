#include "engine/train/multilabel.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/core/check.h"
#include "engine/ops/loss.h"
#include "engine/tensor/factory.h"

namespace kiln::train {

Tensor MultiLabelSetup::loss_of(const Tensor& logits, const Tensor& targets) const {
  if (loss == "focal") {
    FocalOptions options;
    options.gamma = focal_gamma;
    options.alpha = focal_alpha;
    return sigmoid_focal_loss(logits, targets, options);
  }
  BceOptions options;
  if (!pos_weight.empty()) {
    if (!pos_weight_tensor_.defined() || pos_weight_tensor_.device() != logits.device()) {
      pos_weight_tensor_ =
          from_vector(pos_weight, {static_cast<int64_t>(pos_weight.size())}, {DType::f32}).to(logits.device());
    }
    options.pos_weight = pos_weight_tensor_;
  }
  return binary_cross_entropy_with_logits(logits, targets, options);
}

std::string MultiLabelSetup::describe() const {
  std::ostringstream out;
  if (loss == "focal") {
    out << "sigmoid + focal loss (gamma " << focal_gamma << ", alpha ";
    if (focal_alpha < 0) out << "none"; else out << focal_alpha;
    out << ")";
  } else {
    out << "sigmoid + BCE" << (pos_weight.empty() ? "" : " with pos_weight");
  }
  return out.str();
}

nlohmann::json MultiLabelSetup::to_json() const {
  nlohmann::json j = {{"loss", loss}, {"rule", rule.to_json()}};
  if (loss == "focal") j.update({{"gamma", focal_gamma}, {"alpha", focal_alpha}});
  if (!pos_weight.empty()) j["pos_weight"] = pos_weight;
  return j;
}

MultiLabelSetup MultiLabelSetup::from_json(const nlohmann::json& j) {
  MultiLabelSetup setup;
  setup.enabled = true;
  setup.loss = j.value("loss", std::string("bce"));
  setup.focal_gamma = j.value("gamma", 2.0);
  setup.focal_alpha = j.value("alpha", 0.25);
  if (j.contains("pos_weight")) setup.pos_weight = j["pos_weight"].get<std::vector<double>>();
  setup.rule = metrics::DecisionRule::from_json(j.at("rule"));
  return setup;
}

void parse_loss_spec(const std::string& spec, MultiLabelSetup& setup) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  KILN_CHECK(name == "bce" || name == "focal", "--loss: expected bce or focal[:gamma=2,alpha=0.25], got '", spec,
             "'");
  setup.loss = name;
  if (colon == std::string::npos) return;
  KILN_CHECK(name == "focal", "--loss: bce takes no parameters (got '", spec, "'); use --pos-weight");
  std::stringstream rest(spec.substr(colon + 1));
  std::string item;
  while (std::getline(rest, item, ',')) {
    const size_t eq = item.find('=');
    KILN_CHECK(eq != std::string::npos, "--loss: expected key=value in '", spec, "', got '", item, "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    double number = 0;
    try {
      size_t used = 0;
      number = std::stod(value, &used);
      KILN_CHECK(used == value.size(), "");
    } catch (...) {
      KILN_CHECK(key == "alpha" && value == "none", "--loss: ", key, " must be a number, got '", value, "'");
      number = -1;
    }
    if (key == "gamma") {
      KILN_CHECK(number >= 0, "--loss: gamma must be >= 0, got ", number);
      setup.focal_gamma = number;
    } else if (key == "alpha") {
      KILN_CHECK(number <= 1, "--loss: alpha must be in [0, 1] or none, got ", value);
      setup.focal_alpha = number;
    } else {
      KILN_CHECK(false, "--loss: unknown focal parameter '", key, "' (known: gamma, alpha)");
    }
  }
}

std::vector<double> auto_pos_weight(const Tensor& targets, double cap) {
  KILN_CHECK(targets.defined() && targets.dim() == 2 && targets.dtype() == DType::f32,
             "auto_pos_weight: targets must be f32 (N, K), got ", targets.defined() ? targets.describe() : "none");
  const int64_t N = targets.size(0), K = targets.size(1);
  std::vector<double> positives(K, 0.0);
  const float* t = targets.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) positives[k] += t[n * K + k] > 0.5f;
  std::vector<double> weights(K);
  for (int64_t k = 0; k < K; ++k)
    weights[k] = positives[k] == 0 ? cap : std::min(cap, (static_cast<double>(N) - positives[k]) / positives[k]);
  return weights;
}

std::vector<double> read_pos_weight_file(const std::string& path, const std::vector<std::string>& class_names) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "--pos-weight: cannot open '", path, "' (expected auto, none or a JSON file)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    KILN_CHECK(false, "--pos-weight: '", path, "' is not JSON: ", e.what());
  }
  const size_t K = class_names.size();
  std::vector<double> weights(K);
  if (j.is_array()) {
    KILN_CHECK(j.size() == K, "--pos-weight: '", path, "' lists ", j.size(), " weights for ", K, " classes");
    for (size_t k = 0; k < K; ++k) {
      KILN_CHECK(j[k].is_number() && j[k].get<double>() > 0, "--pos-weight: '", path, "' entry ", k,
                 " must be a positive number");
      weights[k] = j[k].get<double>();
    }
    return weights;
  }
  KILN_CHECK(j.is_object(), "--pos-weight: '", path, "' must hold a list of ", K,
             " numbers or an object {class: weight}");
  for (size_t k = 0; k < K; ++k) {
    KILN_CHECK(j.contains(class_names[k]), "--pos-weight: '", path, "' has no weight for class '", class_names[k],
               "'");
    weights[k] = j[class_names[k]].get<double>();
    KILN_CHECK(weights[k] > 0, "--pos-weight: '", path, "': the weight of '", class_names[k], "' must be positive");
  }
  KILN_CHECK(j.size() == K, "--pos-weight: '", path, "' names ", j.size(), " classes, the data has ", K);
  return weights;
}

Tensor multi_hot_targets(const data::Dataset& dataset) {
  if (dataset.targets.defined()) return dataset.targets;
  const int64_t N = dataset.size(), K = dataset.num_classes();
  Tensor targets = zeros({N, K}, {DType::f32});
  const int64_t* labels = dataset.labels.data<int64_t>();
  for (int64_t n = 0; n < N; ++n) targets.data<float>()[n * K + labels[n]] = 1.0f;
  return targets;
}

Tensor targets_for_classes(const data::Dataset& dataset, const std::vector<std::string>& model_classes) {
  const Tensor own = multi_hot_targets(dataset);
  const int64_t N = dataset.size(), K_data = dataset.num_classes(), K = static_cast<int64_t>(model_classes.size());
  std::vector<int64_t> column(K_data);
  for (int64_t k = 0; k < K_data; ++k) {
    const auto found = std::find(model_classes.begin(), model_classes.end(), dataset.class_names[k]);
    KILN_CHECK(found != model_classes.end(), "'", dataset.source, "': label '", dataset.class_names[k],
               "' is not one of the model's ", K, " classes (the checkpoint knows: ",
               [&] {
                 std::string listed;
                 for (size_t i = 0; i < model_classes.size() && i < 12; ++i)
                   listed += (i ? ", " : "") + model_classes[i];
                 return model_classes.size() > 12 ? listed + ", ..." : listed;
               }(),
               ")");
    column[k] = found - model_classes.begin();
  }
  Tensor targets = zeros({N, K}, {DType::f32});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K_data; ++k)
      targets.data<float>()[n * K + column[k]] = own.data<float>()[n * K_data + k];
  return targets;
}

std::vector<double> sigmoid_probabilities(const Tensor& logits) {
  const float* x = logits.data<float>();
  std::vector<double> p(static_cast<size_t>(logits.numel()));
  for (size_t i = 0; i < p.size(); ++i) p[i] = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
  return p;
}

std::vector<int> targets_as_ints(const Tensor& targets) {
  const float* t = targets.data<float>();
  std::vector<int> out(static_cast<size_t>(targets.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = t[i] > 0.5f ? 1 : 0;
  return out;
}

}  // namespace kiln::train
