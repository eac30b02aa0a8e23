#include <cstdlib>

#include "data/image_folder.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

TEST_CASE("data folder: shapes, sorted class order, file names and labels") {
  test::TempDir dir("folder");
  test::make_image_folder(dir / "photos", {"zebra", "ant", "moth"}, 4);
  data::LoadConfig config;
  config.size = 16;
  const data::Dataset dataset = data::load_images(dir / "photos", config);
  CHECK(dataset.images.shape() == Shape({12, 3, 16, 16}));
  CHECK(dataset.class_names == std::vector<std::string>{"ant", "moth", "zebra"});
  CHECK(dataset.file_names[0] == "ant/0.png");
  CHECK(dataset.file_names[5] == "moth/1.jpg");
  CHECK(dataset.skipped == 0);
  CHECK_FALSE(dataset.targets.defined());
  const std::vector<double> labels = dataset.labels.to_vector();
  CHECK(labels == std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  // Solid images stay solid through resize and crop: red encodes the class folder.
  const uint8_t* pixels = dataset.images.data<uint8_t>();
  CHECK(pixels[0 * 768 + 100] == 40);  // ant was written as class 1 (red 40)
  CHECK(pixels[11 * 768 + 100] == 0);  // zebra was class 0 (red 0)

  config.channels = 1;
  CHECK(data::load_images(dir / "photos", config).images.shape() == Shape({12, 1, 16, 16}));
}

TEST_CASE("data folder: crop keeps the centre, pad letterboxes, geometry exact") {
  test::TempDir dir("geometry");
  // 60 wide, 20 high: red | green | blue stripes of 20 columns each.
  std::vector<uint8_t> stripes;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 60; ++x) {
      const int stripe = x / 20;
      stripes.insert(stripes.end(), {uint8_t(stripe == 0 ? 255 : 0), uint8_t(stripe == 1 ? 255 : 0),
                                     uint8_t(stripe == 2 ? 255 : 0)});
    }
  test::write_image(dir / "geo/stripes/a.png", 20, 60, stripes);
  data::LoadConfig config;
  config.size = 10;

  // crop: 60x20 -> 30x10, centre 10 columns = resized columns 10..19 = the green stripe.
  data::Dataset cropped = data::load_images(dir / "geo", config);
  const uint8_t* c = cropped.images.data<uint8_t>();  // (1, 3, 10, 10)
  for (int y = 0; y < 10; ++y)
    for (int x = 2; x < 8; ++x) {  // away from the stripe edges the filter touches
      CHECK(c[0 * 100 + y * 10 + x] <= 1);
      CHECK(c[1 * 100 + y * 10 + x] >= 254);
      CHECK(c[2 * 100 + y * 10 + x] <= 1);
    }

  // pad: 60x20 -> 10x3 (longer side to 10), rows 3..5 of a black 10x10 canvas.
  config.fit = data::Fit::pad;
  data::Dataset padded = data::load_images(dir / "geo", config);
  const uint8_t* p = padded.images.data<uint8_t>();
  for (int y = 0; y < 10; ++y) {
    const bool inside = y >= 3 && y < 6;
    const int sum = p[0 * 100 + y * 10 + 0] + p[1 * 100 + y * 10 + 5] + p[2 * 100 + y * 10 + 9];
    INFO("row " << y);
    CHECK((inside ? sum >= 3 * 200 : sum == 0));
  }
  CHECK(p[0 * 100 + 4 * 10 + 0] >= 200);  // red on the left
  CHECK(p[2 * 100 + 4 * 10 + 9] >= 200);  // blue on the right

  // An image already size x size is copied, not filtered: bit-exact.
  std::vector<uint8_t> noise(10 * 10 * 3);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>((i * 37) % 251);
  test::write_image(dir / "exact/k/n.png", 10, 10, noise);
  config.fit = data::Fit::crop;
  const data::Dataset exact = data::load_images(dir / "exact", config);
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 100; ++i) CHECK(exact.images.data<uint8_t>()[ch * 100 + i] == noise[i * 3 + ch]);
}

TEST_CASE("data folder: a corrupt file is an error naming it, --skip-bad skips and counts it") {
  test::TempDir dir("corrupt");
  test::make_image_folder(dir / "photos", {"a", "b"}, 3);
  test::write_text(dir / "photos/b/broken.jpg", "this is not a jpeg");
  data::LoadConfig config;
  config.size = 8;
  test::expect_error_containing([&] { data::load_images(dir / "photos", config); }, {"broken.jpg", "--skip-bad"});
  config.skip_bad = true;
  const data::Dataset dataset = data::load_images(dir / "photos", config);
  CHECK(dataset.size() == 6);
  CHECK(dataset.skipped == 1);
  CHECK(dataset.file_names.back() == "b/2.bmp");
}

TEST_CASE("data folder: missing folder, no classes and empty class folder are named") {
  test::TempDir dir("missing");
  data::LoadConfig config;
  test::expect_error_containing([&] { data::load_images(dir / "nowhere", config); }, {"nowhere", "does not exist"});
  std::filesystem::create_directories(dir / "flat");
  test::expect_error_containing([&] { data::load_images(dir / "flat", config); }, {"flat", "no class sub-folders"});
  test::make_image_folder(dir / "photos", {"full"}, 2);
  std::filesystem::create_directories(dir / "photos/empty");
  test::write_text(dir / "photos/empty/notes.txt", "no images here");
  test::expect_error_containing([&] { data::load_images(dir / "photos", config); }, {"empty class folder", "empty"});
}

TEST_CASE("data folder: a train/val layout is pooled with prefixed names") {
  test::TempDir dir("pooled");
  test::make_image_folder(dir / "set/train", {"x", "y"}, 3);
  test::make_image_folder(dir / "set/val", {"x", "y"}, 1);
  data::LoadConfig config;
  config.size = 8;
  const data::Dataset dataset = data::load_images(dir / "set", config);
  CHECK(dataset.size() == 8);
  CHECK(dataset.class_names == std::vector<std::string>{"x", "y"});
  CHECK(dataset.file_names[0] == "train/x/0.png");
  CHECK(dataset.file_names.back() == "val/y/0.png");
}
