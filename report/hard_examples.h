// Hard examples: the images a trained model gets most wrong, the course's "look at the
// images you get wrong" step (`kiln eval CHECKPOINT --hardest 100`).
//
// Each image's loss is its cross-entropy, computed in double from the logits z:
//   loss_i = log(sum_k exp(z_ik)) - z_i,y(i)   = -log p_i,y(i)
// The hardest are the `count` images with the highest loss (ties: lower index first),
// listed hardest first with the file, the true and predicted class, the predicted
// class's probability and the loss; per class: how many of the hardest belong to it,
// out of the class's images, and their mean loss. A confident mistake (high p on a
// wrong class) has a high loss; so has a correct but hesitant answer (low p on the
// true class). Both are worth a look: a mislabelled image, two classes that look
// alike, an object too small at the training size.
//
// Written into the run folder (each atomically): hardest.csv (rank,file,true,
// predicted,probability,loss), hardest.json (the list, the per-class table, the
// checkpoint and subset) and figures/hardest.png (a captioned grid, hardest first);
// report.html shows the grid and the per-class table when hardest.json is there
// (report/run_report.h).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/tensor/tensor.h"
#include "report/charts.h"

namespace kiln::report {

struct HardExample {
  int64_t index = 0;  // row of the data set
  std::string file;   // its file name ("" when the data set has none)
  int64_t label = 0, predicted = 0;
  double probability = 0;  // of the predicted class
  double loss = 0;         // cross-entropy of the true class
};

struct HardClass {
  std::string name;
  int64_t count = 0;    // of the hardest in this class
  int64_t images = 0;   // of this class in the data set
  double mean_loss = 0; // of this class's hardest (0 when none)
};

struct HardExamples {
  std::vector<HardExample> examples;  // hardest first
  std::vector<HardClass> classes;     // in class order
  nlohmann::json to_json() const;
  std::string to_table(const std::vector<std::string>& class_names, size_t rows) const;
};

// logits: host f32 (N, K); the data set's labels (N). Throws naming a label outside
// 0..K-1 or a count below 1.
HardExamples hardest_examples(const Tensor& logits, const data::Dataset& dataset, int64_t count);

// The captioned grid, hardest first: "true: cat", "pred: dog 0.97", "#1 loss 4.21".
// display_names (K, optional): what the captions call the classes (Tiny-ImageNet's
// words.txt names instead of its wnids); the CSV and JSON keep the data set's names.
Figure hard_examples_grid(const HardExamples& hard, const data::Dataset& dataset, size_t max_images = 100,
                          const std::vector<std::string>& display_names = {});

// Writes hardest.csv, hardest.json (with `about`: checkpoint, subset) and
// figures/hardest.png into run_dir.
void write_hard_examples(const std::string& run_dir, const HardExamples& hard, const data::Dataset& dataset,
                         const nlohmann::json& about, const std::vector<std::string>& display_names = {});

}  // namespace kiln::report
