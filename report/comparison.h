// The comparison table of `kiln compare` (and of benchmarks/torch_compare.py, which
// prints the same columns): one row per model and training recipe, with what a
// student needs to discuss accuracy against cost:
//   test accuracy, macro precision / recall / F1     (engine/metrics, on the test split)
//   training time, images/s, peak memory             (engine/train's epoch log)
//   total and trainable parameters                   (nn::Module::parameter_count)
// A row that did not run (no weights given, not reached yet) keeps its name and says
// why in `status`; its numbers are left empty (CSV), "—" (Markdown, terminal) or
// null (JSON).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::report {

struct ComparisonRow {
  std::string name;            // "cnn5", "resnet18:head", "mobilenet_v2:all"
  std::string status = "ok";   // "ok" when it ran; otherwise why not ("skipped: no --resnet18 ONNX given")
  std::string recipe;          // "sgd lr 0.05 onecycle, 30 epochs, 96 px"
  std::string run_dir;         // where its config, epochs.csv, checkpoints and metrics are
  int epochs = 0;
  int64_t image_size = 0;
  double test_accuracy = 0, macro_precision = 0, macro_recall = 0, macro_f1 = 0;  // in [0, 1]
  double training_seconds = 0, images_per_second = 0, peak_memory_mb = 0;
  int64_t parameters = 0, trainable_parameters = 0;

  bool ran() const { return status == "ok"; }
};

struct Comparison {
  std::string data;    // the data set's path
  std::string split;   // "300/75/75", and where split.json is
  std::string device;  // "cuda:0", "cpu"
  std::vector<ComparisonRow> rows;

  // A Markdown document: a title line, the data/split/device, the table, then the
  // skipped rows' reasons as a list.
  std::string to_markdown() const;
  // A header line and one line per row; fields holding a comma, a quote or a line
  // break are quoted (RFC 4180). Numbers keep full precision.
  std::string to_csv() const;
  nlohmann::json to_json() const;
  // Fixed-width columns for the terminal.
  std::string to_table() const;
  // Writes <dir>/comparison.md, .csv and .json, each atomically.
  void write(const std::string& dir) const;
};

// One CSV field: as is, or quoted with inner quotes doubled when it holds ',', '"', CR or LF.
std::string csv_escape(const std::string& text);

}  // namespace kiln::report
