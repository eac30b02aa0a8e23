#include "data/image_folder.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

TEST_CASE("data csv: single-label rows, header, paths relative to the CSV") {
  test::TempDir dir("csv");
  test::make_image_folder(dir / "img", {"p", "q"}, 2);
  test::write_text(dir / "labels.csv", "image,label\nimg/p/0.png,dog\nimg/p/1.jpg,cat\nimg/q/0.png,dog\n\n");
  data::LoadConfig config;
  config.size = 12;
  const data::Dataset dataset = data::load_images(dir / "labels.csv", config);
  CHECK(dataset.images.shape() == Shape({3, 3, 12, 12}));
  CHECK(dataset.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(dataset.labels.to_vector() == std::vector<double>{1, 0, 1});
  CHECK(dataset.file_names[1] == "img/p/1.jpg");
  CHECK_FALSE(dataset.targets.defined());
}

TEST_CASE("data csv: multi-label rows give multi-hot targets, integer classes sort numerically") {
  test::TempDir dir("csv_multi");
  test::make_image_folder(dir / "img", {"p"}, 3);
  test::write_text(dir / "multi.csv", "img/p/0.png,\"2 10\"\nimg/p/1.jpg,10\nimg/p/2.bmp,\"1 2 10\"\n");
  data::LoadConfig config;
  config.size = 8;
  const data::Dataset dataset = data::load_images(dir / "multi.csv", config);
  CHECK(dataset.class_names == std::vector<std::string>{"1", "2", "10"});
  REQUIRE(dataset.targets.defined());
  CHECK(dataset.targets.shape() == Shape({3, 3}));
  CHECK(dataset.targets.to_vector() == std::vector<double>{0, 1, 1, 0, 0, 1, 1, 1, 1});
  CHECK(dataset.labels.to_vector() == std::vector<double>{1, 2, 0});  // the first label of each row
}

TEST_CASE("data csv: a row naming a missing file is an error, or skipped with --skip-bad") {
  test::TempDir dir("csv_missing");
  test::make_image_folder(dir / "img", {"p"}, 2);
  test::write_text(dir / "bad.csv", "img/p/0.png,a\nimg/p/gone.png,b\nimg/p/1.jpg,b\n");
  data::LoadConfig config;
  config.size = 8;
  test::expect_error_containing([&] { data::load_images(dir / "bad.csv", config); },
                                {"bad.csv", "line 2", "gone.png", "does not exist"});
  config.skip_bad = true;
  const data::Dataset dataset = data::load_images(dir / "bad.csv", config);
  CHECK(dataset.size() == 2);
  CHECK(dataset.skipped == 1);
  test::write_text(dir / "malformed.csv", "img/p/0.png\n");
  test::expect_error_containing([&] { data::load_images(dir / "malformed.csv", config); }, {"malformed.csv", "line 1"});
}
