// `kiln eval CHECKPOINT [DATA]`: a trained model's metrics on a data set: top-1 and
// top-5 accuracy, per-class and macro/weighted precision, recall and F1, the
// confusion matrix, one-vs-rest ROC curves with AUC. Printed as a table and written
// as JSON and CSV into --out. A multi-label checkpoint prints the multi-label table
// (per class P/R/F1/support/AP, micro/macro/weighted/samples F1, mAP, hamming loss,
// subset accuracy, ranking loss, coverage) at the decision rule saved with it, and
// probabilities.csv: every image's true labels and all K probabilities, to try other
// decision rules on (a validation split's file to choose them, a test split's to score them).
//   kiln eval runs/x/best.safetensors                     the run's own test split
//   kiln eval runs/x/best.safetensors DATA --subset all   every image of DATA
//   kiln eval runs/x/best.safetensors --hardest 100       the 100 validation images with the
//                                                         highest loss, listed and per class, into
//                                                         runs/x/hardest.{csv,json} and a grid in
//                                                         runs/x/figures/hardest.png, which
//                                                         report.html shows (report/hard_examples.h)
#include <cstdio>
#include <filesystem>

#include "engine/metrics/accumulator.h"
#include "engine/train/trainer.h"
#include "data/csv.h"
#include "data/tiny_imagenet.h"
#include "report/hard_examples.h"
#include "tools/commands.h"
#include "tools/data_options.h"
#include "tools/run_model.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct EvalOptions {
  std::string checkpoint;
  DataOptions data;
  std::string subset = "test";
  std::string out;
  std::string device = "auto";
  int64_t batch_size = 128;
  int64_t hardest = 0;  // > 0: list and show the N images with the highest loss
  CLI::Option* subset_option = nullptr;
} options;

// image,labels,<one column per class>: the true label set (space-separated class names)
// and sigmoid(logit) of every class, in the data set's order.
void write_probabilities_csv(const std::string& path, const data::Dataset& dataset,
                             const std::vector<double>& probabilities) {
  const std::vector<int> truth = train::targets_as_ints(dataset.targets);
  const size_t K = dataset.class_names.size();
  write_file_atomically(path, [&](std::ostream& s) {
    s << "image,labels";
    for (const std::string& name : dataset.class_names) s << "," << data::csv_field(name);
    s << "\n";
    char number[32];
    for (size_t n = 0; n * K < probabilities.size(); ++n) {
      std::string labels;
      for (size_t k = 0; k < K; ++k)
        if (truth[n * K + k]) labels += (labels.empty() ? "" : " ") + dataset.class_names[k];
      s << data::csv_field(n < dataset.file_names.size() ? dataset.file_names[n] : std::to_string(n)) << ","
        << data::csv_field(labels);
      for (size_t k = 0; k < K; ++k) {
        std::snprintf(number, sizeof(number), ",%.6g", probabilities[n * K + k]);
        s << number;
      }
      s << "\n";
    }
  });
}

// A multi-label checkpoint: the table of engine/metrics/multilabel.h at the decision
// rule saved with the model (thresholds, top-k, at-least-one).
int eval_multi_label(LoadedRun& run, data::Dataset dataset, const DataOptions& data_options,
                     const std::string& run_dir) {
  EvalOptions& o = options;
  const train::MultiLabelSetup setup = train::MultiLabelSetup::from_json(run.checkpoint.config["multi_label"]);
  // The data's label sets in the model's class order; a label the model does not know is an error.
  dataset.targets = train::targets_for_classes(dataset, run.checkpoint.class_names);
  dataset.class_names = run.checkpoint.class_names;
  const Device device = resolve_device(o.device);
  const train::Evaluation e =
      train::evaluate(*run.model.module, dataset, run.model.image, device, o.batch_size, train::Precision::f32, setup);
  std::printf("%s on %s (%s, %lld images, multi-label)\n%s", o.checkpoint.c_str(), data_options.data.c_str(),
              o.subset.c_str(), static_cast<long long>(dataset.size()), e.multilabel.to_table().c_str());
  const std::string out = o.out.empty() ? run_dir + "/eval-" + o.subset : o.out;
  std::filesystem::create_directories(out);
  nlohmann::json j = e.multilabel.to_json();
  j["loss"] = e.loss;
  write_file_atomically(out + "/metrics.json", [&](std::ostream& s) { s << j.dump(2) << "\n"; });
  write_probabilities_csv(out + "/probabilities.csv", dataset, train::sigmoid_probabilities(e.logits));
  std::printf("micro-F1 %.4f  macro-F1 %.4f  mAP %.4f | wrote %s/metrics.json and probabilities.csv\n",
              e.multilabel.micro.f1,
              e.multilabel.macro.f1, e.multilabel.mean_average_precision, out.c_str());
  return 0;
}

