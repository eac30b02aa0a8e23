#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/cache.h"
#include "data/image_folder.h"
#include "data/pack.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

TEST_CASE("data pack: round trip is bit-identical to the folder load and views the mapping") {
  test::TempDir dir("pack");
  test::make_image_folder(dir / "photos", {"b", "a"}, 5);
  data::LoadConfig config;
  config.size = 24;
  const data::Dataset folder = data::load_images(dir / "photos", config);
  data::write_pack(dir / "photos.kpack", folder);
  CHECK_FALSE(std::filesystem::exists(dir / "photos.kpack.tmp." + std::to_string(::getpid())));

  const data::Dataset pack = data::open_pack(dir / "photos.kpack");
  REQUIRE(pack.images.shape() == folder.images.shape());
  CHECK(std::memcmp(pack.images.raw_data(), folder.images.raw_data(), folder.images.nbytes()) == 0);
  CHECK(pack.labels.to_vector() == folder.labels.to_vector());
  CHECK(pack.class_names == folder.class_names);
  CHECK(pack.file_names == folder.file_names);
  CHECK(reinterpret_cast<uintptr_t>(pack.images.raw_data()) % 64 == 0);
  // The storage is the mapping, not a copy: its size is the whole file.
  CHECK(pack.images.storage()->nbytes() == std::filesystem::file_size(dir / "photos.kpack"));
}

TEST_CASE("data pack: multi-label targets survive, bad files are named") {
  test::TempDir dir("pack_multi");
  test::make_image_folder(dir / "img", {"p"}, 2);
  test::write_text(dir / "m.csv", "img/p/0.png,\"x y\"\nimg/p/1.jpg,y\n");
  data::LoadConfig config;
  config.size = 8;
  data::write_pack(dir / "m.kpack", data::load_images(dir / "m.csv", config));
  const data::Dataset pack = data::open_pack(dir / "m.kpack");
  REQUIRE(pack.targets.defined());
  CHECK(pack.targets.to_vector() == std::vector<double>{1, 1, 0, 1});

  test::write_text(dir / "not.kpack", "hello, this is not a pack at all; it is long enough for a header........"
                                      "........................................................................");
  test::expect_error_containing([&] { data::open_pack(dir / "not.kpack"); }, {"not.kpack", "KPACK"});
  // Truncate a real pack: the header promises more bytes than the file has.
  std::filesystem::resize_file(dir / "m.kpack", 200);
  test::expect_error_containing([&] { data::open_pack(dir / "m.kpack"); }, {"m.kpack", "truncated"});
  test::expect_error_containing([&] { data::open_pack(dir / "none.kpack"); }, {"none.kpack"});
}

TEST_CASE("data pack: the cache packs a folder once and re-packs when a file changes") {
  test::TempDir dir("pack_cache");
  test::make_image_folder(dir / "photos", {"a", "b"}, 2);
  data::LoadConfig config;
  config.size = 8;
  const std::string first = data::cache_path_for(dir / "photos", config, dir / "cache");
  const data::Dataset loaded = data::load_dataset(dir / "photos", config, dir / "cache");
  CHECK(std::filesystem::exists(first));
  CHECK(loaded.size() == 4);
  CHECK(data::load_dataset(dir / "photos", config, dir / "cache").file_names == loaded.file_names);
  config.size = 9;
  CHECK(data::cache_path_for(dir / "photos", config, dir / "cache") != first);
  config.size = 8;
  test::write_image(dir / "photos/a/new.png", 5, 5, test::solid_image(5, 5, {1, 2, 3}));
  CHECK(data::cache_path_for(dir / "photos", config, dir / "cache") != first);
  CHECK(data::load_dataset(first, config).size() == 4);  // a .kpack path is opened directly
}
