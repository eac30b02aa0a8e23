// `kiln predict CHECKPOINT IMAGES -o preds.csv [--top-k 3]`: class predictions for
// a folder of images (searched recursively) or single files, as CSV:
//   image,label,probability[,label_2,probability_2,...]
// where label is the class name and probability its softmax probability.
//
// A multi-label checkpoint writes each image's label set with the decision rule saved
// with it (thresholds, top-k, at-least-one; docs/multilabel.md):
//   image,labels,probabilities      labels and their sigmoid probabilities, space-separated
// and with --format submission the course's submission file:
//   ImageID,Labels                  ImageID the file name (or the CSV's image cell when the
//                                   images come from a CSV such as test.csv), Labels the
//                                   class names, space-separated
//
// CHECKPOINT is a `kiln train` checkpoint: each image is fitted to the model's input
// the way its training run did, then normalised. Or, as with torchvision's pretrained
// models, a zoo model straight from its weights file:
//   kiln predict --arch mobilenet_v2 --pretrained mobilenet_v2.onnx
//                --class-names imagenet_classes.txt photos/ -o preds.csv
// resizes to --size / 0.875, centre-crops --size and normalises with ImageNet's mean
// and std (tools/run_model.h). Without --class-names the labels are class indices.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "data/image_folder.h"
#include "data/image_io.h"
#include "engine/augment/augment.h"
#include "engine/autograd/grad_mode.h"
#include "engine/metrics/multilabel.h"
#include "engine/tensor/factory.h"
#include "tools/commands.h"
#include "tools/run_model.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct PredictOptions {
  InferenceSource source;
  std::string output = "predictions.csv";
  std::string format = "csv";  // csv | submission (multi-label)
  int top_k = 1;
  int64_t batch_size = 64;
} options;

// A CSV field: quoted when it holds a comma or a quote.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// One CSV row per image of a multi-label model: its decided label set.
std::string multi_label_row(const std::string& file, const std::string& id, const double* logits, int64_t K,
                            const InferenceModel& m, const metrics::DecisionRule& rule, bool submission) {
  std::vector<double> p(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) p[k] = 1.0 / (1.0 + std::exp(-logits[k]));
  const std::vector<int> chosen = metrics::decide(p, K, rule);
  std::string labels, probabilities;
  for (int64_t k = 0; k < K; ++k) {
    if (!chosen[k]) continue;
    char probability[32];
    std::snprintf(probability, sizeof(probability), "%.6f", p[k]);
    labels += (labels.empty() ? "" : " ") + (m.class_names.empty() ? std::to_string(k) : m.class_names[k]);
    probabilities += (probabilities.empty() ? "" : " ") + std::string(probability);
  }
  if (submission) return csv_field(id) + "," + csv_field(labels) + "\n";
  return csv_field(file) + "," + csv_field(labels) + "," + probabilities + "\n";
}