int run_eval() {
  EvalOptions& o = options;
  const Device device = resolve_device(o.device);
  LoadedRun run = load_run(o.checkpoint, device);
  const std::string run_dir = std::filesystem::path(o.checkpoint).parent_path().string();
  // Without DATA on the command line: the run's own data and split.
  // The hard examples are looked for on the validation split unless --subset says otherwise.
  if (o.hardest > 0 && o.subset_option->count() == 0) o.subset = "val";
  DataOptions data_options = o.data;
  if (data_options.data == "fashion-mnist" && run.checkpoint.config.contains("data")) {
    data_options.data = run.checkpoint.config["data"].value("source", data_options.data);
    // A run trained with --test-data: its split.json holds train and val only.
    if (data_options.test_data.empty())
      data_options.test_data = run.checkpoint.config["data"].value("test_data", std::string());
  }
  data_options.size = run.model.image.out_size;
  data_options.fit = run.fit;
  data::Dataset dataset;
  if (o.subset == "all") {
    dataset = load_data(data_options, data_options.data);
  } else {
    KILN_CHECK(o.subset == "train" || o.subset == "val" || o.subset == "test", "--subset must be train, val, test or all, got '",
               o.subset, "'");
    if (data_options.split_file.empty()) data_options.split_file = run_dir + "/split.json";
    const PreparedData prepared = prepare_data(data_options, "");
    dataset = o.subset == "train" ? prepared.train : (o.subset == "val" ? prepared.val : prepared.test);
  }
  KILN_CHECK(o.hardest == 0 || !run.checkpoint.config.contains("multi_label"),
             "--hardest ranks single-label images by their cross-entropy; ", o.checkpoint, " is a multi-label model");
  if (run.checkpoint.config.contains("multi_label")) return eval_multi_label(run, dataset, data_options, run_dir);
  KILN_CHECK(dataset.class_names == run.checkpoint.class_names || run.checkpoint.class_names.empty(),
             "eval: the data's classes differ from the model's");
  const train::Evaluation e = train::evaluate(*run.model.module, dataset, run.model.image, device, o.batch_size);
  metrics::MetricAccumulator accumulator(dataset.num_classes());
  accumulator.add(e.logits, dataset.labels);
  const metrics::ClassificationReport report = accumulator.report(dataset.class_names);
  std::printf("%s on %s (%s, %lld images)\n%s", o.checkpoint.c_str(), data_options.data.c_str(), o.subset.c_str(),
              static_cast<long long>(dataset.size()), report.to_table().c_str());
  const std::string out = o.out.empty() ? run_dir + "/eval-" + o.subset : o.out;
  std::filesystem::create_directories(out);
  write_file_atomically(out + "/metrics.json", [&](std::ostream& s) { s << report.to_json().dump(2) << "\n"; });
  report.write_csv(out);
  std::printf("wrote %s/metrics.json and CSV files\n", out.c_str());
  if (o.hardest > 0) {
    KILN_CHECK(dataset.size() > 0, "--hardest: the ", o.subset, " subset of ", data_options.data, " has no images");
    const report::HardExamples hard = report::hardest_examples(e.logits, dataset, o.hardest);
    std::printf("the %zu hardest of %lld %s images (highest cross-entropy first):\n%s", hard.examples.size(),
                static_cast<long long>(dataset.size()), o.subset.c_str(),
                hard.to_table(dataset.class_names, hard.examples.size()).c_str());
    // Tiny-ImageNet's classes are WordNet ids; the grid's captions use words.txt's
    // first name for each ("n03888257" -> "parachute").
    std::vector<std::string> display_names;
    if (data::is_tiny_imagenet(data_options.data)) {
      const std::map<std::string, std::string> words = data::tiny_imagenet_words(data_options.data);
      for (const std::string& wnid : dataset.class_names) {
        const auto found = words.find(wnid);
        display_names.push_back(found == words.end() ? wnid : found->second.substr(0, found->second.find(',')));
      }
    }
    report::write_hard_examples(run_dir, hard, dataset,
                                {{"checkpoint", o.checkpoint}, {"subset", o.subset}, {"data", data_options.data},
                                 {"images", dataset.size()}},
                                display_names);
    std::printf("wrote %s/hardest.csv, hardest.json and figures/hardest.png; report.html shows them from the next "
                "`kiln report %s`\n", run_dir.c_str(), run_dir.c_str());
  }
  return 0;
}

const bool registered = register_command({
    "eval",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("eval", "a trained model's metrics on a data set (JSON, CSV, table)");
      EvalOptions& o = options;
      cmd->add_option("checkpoint", o.checkpoint, "a checkpoint written by kiln train")->required()->check(CLI::ExistingFile);
      add_data_options(cmd, o.data);
      o.subset_option = cmd->add_option("--subset", o.subset, "train, val, test (of the run's split.json) or all")->capture_default_str();
      cmd->add_option("--out", o.out, "folder for metrics.json and the CSV files (default: next to the checkpoint)");
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--hardest", o.hardest,
                      "list the N images with the highest loss (default subset: val) and draw them in the report")
          ->check(CLI::PositiveNumber);
      cmd->add_option("--batch-size", o.batch_size, "images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
    },
    run_eval,
});

}  // namespace
}  // namespace kiln::tools
