// `kiln predict CHECKPOINT IMAGES -o preds.csv [--top-k 3]`: class predictions for
// a folder of images (searched recursively) or single files, as CSV:
//   image,label,probability[,label_2,probability_2,...]
// where label is the class name and probability its softmax probability. Each image
// is fitted to the model's input size the way its training run did, then the eval
// transform (normalisation) is applied.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "data/image_io.h"
#include "engine/augment/augment.h"
#include "engine/autograd/grad_mode.h"
#include "engine/tensor/factory.h"
#include "tools/commands.h"
#include "tools/run_model.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct PredictOptions {
  std::string checkpoint;
  std::vector<std::string> inputs;
  std::string output = "predictions.csv";
  int top_k = 1;
  std::string device = "auto";
  int64_t batch_size = 64;
} options;

// A CSV field: quoted when it holds a comma or a quote.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

int run_predict() {
  PredictOptions& o = options;
  const Device device = o.device == "auto" ? resolve_device("auto") : Device::parse(o.device);
  LoadedRun run = load_run(o.checkpoint, device);
  const std::vector<std::string> files = data::list_image_files(o.inputs, "predict");
  const std::vector<std::string>& names = run.checkpoint.class_names;
  const int64_t size = run.model.image.out_size, channels = static_cast<int64_t>(run.model.image.mean.size());
  const int64_t classes = static_cast<int64_t>(names.size());
  KILN_CHECK(classes > 0, "predict: the checkpoint has no class names");
  const int top_k = std::min<int>(o.top_k, static_cast<int>(classes));
  const data::Fit fit = data::parse_fit(run.fit);

  std::string csv = "image,label,probability";
  for (int k = 2; k <= top_k; ++k) csv += ",label_" + std::to_string(k) + ",probability_" + std::to_string(k);
  csv += "\n";
  NoGradGuard no_grad;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(o.batch_size)) {
    const size_t n = std::min(files.size() - start, static_cast<size_t>(o.batch_size));
    Tensor batch = empty({static_cast<int64_t>(n), channels, size, size}, {DType::u8});
    for (size_t i = 0; i < n; ++i) {
      // fit_image writes planar (C, S, S): straight into the batch row.
      data::fit_image(data::decode_image(files[start + i], channels), size, fit,
                      batch.data<uint8_t>() + i * channels * size * size);
    }
    const Tensor x = augment::eval_transform(batch.to(device), run.model.image);
    const std::vector<double> logits = run.model.module->forward(x).to(Device::cpu()).to(DType::f64).to_vector();
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
        csv += "," + csv_field(names[order[k]]) + "," + probability;
      }
      csv += "\n";
    }
  }
  write_file_atomically(o.output, [&](std::ostream& out) { out << csv; });
  std::printf("wrote %s: %zu images, top-%d\n", o.output.c_str(), files.size(), top_k);
  return 0;
}

const bool registered = register_command({
    "predict",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("predict", "predict the class of images with a trained model, as CSV");
      PredictOptions& o = options;
      cmd->add_option("checkpoint", o.checkpoint, "a checkpoint written by kiln train")->required()->check(CLI::ExistingFile);
      cmd->add_option("images", o.inputs, "image files or folders")->required();
      cmd->add_option("-o,--output", o.output, "the CSV file to write")->capture_default_str();
      cmd->add_option("--top-k", o.top_k, "how many classes per image")->check(CLI::PositiveNumber)->capture_default_str();
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per forward pass")->capture_default_str();
    },
    run_predict,
});

}  // namespace
}  // namespace kiln::tools
