#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/csv.h"
#include "data/mosaic.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

TEST_CASE("data mosaic: the plan is seeded, label sets are the classes present, train and test photos are disjoint") {
  test::TempDir dir("mosaic_plan");
  test::make_image_folder(dir / "src", {"a", "b", "c", "d", "e"}, 6);
  const data::FileListing source = data::list_image_folder(dir / "src");
  data::MosaicSpec spec;
  spec.train_count = 60, spec.test_count = 20, spec.max_classes = 3, spec.seed = 7;
  const data::MosaicPlan plan = data::plan_mosaics(source, spec);
  REQUIRE(plan.train.size() == 60);
  REQUIRE(plan.test.size() == 20);
  std::set<size_t> distinct_counts;
  for (const auto* side : {&plan.train, &plan.test})
    for (const data::MosaicImage& image : *side) {
      REQUIRE(image.tile_class.size() == 4);
      const std::set<int64_t> present(image.tile_class.begin(), image.tile_class.end());
      CHECK(std::vector<int64_t>(present.begin(), present.end()) == image.labels);
      CHECK(image.labels.size() >= 1);
      CHECK(image.labels.size() <= 3);
      distinct_counts.insert(image.labels.size());
      for (size_t t = 0; t < 4; ++t)  // each tile's photo is of the tile's class
        CHECK(source.labels[static_cast<size_t>(image.tile_source[t])].front() == image.tile_class[t]);
    }
  CHECK(distinct_counts == std::set<size_t>{1, 2, 3});
  std::set<int64_t> train_used, test_used;
  for (const auto& image : plan.train) train_used.insert(image.tile_source.begin(), image.tile_source.end());
  for (const auto& image : plan.test) test_used.insert(image.tile_source.begin(), image.tile_source.end());
  for (int64_t row : test_used) CHECK(train_used.count(row) == 0);
  for (int64_t row : plan.test_sources)
    CHECK(!std::binary_search(plan.train_sources.begin(), plan.train_sources.end(), row));

  const data::MosaicPlan again = data::plan_mosaics(source, spec);
  CHECK(again.train.back().tile_source == plan.train.back().tile_source);
  spec.seed = 8;
  const data::MosaicPlan other = data::plan_mosaics(source, spec);
  bool differs = false;
  for (size_t i = 0; i < plan.train.size(); ++i) differs = differs || other.train[i].tile_source != plan.train[i].tile_source;
  CHECK(differs);
  spec.max_classes = 5;
  test::expect_error_containing([&] { data::plan_mosaics(source, spec); }, {"--max-classes", "1 to 4"});
}

TEST_CASE("data mosaic: make-mosaic writes the course's CSVs, quoted captions and the tiles' pixels") {
  test::TempDir dir("mosaic_write");
  test::make_image_folder(dir / "src", {"x_y", "z"}, 4);
  const data::FileListing source = data::list_image_folder(dir / "src");
  data::MosaicSpec spec;
  spec.train_count = 5, spec.test_count = 3, spec.tile = 8, spec.seed = 3;
  int64_t last_done = 0;
  data::write_mosaic_dataset(source, spec, dir / "out", [&](int64_t done, int64_t) { last_done = done; });
  CHECK(last_done == 8);
  const std::vector<data::CsvRecord> train = data::read_csv_file(dir / "out/train.csv");
  REQUIRE(train.size() == 6);
  CHECK(train[0].cells == std::vector<std::string>{"ImageID", "Labels", "Captions"});
  const std::vector<data::CsvRecord> test = data::read_csv_file(dir / "out/test.csv");
  REQUIRE(test.size() == 4);
  CHECK(test[0].cells == std::vector<std::string>{"ImageID", "Captions"});
  const std::vector<data::CsvRecord> key = data::read_csv_file(dir / "out/test_labels.csv");
  REQUIRE(key.size() == 4);
  const data::MosaicPlan plan = data::plan_mosaics(source, spec);
  for (size_t i = 0; i < 5; ++i) {
    const auto& cells = train[i + 1].cells;
    REQUIRE(cells.size() == 3);
    std::string expected_labels;
    for (int64_t k : plan.train[i].labels) expected_labels += (expected_labels.empty() ? "" : " ") + std::to_string(k);
    CHECK(cells[1] == expected_labels);
    CHECK(cells[2] == data::mosaic_caption(plan.train[i], source.class_names));
    CHECK(cells[2].find("\"x y\"") + cells[2].find("\"z\"") != 2 * std::string::npos);
    // The tile's colour survives (solid source images, lossless PNG): red encodes the class.
    const data::DecodedImage image = data::decode_image(dir / ("out/" + cells[0]), 3);
    CHECK(image.width == 16);
    const int64_t top_right_red = image.pixels[static_cast<size_t>((0 * 16 + 8) * 3)];
    CHECK(std::abs(top_right_red - 40 * plan.train[i].tile_class[1]) <= 3);  // the .jpg sources are lossy
  }
  std::ifstream classes(dir / "out/classes.txt");
  std::stringstream text;
  text << classes.rdbuf();
  CHECK(text.str() == "x_y\nz\n");
  std::ifstream raw(dir / "out/train.csv");
  std::string header, first;
  std::getline(raw, header);
  std::getline(raw, first);
  CHECK(first.find(",\"a 2x2 mosaic: \"\"") != std::string::npos);  // RFC 4180: quoted, "" for each quote
  CHECK_FALSE(std::filesystem::exists(dir / ("out.partial." + std::to_string(::getpid()))));

  test::write_text(dir / "taken/notes.txt", "mine");
  test::expect_error_containing([&] { data::write_mosaic_dataset(source, spec, dir / "taken"); },
                                {"taken", "not a mosaic folder"});
  data::write_mosaic_dataset(source, spec, dir / "out");  // an earlier mosaic folder is replaced
  CHECK(data::read_csv_file(dir / "out/train.csv").size() == 6);
}

