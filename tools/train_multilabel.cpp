#include "tools/train_multilabel.h"

#include <cstdio>
#include <filesystem>

#include "data/class_stats.h"
#include "report/multilabel_report.h"
#include "weights/atomic_file.h"
#include "weights/checkpoint.h"

namespace kiln::tools {
namespace {

constexpr double kPosWeightCap = 100.0;

// Label cardinality (mean labels per image) of multi-hot targets (N, K).
double label_cardinality(const Tensor& targets) {
  const std::vector<int> t = train::targets_as_ints(targets);
  double total = 0;
  for (int v : t) total += v;
  return targets.size(0) > 0 ? total / static_cast<double>(targets.size(0)) : 0.0;
}

// --threshold tune (one threshold per class) or tune-global (one for all): chosen on the
// validation split after training.
bool tunes_thresholds(const TrainOptions& o) { return o.threshold == "tune" || o.threshold == "tune-global"; }

metrics::DecisionRule fixed_rule(const TrainOptions& o, int64_t K, double threshold) {
  metrics::DecisionRule rule;
  rule.thresholds.assign(static_cast<size_t>(K), threshold);
  rule.top_k = o.top_k;
  rule.at_least_one = o.at_least_one;
  return rule;
}

void print_averages(const char* name, const metrics::MultilabelReport& r) {
  std::printf("  %-22s micro-F1 %.4f  macro-F1 %.4f  samples-F1 %.4f  subset acc %.4f  hamming %.4f\n", name,
              r.micro.f1, r.macro.f1, r.samples.f1, r.subset_accuracy, r.hamming_loss);
}

nlohmann::json averages_json(const metrics::MultilabelReport& r) {
  return {{"rule", r.rule},           {"micro_f1", r.micro.f1},       {"macro_f1", r.macro.f1},
          {"samples_f1", r.samples.f1}, {"subset_accuracy", r.subset_accuracy}, {"hamming_loss", r.hamming_loss}};
}

// report.html; a failure is a warning (the run itself is saved).
void write_report(const TrainOptions& o, const PreparedData& data, const MultiLabelOutcome& out,
                  const std::vector<double>& test_probabilities, const std::vector<int>& test_targets) {
  if (o.no_report) return;
  try {
    report::MultilabelReportInputs inputs;
    inputs.run_dir = o.run_dir;
    inputs.class_names = data.train.class_names;
    inputs.rule = out.rule;
    inputs.test_probabilities = test_probabilities;
    inputs.test_targets = test_targets;
    for (const std::vector<int64_t>& row : data::class_stats(data.train).cooccurrence)
      inputs.train_cooccurrence.emplace_back(row.begin(), row.end());
    inputs.test_set = &data.test;
    std::printf("report: %s\n", report::write_multilabel_report(inputs).c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "kiln train: warning: the run report was not written: %s\n", e.what());
  }
}

}  // namespace

train::MultiLabelSetup prepare_multi_label(TrainOptions& o, const PreparedData& data) {
  train::MultiLabelSetup ml;
  const bool data_is_multi_label = data.train.targets.defined();
  ml.enabled = o.data.csv.multi_label || data_is_multi_label;
  const bool flags_given = o.loss != "bce" || o.pos_weight != "none" || o.threshold != "0.5" || o.top_k != 0 ||
                           o.at_least_one;
  if (!ml.enabled) {
    KILN_CHECK(!flags_given, "--loss, --pos-weight, --threshold, --top-k and --at-least-one are for multi-label runs, "
               "but '", o.data.data, "' has one label per image (add --multi-label to train it as multi-label)");
    return ml;
  }
  const int64_t K = data.train.num_classes();
  train::parse_loss_spec(o.loss, ml);
  KILN_CHECK(o.top_k >= 0 && o.top_k <= K, "--top-k must be between 1 and the ", K, " classes, got ", o.top_k);
  KILN_CHECK(o.top_k == 0 || (o.threshold == "0.5" && !o.at_least_one),
             "--top-k K keeps exactly K labels per image: it does not combine with --threshold or --at-least-one");
  double threshold = 0.5;
  if (tunes_thresholds(o)) {
    KILN_CHECK(data.val.size() > 0, "--threshold ", o.threshold, " chooses thresholds on the validation split, but it is empty "
               "(give --val or --split with a validation part)");
  } else {
    try {
      size_t used = 0;
      threshold = std::stod(o.threshold, &used);
      if (used != o.threshold.size()) threshold = -1;
    } catch (...) {
      threshold = -1;
    }
    KILN_CHECK(threshold > 0 && threshold < 1, "--threshold must be tune, tune-global or a number in (0, 1), got '", o.threshold,
               "'");
  }
  ml.rule = fixed_rule(o, K, threshold);
  const Tensor train_targets = train::multi_hot_targets(data.train);
  if (o.pos_weight == "auto") {
    ml.pos_weight = train::auto_pos_weight(train_targets, kPosWeightCap);
  } else if (o.pos_weight != "none") {
    ml.pos_weight = train::read_pos_weight_file(o.pos_weight, data.train.class_names);
  }
  KILN_CHECK(ml.pos_weight.empty() || ml.loss == "bce",
             "--pos-weight weighs BCE's positives; the focal loss balances with its alpha instead (--loss focal:alpha=...)");
  if (o.monitor == "val_accuracy") o.monitor = "val_map";
  std::printf("multi-label%s: %lld classes, %.2f labels per training image; %s; decisions: %s; monitor %s\n",
              o.data.csv.multi_label ? "" : " (label cells list several labels)", static_cast<long long>(K),
              label_cardinality(train_targets), ml.describe().c_str(),
              o.threshold == "tune"          ? "per-class thresholds tuned on validation"
              : o.threshold == "tune-global" ? "one threshold for every class tuned on validation (micro-F1)"
                                             : ml.rule.describe().c_str(),
              o.monitor.c_str());
  if (!ml.pos_weight.empty()) {
    std::printf("pos_weight (%s, capped at %g):", o.pos_weight == "auto" ? "negatives/positives on train" : o.pos_weight.c_str(),
                kPosWeightCap);
    for (int64_t k = 0; k < K; ++k) std::printf(" %s=%.2f", data.train.class_names[k].c_str(), ml.pos_weight[k]);
    std::printf("\n");
  }
  return ml;
}

MultiLabelOutcome finish_multi_label(const TrainOptions& o, nn::Module& model, const PreparedData& data,
                                     const train::TrainSetup& setup) {
  MultiLabelOutcome out;
  const int64_t K = data.train.num_classes();
  const std::vector<std::string>& names = data.train.class_names;
  out.rule = setup.multi_label.rule;
  if (tunes_thresholds(o)) {
    const train::Evaluation val = train::evaluate(model, data.val, setup.image, setup.device, setup.batch_size,
                                                  setup.precision, setup.multi_label);
    const std::vector<double> P = train::sigmoid_probabilities(val.logits);
    const std::vector<int> Y = train::targets_as_ints(train::multi_hot_targets(data.val));
    if (o.threshold == "tune")
      out.rule.thresholds = metrics::best_thresholds(P, Y, K, metrics::threshold_grid());
    else
      out.rule.thresholds.assign(static_cast<size_t>(K), metrics::best_global_threshold(P, Y, K, metrics::threshold_grid()));
  }
  // The rule travels with the model: in every checkpoint of the run, and as JSON for
  // people who run the exported ONNX model elsewhere.
  nlohmann::json rule_json = out.rule.to_json();
  rule_json["classes"] = names;
  rule_json["rule"] = out.rule.describe();
  rule_json["probability"] = "sigmoid(logit), one per class";
  rule_json["chosen_on"] = o.threshold == "tune"          ? "validation split, per-class F1 (ties to the lower threshold)"
                          : o.threshold == "tune-global" ? "validation split, micro-F1 of one threshold for every class "
                                                           "(ties to the lower threshold)"
                                                         : "fixed by --threshold/--top-k";
  write_file_atomically(o.run_dir + "/thresholds.json", [&](std::ostream& s) { s << rule_json.dump(2) << "\n"; });
  for (const char* name : {"best.safetensors", "last.safetensors"}) {
    const std::string path = o.run_dir + "/" + name;
    if (!std::filesystem::exists(path)) continue;
    Checkpoint c = load_checkpoint(path);
    c.config["multi_label"]["rule"] = out.rule.to_json();
    save_checkpoint(path, c);
  }
  std::printf("decision rule: %s (thresholds.json)\n", out.rule.describe().c_str());
  if (o.threshold == "tune") {
    std::printf("  thresholds:");
    for (int64_t k = 0; k < K; ++k) std::printf(" %s=%.2f", names[k].c_str(), out.rule.thresholds[k]);
    std::printf("\n");
  }
  if (data.test.size() == 0) {
    write_report(o, data, out, {}, {});
    return out;
  }

  const train::Evaluation e = train::evaluate(model, data.test, setup.image, setup.device, setup.batch_size,
                                              setup.precision, setup.multi_label);
  out.test_logits = e.logits;
  const std::vector<double> P = train::sigmoid_probabilities(e.logits);
  const std::vector<int> Y = train::targets_as_ints(train::multi_hot_targets(data.test));
  out.test = metrics::multilabel_report(P, Y, K, out.rule, names);
  out.test_at_half = metrics::multilabel_report(P, Y, K, fixed_rule(TrainOptions{}, K, 0.5), names);
  metrics::DecisionRule top2;
  top2.top_k = std::min<int64_t>(2, K);
  out.test_top2 = metrics::multilabel_report(P, Y, K, top2, names);
  std::printf("%s", out.test.to_table().c_str());
  std::printf("test split, decision rules compared:\n");
  print_averages(out.test.rule.c_str(), out.test);
  if (out.test.rule != out.test_at_half.rule) print_averages(out.test_at_half.rule.c_str(), out.test_at_half);
  if (out.test.rule != out.test_top2.rule) print_averages(out.test_top2.rule.c_str(), out.test_top2);
  nlohmann::json summary = out.test.to_json();
  summary["multi_label"] = true;
  summary["compared_rules"] = {averages_json(out.test), averages_json(out.test_at_half), averages_json(out.test_top2)};
  write_file_atomically(o.run_dir + "/test_metrics.json", [&](std::ostream& s) { s << summary.dump(2) << "\n"; });
  std::printf("test micro-F1 %.4f  macro-F1 %.4f  mAP %.4f  (%lld images, %s) | run folder %s\n", out.test.micro.f1,
              out.test.macro.f1, out.test.mean_average_precision, static_cast<long long>(e.count),
              out.test.rule.c_str(), o.run_dir.c_str());
  write_report(o, data, out, P, Y);
  return out;
}

}  // namespace kiln::tools
