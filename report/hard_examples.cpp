#include "report/hard_examples.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "engine/core/check.h"
#include "report/predictions.h"
#include "weights/atomic_file.h"

namespace kiln::report {

namespace {

std::string class_name(const std::vector<std::string>& names, int64_t k) {
  return k >= 0 && k < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k);
}

// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

HardExamples hardest_examples(const Tensor& logits, const data::Dataset& dataset, int64_t count) {
  KILN_CHECK(count >= 1, "--hardest must be at least 1, got ", count);
  KILN_CHECK(logits.dim() == 2 && logits.shape()[0] == dataset.size(), "hardest_examples: logits must be (",
             dataset.size(), ", K), got ", logits.shape());
  const Tensor host = logits.to(DType::f32);
  const float* z = host.data<float>();
  const int64_t n = logits.shape()[0], classes = logits.shape()[1];
  const int64_t* labels = dataset.labels.data<int64_t>();
  std::vector<HardExample> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = z + i * classes;
    const int64_t y = labels[i];
    KILN_CHECK(y >= 0 && y < classes, "hardest_examples: image ", i, " of ", dataset.source, " has label ", y,
               ", outside the model's ", classes, " classes");
    const int64_t predicted = std::max_element(row, row + classes) - row;  // ties to the lower class
    double top = row[predicted], sum = 0;
    for (int64_t k = 0; k < classes; ++k) sum += std::exp(static_cast<double>(row[k]) - top);
    const double log_sum = top + std::log(sum);
    HardExample& e = all[static_cast<size_t>(i)];
    e.index = i;
    e.file = i < static_cast<int64_t>(dataset.file_names.size()) ? dataset.file_names[static_cast<size_t>(i)] : "";
    e.label = y;
    e.predicted = predicted;
    e.probability = std::exp(top - log_sum);
    e.loss = log_sum - static_cast<double>(row[y]);
  }
  std::stable_sort(all.begin(), all.end(), [](const HardExample& a, const HardExample& b) { return a.loss > b.loss; });
  HardExamples hard;
  hard.examples.assign(all.begin(), all.begin() + std::min<int64_t>(count, n));
  hard.classes.resize(static_cast<size_t>(classes));
  for (int64_t k = 0; k < classes; ++k) hard.classes[static_cast<size_t>(k)].name = class_name(dataset.class_names, k);
  for (int64_t i = 0; i < n; ++i) ++hard.classes[static_cast<size_t>(labels[i])].images;
  for (const HardExample& e : hard.examples) {
    HardClass& c = hard.classes[static_cast<size_t>(e.label)];
    ++c.count;
    c.mean_loss += e.loss;
  }
  for (HardClass& c : hard.classes)
    if (c.count > 0) c.mean_loss /= static_cast<double>(c.count);
  return hard;
}

nlohmann::json HardExamples::to_json() const {
  nlohmann::json list = nlohmann::json::array(), per_class = nlohmann::json::array();
  for (size_t r = 0; r < examples.size(); ++r) {
    const HardExample& e = examples[r];
    list.push_back({{"rank", r + 1}, {"index", e.index}, {"file", e.file}, {"true", classes[static_cast<size_t>(e.label)].name},
                    {"predicted", classes[static_cast<size_t>(e.predicted)].name}, {"probability", e.probability},
                    {"loss", e.loss}});
  }
  for (const HardClass& c : classes)
    per_class.push_back({{"class", c.name}, {"hardest", c.count}, {"images", c.images}, {"mean_loss", c.mean_loss}});
  return {{"examples", list}, {"classes", per_class}};
}

std::string HardExamples::to_table(const std::vector<std::string>& class_names, size_t rows) const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%5s  %-40s %-16s %-16s %6s %7s\n", "rank", "file", "true", "predicted", "prob",
                "loss");
  out += line;
  for (size_t r = 0; r < std::min(rows, examples.size()); ++r) {
    const HardExample& e = examples[r];
    std::snprintf(line, sizeof(line), "%5zu  %-40s %-16s %-16s %6.3f %7.3f\n", r + 1, e.file.c_str(),
                  class_name(class_names, e.label).c_str(), class_name(class_names, e.predicted).c_str(),
                  e.probability, e.loss);
    out += line;
  }
  if (examples.size() > rows) out += "  ... (" + std::to_string(examples.size() - rows) + " more in hardest.csv)\n";
  out += "per class: hardest / images, mean loss of its hardest\n";
  for (const HardClass& c : classes) {
    std::snprintf(line, sizeof(line), "  %-24s %4lld / %-5lld %7.3f\n", c.name.c_str(), static_cast<long long>(c.count),
                  static_cast<long long>(c.images), c.mean_loss);
    out += line;
  }
  return out;
}

Figure hard_examples_grid(const HardExamples& hard, const data::Dataset& dataset, size_t max_images,
                          const std::vector<std::string>& display_names) {
  std::vector<Prediction> picks;
  for (size_t r = 0; r < std::min(max_images, hard.examples.size()); ++r) {
    const HardExample& e = hard.examples[r];
    picks.push_back({e.index, e.label, e.predicted, e.probability});
  }
  std::vector<std::string> names = display_names;
  if (names.size() != hard.classes.size()) {
    names.clear();
    for (const HardClass& c : hard.classes) names.push_back(c.name);
  }
  std::vector<CaptionedImage> images = captioned_predictions(dataset, picks, names);
  for (size_t r = 0; r < images.size(); ++r) {
    char loss[48];
    std::snprintf(loss, sizeof(loss), "#%zu loss %.2f", r + 1, hard.examples[r].loss);
    images[r].captions.push_back({loss, Rgb{40, 40, 40}});
  }
  ImageGridOptions options;
  options.title = "The " + std::to_string(images.size()) + " hardest images, highest loss first";
  options.pixelated = dataset.images.shape()[2] < 48;
  return image_grid(images, options);
}

void write_hard_examples(const std::string& run_dir, const HardExamples& hard, const data::Dataset& dataset,
                         const nlohmann::json& about, const std::vector<std::string>& display_names) {
  write_file_atomically(run_dir + "/hardest.csv", [&](std::ostream& out) {
    out << "rank,file,true,predicted,probability,loss\n";
    for (size_t r = 0; r < hard.examples.size(); ++r) {
      const HardExample& e = hard.examples[r];
      out << r + 1 << "," << csv_field(e.file) << "," << csv_field(hard.classes[static_cast<size_t>(e.label)].name)
          << "," << csv_field(hard.classes[static_cast<size_t>(e.predicted)].name) << "," << e.probability << ","
          << e.loss << "\n";
    }
  });
  nlohmann::json j = hard.to_json();
  j["about"] = about;
  write_file_atomically(run_dir + "/hardest.json", [&](std::ostream& out) { out << j.dump(2) << "\n"; });
  std::filesystem::create_directories(run_dir + "/figures");
  write_figure_png(run_dir + "/figures/hardest.png", hard_examples_grid(hard, dataset, 100, display_names));
}

}  // namespace kiln::report
