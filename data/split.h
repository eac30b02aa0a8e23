// Train / validation / test splits: deterministic, stratified and seeded, and saved
// as JSON so that a run can be reproduced and audited.
//
// Stratified means every class is split on its own, so each subset has the class
// proportions of the whole. Within a class the samples are shuffled by a seeded
// Fisher-Yates, so the same seed and the same dataset give the same split on every
// machine. Two ways to ask for sizes:
//
//   ratios      --val 0.2 --test 0.1   each class: round(n*0.1) test, round(n*0.2) val,
//                                      the rest train
//   per class   --split 300/75/75      each class: exactly 300 train, 75 val, 75 test
//                                      (an error names a class that has too few images;
//                                      leftover images are in no subset)
//
// Multi-label data sets (Dataset::targets defined) cannot be split class by class:
// an image with labels {a, b} belongs to both classes. They are split by iterative
// stratification (Sechidis, Tsoumakas and Vlahavas, "On the stratification of
// multi-label data", ECML PKDD 2011; scikit-multilearn's IterativeStratification
// with order 1), with ratios only:
//   each part j wants n*r_j images in all and, for each class c, n_c*r_j images of c.
//   Repeat: take the class with the fewest images still unassigned (the hardest to
//   spread); give each of its images to the part that wants most images of that
//   class (ties: the part that wants most images, then a seeded coin); lower that
//   part's wants for every label the image carries.
//   Images with no labels go, one by one, to the part that wants most images.
// Rare classes are placed first, so a class of 10 images at 0.7/0.2/0.1 still gets
// 7/2/1. A class too rare to reach every part (fewer images than parts, say) is named
// in Split::warnings.
//
// With a separate test folder, ask for no test part here ("300/75" or --test 0) and
// set `test` from the test dataset's file names.
//
// split.json:  {"seed": 0, "mode": "per_class 300/75/75", "source": "...",
//               "train": ["church/a.jpg", ...], "val": [...], "test": [...]}
// Subsets hold file names (Dataset::file_names), not indices, so that the file stays
// valid when the folder is listed again or packed.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"

namespace kiln::data {

struct SplitSpec {
  bool per_class = false;
  double val_ratio = 0.2, test_ratio = 0.1;             // when !per_class
  int64_t train_count = 0, val_count = 0, test_count = 0;  // when per_class
  std::string describe() const;                          // "ratio val=0.2 test=0.1" / "per_class 300/75/75"
};

SplitSpec split_by_ratio(double val_ratio, double test_ratio);
SplitSpec parse_split_counts(const std::string& text);  // "300/75/75" or "300/75" (no test)

struct Split {
  uint64_t seed = 0;
  std::string mode;    // SplitSpec::describe()
  std::string source;  // the dataset it was made from
  std::vector<std::string> train, val, test;  // file names, in dataset order
  std::vector<std::string> warnings;          // classes too rare to split (not saved)
};

// Throws naming the class when a per-class split asks for more images than it has,
// and for per-class counts on a multi-label data set (give ratios).
Split make_split(const Dataset& dataset, const SplitSpec& spec, uint64_t seed);

// The rows of `dataset` named by `names`; throws naming a file that is not there.
std::vector<int64_t> indices_of(const Dataset& dataset, const std::vector<std::string>& names);

void save_split(const std::string& path, const Split& split);  // atomic
Split load_split(const std::string& path);                     // throws naming the file and key

}  // namespace kiln::data
