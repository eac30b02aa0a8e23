// The data behind a run report (report/run_report.h): the run table, the curve and
// ROC series, and gathering the inputs from a run folder and test predictions.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>

#include "engine/core/check.h"
#include "engine/metrics/accumulator.h"
#include "report/predictions.h"
#include "report/html.h"
#include "report/run_report.h"

namespace kiln::report {
namespace {

std::string percent(double fraction) { return std::isfinite(fraction) ? format_fixed(100.0 * fraction, 2) + "%" : "n/a"; }

std::string mebibytes(double mb) { return format_count(static_cast<int64_t>(std::llround(mb))) + " MiB"; }

// A config value as text ("" when absent), for numbers and strings alike.
std::string config_text(const nlohmann::json& config, const char* key) {
  if (!config.contains(key)) return "";
  const nlohmann::json& v = config[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

TrainingCurves training_curves(const RunRecord& run) {
  TrainingCurves curves;
  std::vector<double> epoch, lr, train_loss, train_accuracy, val_loss, val_accuracy, val_f1;
  for (const EpochRow& e : run.epochs) {
    epoch.push_back(e.epoch);
    lr.push_back(e.lr);
    train_loss.push_back(e.train_loss);
    train_accuracy.push_back(e.train_accuracy);
    val_loss.push_back(e.val_loss);
    val_accuracy.push_back(e.val_accuracy);
    val_f1.push_back(e.val_f1);
  }
  const Rgb blue = series_color(0), orange = series_color(1), green = series_color(2);
  curves.loss.push_back(Series{"train", epoch, train_loss, false, blue});
  curves.accuracy.push_back(Series{"train accuracy", epoch, train_accuracy, false, blue});
  if (run.has_validation()) {
    curves.loss.push_back(Series{"validation", epoch, val_loss, true, orange});
    curves.accuracy.push_back(Series{"validation accuracy", epoch, val_accuracy, true, orange});
    curves.accuracy.push_back(Series{"validation F1 (macro)", epoch, val_f1, true, green});
  }
  curves.lr.push_back(Series{"", epoch, lr, false, blue});
  std::vector<double> size;
  for (const EpochRow& e : run.epochs) size.push_back(e.image_size);
  if (std::any_of(size.begin(), size.end(), [](double s) { return s > 0; }))
    curves.image_size.push_back(Series{"", epoch, size, false, blue});
  for (auto* group : {&curves.loss, &curves.accuracy, &curves.lr, &curves.image_size})
    for (Series& s : *group) s.markers = run.epochs.size() <= 30;  // dots while epochs are few enough to tell apart
  return curves;
}

std::vector<RocSeries> roc_series(const metrics::ClassificationReport& report) {
  std::vector<RocSeries> out;
  for (size_t k = 0; k < report.roc.size(); ++k)
    out.push_back(RocSeries{report.class_names[k], report.roc[k].fpr, report.roc[k].tpr, report.roc[k].auc});
  return out;
}

std::vector<std::pair<std::string, std::string>> run_table(const RunReportInputs& inputs) {
  const RunRecord& run = inputs.run;
  const nlohmann::json& c = run.config;
  const std::optional<RunInfo>& info = run.info;
  std::vector<std::pair<std::string, std::string>> rows;
  auto add = [&](std::string name, std::string value) { rows.emplace_back(std::move(name), std::move(value)); };
  const std::string missing = "not recorded (no run_info.json in the run folder)";

  std::string model = c.contains("model") ? config_text(c["model"], "arch") : "";
  if (info && !info->model_description.empty()) model = info->model_description;
  add("Model", model.empty() ? "unknown" : model);
  add("Parameters", info ? format_count(info->parameters) + " total, " + format_count(info->trainable_parameters) +
                               " trainable"
                         : missing);
  add("Batch size", config_text(c, "batch_size"));
  if (c.contains("optimizer")) {
    const nlohmann::json& o = c["optimizer"];
    add("Optimizer", config_text(o, "name") + ", lr " + config_text(o, "lr") + ", weight decay " +
                         config_text(o, "weight_decay") + "; schedule " + config_text(c, "schedule"));
  }
  const std::optional<size_t> best = run.best_epoch_index();
  const std::string monitor = c.value("monitor", std::string("val_accuracy"));
  std::string epochs = std::to_string(run.epochs.size()) + " trained of " + config_text(c, "epochs") + " configured";
  if (best)
    epochs += run.has_validation() ? "; best epoch " + std::to_string(run.epochs[*best].epoch) + " by " + monitor
                                   : "; no validation set, the last epoch is used";
  add("Epochs", epochs);

  // Device and memory.
  const std::string device = info ? info->device : config_text(c, "device");
  const bool cpu = device.rfind("cpu", 0) == 0;
  std::string threads = info && info->cpu_threads > 0 ? ", " + std::to_string(info->cpu_threads) + " CPU threads" : "";
  add("Device", (info && !info->device_name.empty() ? info->device_name + " (" + device + ")" : device) + threads);
  const std::string total = info && info->device_memory_mb > 0 ? " of " + mebibytes(info->device_memory_mb) : "";
  if (cpu)
    add("Memory", "CPU run: host peak " + mebibytes(run.peak_memory_mb()) + total +
                      " (tensor memory from kiln's CPU allocator, highest epoch; total = the host's physical memory)");
  else
    add("GPU memory", "peak " + mebibytes(run.peak_memory_mb()) + " used" + total +
                          " (high-water mark of kiln's caching allocator, highest epoch)");
  add("Training time", format_seconds(run.training_seconds()) + " for " + std::to_string(run.epochs.size()) +
                           " epochs (training passes; validation and test evaluation not included)");
  if (info && !info->feature_cache.empty()) add("Feature cache", info->feature_cache);

  // Data: sizes and the online augmentation.
  if (info) {
    add("Data", info->data_source + (info->test_data.empty() ? "" : " (test: " + info->test_data + ")"));
    const std::string spec = config_text(c, "augment");
    std::string train = format_count(info->train_images) + " images; " + format_count(info->train_images_per_epoch) +
                        " images per epoch";
    if (info->train_images_per_epoch < info->train_images) train += " (the last partial batch is dropped)";
    train += spec.empty() ? "; no augmentation (only resize and normalise)"
                          : "; augmentation applied online, a fresh random draw per image and epoch, so the set "
                            "is not enlarged on disk: each epoch sees " +
                                format_count(info->train_images_per_epoch) + " augmented images (" + spec + ")";
    add("Training set", train);
    add("Validation set", info->val_images > 0 ? format_count(info->val_images) +
                                                     " images, not augmented (resize, centre crop, normalise)"
                                               : "none");
    add("Test set", info->test_images > 0 ? format_count(info->test_images) + " images, not augmented" : "none");
  } else {
    add("Data", missing);
  }

  // The accuracies of the best epoch (whose checkpoint is best.safetensors).
  if (best) {
    const EpochRow& e = run.epochs[*best];
    const std::string at = " (epoch " + std::to_string(e.epoch) + ")";
    add("Training accuracy", percent(e.train_accuracy) + at + ", on the augmented batches during the epoch");
    if (run.has_validation()) {
      add("Validation accuracy", percent(e.val_accuracy) + at);
      add("Validation F1 (macro)", format_fixed(e.val_f1, 4) + at);
    }
  }
  if (inputs.test) {
    const metrics::ClassificationReport& t = *inputs.test;
    const std::string of = " (" + inputs.checkpoint + ", " + format_count(t.count) + " images)";
    add("Test accuracy", percent(t.accuracy) + of);
    if (t.top_k_accuracy.count(5)) add("Test top-5 accuracy", percent(t.top_k_accuracy.at(5)));
    add("Test F1 (macro)", format_fixed(t.macro.f1, 4));
    add("Test AUC (macro, one-vs-rest)", format_fixed(t.macro_auc, 4));
  }
  return rows;
}

std::string local_time_stamp() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return stamp;
}

RunReportInputs make_run_report_inputs(const std::string& run_dir, const data::Dataset& test_set,
                                       const Tensor& test_logits, const std::string& checkpoint, size_t thumbnails) {
  RunReportInputs inputs;
  inputs.run = read_run_folder(run_dir);
  inputs.checkpoint = checkpoint;
  inputs.generated = local_time_stamp();
  const auto read_json = [&](const std::string& name) -> std::optional<nlohmann::json> {
    std::ifstream in(run_dir + "/" + name);
    if (!in) return std::nullopt;
    try {
      return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      KILN_FAIL("report: ", run_dir, "/", name, " is not valid JSON: ", e.what());
    }
  };
  inputs.rules = read_json("rules.json");
  inputs.hardest = read_json("hardest.json");
  if (inputs.hardest) {
    std::ifstream png(run_dir + "/figures/hardest.png", std::ios::binary);
    inputs.hardest_png.assign(std::istreambuf_iterator<char>(png), std::istreambuf_iterator<char>());
  }
  if (test_set.size() == 0) return inputs;
  KILN_CHECK(test_logits.defined() && test_logits.dim() == 2 && test_logits.shape()[0] == test_set.size() &&
                 test_logits.shape()[1] == test_set.num_classes(),
             "report: test logits must be (N, K) = (", test_set.size(), ", ", test_set.num_classes(), ")");
  metrics::MetricAccumulator accumulator(test_set.num_classes());
  accumulator.add(test_logits, test_set.labels);
  inputs.test = accumulator.report(test_set.class_names);
  const PredictionPicks picks =
      pick_predictions(accumulator.probabilities(), accumulator.labels(), test_set.num_classes(), thumbnails);
  inputs.correct = captioned_predictions(test_set, picks.correct, test_set.class_names);
  inputs.wrong = captioned_predictions(test_set, picks.wrong, test_set.class_names);
  return inputs;
}

std::string write_report_for_run(const std::string& run_dir, const data::Dataset& test_set, const Tensor& test_logits,
                                 const std::string& checkpoint) {
  return write_run_report(run_dir, make_run_report_inputs(run_dir, test_set, test_logits, checkpoint));
}

}  // namespace kiln::report
