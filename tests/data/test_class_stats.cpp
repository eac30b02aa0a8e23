#include <nlohmann/json.hpp>

#include "data/class_stats.h"
#include "engine/tensor/factory.h"
#include "tests/test_util.h"

using namespace kiln;

TEST_CASE("data class stats: counts, cardinality, empty label sets and the co-occurrence matrix") {
  data::Dataset dataset;
  dataset.class_names = {"cat", "dog", "fish"};
  // {cat, dog}, {dog}, {}, {cat, dog, fish}, {dog, fish}
  dataset.targets = from_vector({1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1}, {5, 3}, {DType::f32});
  dataset.labels = from_vector({0, 1, -1, 0, 1}, {5}, {DType::i64});
  dataset.images = zeros({5, 1, 1, 1}, {DType::u8});
  const data::ClassStats stats = data::class_stats(dataset);
  CHECK(stats.multi_label);
  CHECK(stats.counts == std::vector<int64_t>{2, 4, 2});
  CHECK(stats.cardinality == doctest::Approx(8.0 / 5.0));
  CHECK(stats.density == doctest::Approx(8.0 / 15.0));
  CHECK(stats.no_label_images == 1);
  CHECK(stats.imbalance_ratio == doctest::Approx(2.0));
  CHECK(stats.cooccurrence == std::vector<std::vector<int64_t>>{{2, 2, 1}, {2, 4, 2}, {1, 2, 2}});
  const nlohmann::json json = stats.to_json();
  CHECK(json.at("cooccurrence")[1][2] == 2);
  CHECK(json.at("no_label_images") == 1);
  const std::string text = stats.to_text();
  CHECK(text.find("labels per image 1.600") != std::string::npos);
  CHECK(text.find("images with no labels: 1") != std::string::npos);
  CHECK(text.find("co-occurrence") != std::string::npos);

  dataset.targets = Tensor();  // the same rows read as single-label
  const data::ClassStats single = data::class_stats(dataset);
  CHECK_FALSE(single.multi_label);
  CHECK(single.counts == std::vector<int64_t>{2, 2, 0});
  CHECK(single.cardinality == doctest::Approx(4.0 / 5.0));
  CHECK(single.cooccurrence[0] == std::vector<int64_t>{2, 0, 0});
  CHECK(single.to_text().find("co-occurrence") == std::string::npos);
}
