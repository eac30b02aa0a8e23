// Multi-size packs (data/pack_set.h): each member equals the single-size pack of its
// size pixel for pixel, every member holds the same images, labels and names in the
// same order, the sizes list and a broken set are refused with errors that name the
// set, the member and the sizes, and a failed write leaves nothing behind.
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "data/image_folder.h"
#include "data/pack.h"
#include "data/pack_set.h"
#include "engine/core/rng.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {

// root/<class>/<i>.png: images of noise (every pixel its own value, so that resampling
// shows) of sizes that vary per image, none of them square.
void make_noise_folder(const std::string& root, const std::vector<std::string>& classes, int per_class) {
  Rng rng(17);
  for (size_t k = 0; k < classes.size(); ++k)
    for (int i = 0; i < per_class; ++i) {
      const int height = 19 + 7 * i, width = 33 - 3 * static_cast<int>(k) + 5 * i;
      std::vector<uint8_t> pixels(static_cast<size_t>(height * width * 3));
      for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng.uniform() * 255.0);
      test::write_image(root + "/" + classes[k] + "/" + std::to_string(i) + ".png", height, width, pixels);
    }
}

// The files directly in `dir` (not in sub-folders).
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("pack set: every member equals the single-size pack of its size, with the same images, labels and order") {
  test::TempDir dir("pack_set");
  make_noise_folder(dir / "photos", {"b", "a"}, 3);
  const std::vector<int64_t> sizes = {8, 12, 16};
  data::LoadConfig config;
  const data::FileListing listing = data::list_images(dir / "photos");
  std::filesystem::create_directories(dir / "out");
  data::write_pack_set(dir / "out/photos.kpacks", sizes, data::load_listing_at_sizes(listing, config, sizes), "crop");
  // The members sit next to the index, named NAME.SIZE.kpack; no temporary is left.
  CHECK(files_in(dir / "out") ==
        std::vector<std::string>{"photos.12.kpack", "photos.16.kpack", "photos.8.kpack", "photos.kpacks"});

  const data::PackSetIndex index = data::read_pack_set_index(dir / "out/photos.kpacks");
  CHECK(index.sizes == sizes);
  CHECK(index.count == 6);
  CHECK(index.sizes_text() == "8/12/16");
  const std::vector<data::Dataset> members = data::open_pack_set(index);
  REQUIRE(members.size() == 3);
  for (size_t k = 0; k < sizes.size(); ++k) {
    CAPTURE(sizes[k]);
    config.size = sizes[k];
    data::write_pack(dir / "single.kpack", data::load_images(dir / "photos", config));
    const data::Dataset single = data::open_pack(dir / "single.kpack");
    const data::Dataset& member = members[k];
    REQUIRE(member.images.shape() == single.images.shape());
    CHECK(std::memcmp(member.images.raw_data(), single.images.raw_data(), single.images.nbytes()) == 0);
    CHECK(member.labels.to_vector() == single.labels.to_vector());
    CHECK(member.file_names == single.file_names);
    CHECK(member.class_names == single.class_names);
  }
  CHECK(data::open_pack_set_member(index, 12, "--size").images.shape() == Shape({6, 3, 12, 12}));
  test::expect_error_containing([&] { data::open_pack_set_member(index, 20, "--size"); },
                                {"--size", "photos.kpacks", "no 20 px pack", "8/12/16"});
}

TEST_CASE("pack set: the sizes list is refused when not ascending, duplicated, zero or not a number") {
  CHECK(data::parse_pack_sizes("32,48,64") == std::vector<int64_t>{32, 48, 64});
  CHECK(data::parse_pack_sizes("224") == std::vector<int64_t>{224});
  test::expect_error_containing([] { data::parse_pack_sizes("48,32"); }, {"--size 48,32", "ascending", "32 comes after 48"});
  test::expect_error_containing([] { data::parse_pack_sizes("32,32,64"); }, {"--size", "32 is listed twice"});
  test::expect_error_containing([] { data::parse_pack_sizes("0,32"); }, {"--size", "at least 1 pixel", "0"});
  test::expect_error_containing([] { data::parse_pack_sizes("32,,48"); }, {"--size", "'' is not a size"});
  test::expect_error_containing([] { data::parse_pack_sizes("32,4x"); }, {"--size", "'4x' is not a size"});
  test::expect_error_containing([] { data::parse_pack_sizes("-8"); }, {"--size", "'-8' is not a size"});
}