TEST_CASE("data csv: RFC 4180 fields with commas, doubled quotes and line breaks, errors name the line") {
  const std::vector<data::CsvRecord> records =
      data::parse_csv("ImageID,Labels,Captions\r\n0.jpg,1 6,\"a dog, \"\"Rex\"\"\nand a cat\"\r\n\r\n1.jpg,,x\n", "t.csv");
  REQUIRE(records.size() == 3);
  CHECK(records[1].cells == std::vector<std::string>{"0.jpg", "1 6", "a dog, \"Rex\"\nand a cat"});
  CHECK(records[1].line == 2);
  CHECK(records[2].line == 5);
  CHECK(records[2].cells == std::vector<std::string>{"1.jpg", "", "x"});
  for (const std::string field : {"plain", "a, b", "say \"hi\"", "two\nlines", " padded", ""})
    CHECK(data::parse_csv(data::csv_row({field, "end"}), "round")[0].cells == std::vector<std::string>{field, "end"});
  CHECK(data::csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  test::expect_error_containing([] { data::parse_csv("a,\"open\nb,c\n", "u.csv"); }, {"u.csv", "line 1", "never closed"});
  test::expect_error_containing([] { data::parse_csv("a,b\nx,ab\"c\n", "q.csv"); }, {"q.csv", "line 2", "double quote"});
  test::expect_error_containing([] { data::parse_csv("a,\"b\"c\n", "r.csv"); }, {"r.csv", "line 1", "after the closing"});
}

TEST_CASE("data mosaic: a rare class keeps a fraction of its photos and is on about that share of mosaics") {
  test::TempDir dir("mosaic_rare");
  test::make_image_folder(dir / "src", {"a", "b", "c", "d", "e"}, 20);
  const data::FileListing source = data::list_image_folder(dir / "src");
  data::MosaicSpec spec;
  spec.train_count = 3000, spec.test_count = 0, spec.max_classes = 3, spec.seed = 2;
  spec.rare_class = "c";
  spec.rare_fraction = 0.1;
  const data::MosaicPlan plan = data::plan_mosaics(source, spec);
  std::vector<int64_t> on(5, 0);
  std::set<int64_t> rare_photos;
  for (const data::MosaicImage& image : plan.train) {
    for (int64_t k : image.labels) ++on[static_cast<size_t>(k)];
    for (size_t t = 0; t < 4; ++t)
      if (image.tile_class[t] == 2) rare_photos.insert(image.tile_source[t]);
  }
  CHECK(rare_photos.size() == 1);  // 2 of its 20 photos kept: 1 for train mosaics, 1 for test
  const double common = (on[0] + on[1] + on[3] + on[4]) / 4.0;
  INFO("mosaics with the rare class " << on[2] << ", with a common class " << common);
  // Weighted draws without replacement lift a weight-0.1 class a little above 10% when
  // two or three classes are drawn; between 6% and 20% of a common class's count.
  CHECK(on[2] > 0.06 * common);
  CHECK(on[2] < 0.2 * common);
  spec.rare_class = "zebra";
  test::expect_error_containing([&] { data::plan_mosaics(source, spec); }, {"--rare-class 'zebra'", "not a class"});
  spec.rare_class.clear();
  test::expect_error_containing([&] { data::plan_mosaics(source, spec); }, {"--rare-fraction", "needs --rare-class"});
}
