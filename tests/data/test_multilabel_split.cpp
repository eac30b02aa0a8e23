// Iterative stratification of multi-label data sets (data/split.h).
#include <cmath>
#include <set>

#include "data/split.h"
#include "engine/core/rng.h"
#include "engine/tensor/factory.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {

// n images; class k is on each image with probability p[k] (seeded), then `rare_rows`
// images get the extra class "rare" (the last one). No pixels: a split needs none.
data::Dataset multi_label_set(int64_t n, const std::vector<double>& p, std::vector<int64_t> rare_rows) {
  data::Dataset dataset;
  const int64_t k_all = static_cast<int64_t>(p.size()) + 1;
  for (int64_t k = 0; k + 1 < k_all; ++k) dataset.class_names.push_back("c" + std::to_string(k));
  dataset.class_names.push_back("rare");
  std::vector<double> targets(static_cast<size_t>(n * k_all), 0.0), labels(static_cast<size_t>(n), -1.0);
  Rng rng(99);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k + 1 < k_all; ++k)
      if (rng.uniform() < p[static_cast<size_t>(k)]) targets[static_cast<size_t>(i * k_all + k)] = 1;
    dataset.file_names.push_back(std::to_string(i) + ".png");
  }
  for (int64_t row : rare_rows) targets[static_cast<size_t>(row * k_all + k_all - 1)] = 1;
  dataset.images = zeros({n, 1, 1, 1}, {DType::u8});
  dataset.labels = from_vector(labels, {n}, {DType::i64});
  dataset.targets = from_vector(targets, {n, k_all}, {DType::f32});
  dataset.source = "synthetic-multi";
  return dataset;
}

std::vector<int64_t> class_counts(const data::Dataset& dataset, const std::vector<std::string>& names) {
  std::vector<int64_t> counts(static_cast<size_t>(dataset.num_classes()), 0);
  const int64_t k_all = dataset.num_classes();
  for (int64_t row : data::indices_of(dataset, names))
    for (int64_t k = 0; k < k_all; ++k) counts[static_cast<size_t>(k)] += dataset.targets.data<float>()[row * k_all + k] > 0.5f;
  return counts;
}

}  // namespace

TEST_CASE("data split multi-label: iterative stratification keeps every class's share in train, val and test") {
  const data::Dataset dataset = multi_label_set(1200, {0.5, 0.3, 0.2, 0.1, 0.04, 0.015}, {3, 500});
  const data::Split split = data::make_split(dataset, data::split_by_ratio(0.2, 0.1), 5);
  CHECK(split.mode == "iterative ratio val=0.2 test=0.1");
  std::set<std::string> all(split.train.begin(), split.train.end());
  all.insert(split.val.begin(), split.val.end());
  all.insert(split.test.begin(), split.test.end());
  CHECK(all.size() == 1200);  // disjoint and complete
  CHECK(split.train.size() + split.val.size() + split.test.size() == 1200);
  CHECK(std::abs(static_cast<double>(split.test.size()) - 120) <= 3);
  CHECK(std::abs(static_cast<double>(split.val.size()) - 240) <= 3);

  const std::vector<int64_t> total = class_counts(dataset, split.train), val = class_counts(dataset, split.val),
                             test = class_counts(dataset, split.test);
  for (size_t k = 0; k + 1 < total.size(); ++k) {
    const double n = static_cast<double>(total[k] + val[k] + test[k]);
    INFO("class c" << k << " with " << n << " images: " << total[k] << "/" << val[k] << "/" << test[k]);
    REQUIRE(n >= 15);  // the fixture's rarest regular class still has enough images to split
    CHECK(val[k] >= 1);
    CHECK(test[k] >= 1);
    // Within one image of the ideal share (the algorithm works to the rounding).
    CHECK(std::abs(static_cast<double>(test[k]) - 0.1 * n) <= 1.0 + 1e-9);
    CHECK(std::abs(static_cast<double>(val[k]) - 0.2 * n) <= 1.0 + 1e-9);
  }
  // The class with 2 images cannot reach three parts: it is named.
  REQUIRE(split.warnings.size() == 1);
  CHECK(split.warnings[0].find("'rare' has 2 image(s)") != std::string::npos);

  const data::Split again = data::make_split(dataset, data::split_by_ratio(0.2, 0.1), 5);
  CHECK(again.train == split.train);
  CHECK(again.test == split.test);
  const data::Split other = data::make_split(dataset, data::split_by_ratio(0.2, 0.1), 6);
  CHECK(other.test != split.test);
}

TEST_CASE("data split multi-label: no test part, images without labels, and per-class counts refused") {
  data::Dataset dataset = multi_label_set(200, {0.3, 0.2}, {});  // many images have no label at all
  const data::Split split = data::make_split(dataset, data::split_by_ratio(0.25, 0.0), 1);
  CHECK(split.test.empty());
  CHECK(split.train.size() == 150);
  CHECK(split.val.size() == 50);
  test::expect_error_containing([&] { data::make_split(dataset, data::parse_split_counts("10/5/5"), 0); },
                                {"multi-label", "synthetic-multi", "--val and --test"});
}