TEST_CASE("pack set: a missing member, members that disagree, and a bad index are named") {
  test::TempDir dir("pack_set_bad");
  make_noise_folder(dir / "photos", {"x", "y"}, 2);
  const data::FileListing listing = data::list_images(dir / "photos");
  const std::vector<data::Dataset> sets = data::load_listing_at_sizes(listing, {}, {8, 16});
  const std::string index_path = dir / "p.kpacks";
  data::write_pack_set(index_path, {8, 16}, sets, "crop");
  const data::PackSetIndex index = data::read_pack_set_index(index_path);

  // A member of another image count (replaced after the set was written).
  data::write_pack(dir / "p.16.kpack", data::subset(sets[1], {0, 1, 2}));
  test::expect_error_containing([&] { data::open_pack_set(index); },
                                {"p.kpacks", "p.16.kpack", "holds 3 images", "index says 4"});
  // The same count, another order: the sets would pair other images at each size.
  data::write_pack(dir / "p.16.kpack", data::subset(sets[1], {1, 0, 2, 3}));
  test::expect_error_containing([&] { data::open_pack_set(index); },
                                {"p.16.kpack", "p.8.kpack", "list other images"});
  // A member of another size under this size's name.
  data::write_pack(dir / "p.16.kpack", sets[0]);
  test::expect_error_containing([&] { data::open_pack_set(index); }, {"p.16.kpack", "8x8 images", "16 px"});
  // A missing member.
  std::filesystem::remove(dir / "p.16.kpack");
  test::expect_error_containing([&] { data::open_pack_set(index); }, {"p.kpacks", "16 px member", "is missing"});

  test::write_text(dir / "other.kpacks", "{\"format\": \"something else\"}");
  test::expect_error_containing([&] { data::read_pack_set_index(dir / "other.kpacks"); },
                                {"other.kpacks", "not a pack set index"});
  test::write_text(dir / "down.kpacks", "{\"format\": \"kiln pack set\", \"version\": 1, \"sizes\": [16, 8], "
                                        "\"members\": [\"a\", \"b\"], \"count\": 1, \"channels\": 3, \"classes\": 1}");
  test::expect_error_containing([&] { data::read_pack_set_index(dir / "down.kpacks"); },
                                {"down.kpacks", "ascending"});
  test::write_text(dir / "escape.kpacks", "{\"format\": \"kiln pack set\", \"version\": 1, \"sizes\": [8], "
                                          "\"members\": [\"../x.kpack\"], \"count\": 1, \"channels\": 3, \"classes\": 1}");
  test::expect_error_containing([&] { data::read_pack_set_index(dir / "escape.kpacks"); },
                                {"escape.kpacks", "../x.kpack", "not a file name next to the index"});
  for (const char* folder : {".", ".."}) {  // file names of their own, but folders
    test::write_text(dir / "folder.kpacks", std::string("{\"format\": \"kiln pack set\", \"version\": 1, \"sizes\": [8], "
                                                        "\"members\": [\"") + folder +
                                                "\"], \"count\": 1, \"channels\": 3, \"classes\": 1}");
    test::expect_error_containing([&] { data::read_pack_set_index(dir / "folder.kpacks"); },
                                  {"folder.kpacks", std::string("member '") + folder + "'", "not a file name"});
  }
  test::write_text(dir / "short.kpacks", "{\"format\": \"kiln pack set\", \"version\": 1, \"sizes\": [8, 16], "
                                         "\"members\": [\"a\"], \"count\": 1, \"channels\": 3, \"classes\": 1}");
  test::expect_error_containing([&] { data::read_pack_set_index(dir / "short.kpacks"); },
                                {"short.kpacks", "lists 1 files for 2 sizes"});
  test::expect_error_containing([&] { data::read_pack_set_index(dir / "none.kpacks"); }, {"none.kpacks"});
}

TEST_CASE("pack set: a write that fails at one size leaves no member, no temporary and no index") {
  test::TempDir dir("pack_set_atomic");
  make_noise_folder(dir / "photos", {"x", "y"}, 2);
  std::vector<data::Dataset> sets = data::load_listing_at_sizes(data::list_images(dir / "photos"), {}, {8, 12, 16});
  std::filesystem::create_directories(dir / "out");
  sets[2].labelled = false;  // write_pack refuses it: the third member fails after two were written
  test::expect_error_containing([&] { data::write_pack_set(dir / "out/p.kpacks", {8, 12, 16}, sets, "crop"); },
                                {"has no labels"});
  CHECK(files_in(dir / "out").empty());
  // The sets must hold the same images at every size before anything is written.
  sets[2] = data::subset(sets[2], {0, 1});
  test::expect_error_containing([&] { data::write_pack_set(dir / "out/p.kpacks", {8, 12, 16}, sets, "crop"); },
                                {"p.kpacks", "16 px holds other images"});
  test::expect_error_containing([&] { data::write_pack_set(dir / "out/p.kpack", {8, 12, 16}, sets, "crop"); },
                                {"p.kpack", "must end in .kpacks"});
  CHECK(files_in(dir / "out").empty());
  // A rename that fails (the 12 px member's name is taken by a folder): no index, no
  // temporary; the 8 px member renamed before it stays, a pack on its own.
  sets = data::load_listing_at_sizes(data::list_images(dir / "photos"), {}, {8, 12, 16});
  test::write_text(dir / "out/p.12.kpack/in_the_way", "x");
  test::expect_error_containing([&] { data::write_pack_set(dir / "out/p.kpacks", {8, 12, 16}, sets, "crop"); },
                                {"p.kpacks", "cannot rename", "p.12.kpack", "no index was written"});
  CHECK(files_in(dir / "out") == std::vector<std::string>{"p.8.kpack"});
}
