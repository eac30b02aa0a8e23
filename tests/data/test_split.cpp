#include <algorithm>
#include <filesystem>
#include <set>

#include "data/image_folder.h"
#include "data/split.h"
#include "engine/tensor/factory.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {

// A dataset with labels only (no pixels are needed to split): `counts[k]` samples of class k.
data::Dataset labelled(const std::vector<int64_t>& counts) {
  data::Dataset dataset;
  std::vector<double> labels;
  for (size_t k = 0; k < counts.size(); ++k) {
    dataset.class_names.push_back("class" + std::to_string(k));
    for (int64_t i = 0; i < counts[k]; ++i) {
      labels.push_back(static_cast<double>(k));
      dataset.file_names.push_back("class" + std::to_string(k) + "/" + std::to_string(i) + ".jpg");
    }
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  dataset.images = zeros({n, 1, 1, 1}, {DType::u8});
  dataset.labels = from_vector(labels, {n}, {DType::i64});
  dataset.source = "synthetic";
  return dataset;
}

int64_t count_class(const data::Dataset& dataset, const std::vector<std::string>& names, int64_t k) {
  int64_t count = 0;
  for (int64_t row : data::indices_of(dataset, names)) count += dataset.labels.data<int64_t>()[row] == k;
  return count;
}

void check_disjoint(const data::Split& split) {
  std::set<std::string> seen;
  for (const auto* part : {&split.train, &split.val, &split.test})
    for (const std::string& name : *part) CHECK_MESSAGE(seen.insert(name).second, name << " is in two subsets");
}

}  // namespace

TEST_CASE("data split: ratios are stratified per class and deterministic by seed") {
  const data::Dataset dataset = labelled({100, 50, 20});
  const data::Split split = data::make_split(dataset, data::split_by_ratio(0.2, 0.1), 7);
  CHECK(split.train.size() + split.val.size() + split.test.size() == 170);
  CHECK(count_class(dataset, split.val, 0) == 20);
  CHECK(count_class(dataset, split.test, 0) == 10);
  CHECK(count_class(dataset, split.val, 1) == 10);
  CHECK(count_class(dataset, split.test, 2) == 2);
  CHECK(count_class(dataset, split.train, 2) == 14);
  check_disjoint(split);
  CHECK(data::make_split(dataset, data::split_by_ratio(0.2, 0.1), 7).val == split.val);
  CHECK(data::make_split(dataset, data::split_by_ratio(0.2, 0.1), 8).val != split.val);
  CHECK(split.mode == "ratio val=0.2 test=0.1");
}

TEST_CASE("data split: per-class counts, and a class with too few images is named") {
  const data::Dataset dataset = labelled({12, 9});
  const data::Split split = data::make_split(dataset, data::parse_split_counts("6/2/1"), 0);
  CHECK(split.train.size() == 12);
  CHECK(split.val.size() == 4);
  CHECK(split.test.size() == 2);
  CHECK(count_class(dataset, split.train, 1) == 6);
  check_disjoint(split);
  test::expect_error_containing([&] { data::make_split(dataset, data::parse_split_counts("6/2/2"), 0); },
                                {"class 'class1'", "has 9 images, needs 10"});
  CHECK(data::parse_split_counts("300/75").test_count == 0);  // with a separate test folder
  test::expect_error_containing([] { data::parse_split_counts("300-75"); }, {"300-75", "per class"});
}

TEST_CASE("data split: split.json round trip, and test never overlaps train or val") {
  test::TempDir dir("split_json");
  const data::Dataset dataset = labelled({30, 30, 30});
  const data::Split split = data::make_split(dataset, data::parse_split_counts("20/5/5"), 42);
  data::save_split(dir / "split.json", split);
  const data::Split loaded = data::load_split(dir / "split.json");
  CHECK(loaded.seed == 42);
  CHECK(loaded.mode == "per_class 20/5/5");
  CHECK(loaded.train == split.train);
  CHECK(loaded.val == split.val);
  CHECK(loaded.test == split.test);
  const std::vector<int64_t> test_rows = data::indices_of(dataset, loaded.test);
  for (const auto* part : {&loaded.train, &loaded.val})
    for (int64_t row : data::indices_of(dataset, *part))
      CHECK(std::find(test_rows.begin(), test_rows.end(), row) == test_rows.end());
  test::expect_error_containing([&] { data::indices_of(dataset, {"nope.jpg"}); }, {"nope.jpg"});
  test::write_text(dir / "broken.json", "{\"seed\": 1}");
  test::expect_error_containing([&] { data::load_split(dir / "broken.json"); }, {"broken.json", "mode"});
}

TEST_CASE("data split: imagenette_96 pooled, 300/75/75 per class gives 3000/750/750") {
  const std::string root = test::shared_assets_dir() + "/data/imagenette_96";
  if (!std::filesystem::is_directory(root)) {
    MESSAGE("SKIPPED: " << root << " is absent (shared assets, see shared/assets/MANIFEST.md)");
    return;
  }
  data::LoadConfig config;
  config.size = 8;  // splitting needs labels only; small pixels keep the decode cheap
  const data::Dataset dataset = data::load_images(root, config);
  CHECK(dataset.size() == 4500);
  CHECK(dataset.num_classes() == 10);
  const data::Split split = data::make_split(dataset, data::parse_split_counts("300/75/75"), 0);
  CHECK(split.train.size() == 3000);
  CHECK(split.val.size() == 750);
  CHECK(split.test.size() == 750);
  for (int64_t k = 0; k < 10; ++k) CHECK(count_class(dataset, split.test, k) == 75);
  check_disjoint(split);
}