int run_predict() {
  PredictOptions& o = options;
  o.source.command = "predict";
  const InferenceModel m = load_inference_model(o.source);
  const bool multi_label = !m.multi_label.is_null();
  KILN_CHECK(o.format == "csv" || o.format == "submission", "predict: --format must be csv or submission, got '",
             o.format, "'");
  KILN_CHECK(o.format == "csv" || multi_label,
             "predict: --format submission (ImageID,Labels) is for multi-label checkpoints");
  const metrics::DecisionRule rule =
      multi_label ? metrics::DecisionRule::from_json(m.multi_label.at("rule")) : metrics::DecisionRule{};
  // A CSV input (the course's test.csv: ImageID,Captions, no labels) names its images;
  // its ImageID cells are what a submission writes back.
  std::vector<std::string> files, ids, other_inputs;
  for (const std::string& input : m.images) {
    if (std::filesystem::path(input).extension() != ".csv") {
      other_inputs.push_back(input);
      continue;
    }
    const data::FileListing listing = data::list_csv(input);
    files.insert(files.end(), listing.paths.begin(), listing.paths.end());
    ids.insert(ids.end(), listing.file_names.begin(), listing.file_names.end());
  }
  if (!other_inputs.empty() || files.empty())
    for (const std::string& file : data::list_image_files(other_inputs, "predict")) {
      files.push_back(file);
      ids.push_back(std::filesystem::path(file).filename().string());
    }
  std::string csv;  // the header goes in front once the number of classes is known
  int top_k = 0;
  NoGradGuard no_grad;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(o.batch_size)) {
    const size_t n = std::min(files.size() - start, static_cast<size_t>(o.batch_size));
    const std::vector<std::string> chunk(files.begin() + static_cast<std::ptrdiff_t>(start),
                                         files.begin() + static_cast<std::ptrdiff_t>(start + n));
    const Tensor x = augment::eval_transform(load_images(m, chunk).to(m.device), m.image);
    const Tensor output = m.module->forward(x);
    const int64_t classes = output.shape()[1];
    if (start == 0) {
      KILN_CHECK(m.class_names.empty() || static_cast<int64_t>(m.class_names.size()) == classes, "predict: the model has ",
                 classes, " outputs but ", m.class_names.size(), " class names were given (",
                 o.source.class_names_file.empty() ? "by the checkpoint" : o.source.class_names_file, ")");
      top_k = std::min<int>(o.top_k, static_cast<int>(classes));
    }
    const std::vector<double> logits = output.to(Device::cpu()).to(DType::f64).to_vector();
    if (multi_label) {
      for (size_t i = 0; i < n; ++i)
        csv += multi_label_row(files[start + i], ids[start + i], logits.data() + i * classes, classes, m, rule,
                               o.format == "submission");
      continue;
    }
    for (size_t i = 0; i < n; ++i) {
      const double* row = logits.data() + i * classes;
      const double top = *std::max_element(row, row + classes);
      std::vector<double> p(static_cast<size_t>(classes));
      double total = 0;
      for (int64_t k = 0; k < classes; ++k) total += (p[k] = std::exp(row[k] - top));
      std::vector<int64_t> order(static_cast<size_t>(classes));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
      csv += csv_field(files[start + i]);
      for (int k = 0; k < top_k; ++k) {
        char probability[32];
        std::snprintf(probability, sizeof(probability), "%.6f", p[order[k]] / total);
        const std::string label = m.class_names.empty() ? std::to_string(order[k]) : m.class_names[order[k]];
        csv += "," + csv_field(label) + "," + probability;
      }
      csv += "\n";
    }
  }
  std::string header = "image,label,probability";
  for (int k = 2; k <= top_k; ++k) header += ",label_" + std::to_string(k) + ",probability_" + std::to_string(k);
  if (multi_label) header = o.format == "submission" ? "ImageID,Labels" : "image,labels,probabilities";
  write_file_atomically(o.output, [&](std::ostream& out) { out << header << "\n" << csv; });
  std::printf("model: %s\n", m.description.c_str());
  if (multi_label)
    std::printf("wrote %s: %zu images, label sets by %s\n", o.output.c_str(), files.size(), rule.describe().c_str());
  else
    std::printf("wrote %s: %zu images, top-%d\n", o.output.c_str(), files.size(), top_k);
  return 0;
}

const bool registered = register_command({
    "predict",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("predict", "predict the class of images with a trained model, as CSV");
      PredictOptions& o = options;
      cmd->add_option("inputs", o.source.positional,
                      "CHECKPOINT (written by kiln train) then image files or folders; with --pretrained only images")
          ->required();
      cmd->add_option("--arch", o.source.arch, "zoo architecture of --pretrained (mobilenet_v2, resnet18, ...)");
      cmd->add_option("--pretrained", o.source.pretrained, "an .onnx file or kiln import .safetensors (instead of a checkpoint)")
          ->check(CLI::ExistingFile);
      cmd->add_option("--class-names", o.source.class_names_file, "a text file with one class name per line");
      cmd->add_option("--size", o.source.size, "input size for --pretrained (resize to size/0.875, centre crop)")
          ->capture_default_str();
      cmd->add_option("-o,--output", o.output, "the CSV file to write")->capture_default_str();
      cmd->add_option("--format", o.format,
                      "csv, or submission (multi-label checkpoints: ImageID,Labels with space-separated labels)")
          ->capture_default_str();
      cmd->add_option("--top-k", o.top_k, "how many classes per image (a multi-label model uses its saved rule)")->check(CLI::PositiveNumber)->capture_default_str();
      cmd->add_option("--device", o.source.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
    },
    run_predict,
});

}  // namespace
}  // namespace kiln::tools
