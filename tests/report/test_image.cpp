// report/image: PNG round trip through stb_image, base64 against known vectors,
// grid tiling and the colour maps' end points.
#include <doctest/doctest.h>
#include <stb/stb_image.h>

#include <filesystem>

#include "report/image.h"

using namespace kiln::report;

TEST_CASE("report image: base64 of RFC 4648's test vectors") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foob") == "Zm9vYg==");
  CHECK(base64("fooba") == "Zm9vYmE=");
  CHECK(base64("foobar") == "Zm9vYmFy");
}

TEST_CASE("report image: a PNG decodes back to the same pixels") {
  RgbImage image(5, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x) image.set(x, y, {uint8_t(x * 50), uint8_t(y * 100), uint8_t(x + y)});
  const std::string png = encode_png(image);
  int w = 0, h = 0, c = 0;
  unsigned char* decoded = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                                 static_cast<int>(png.size()), &w, &h, &c, 3);
  REQUIRE(decoded != nullptr);
  CHECK(w == 5);
  CHECK(h == 3);
  CHECK(std::vector<uint8_t>(decoded, decoded + 45) == image.rgb);
  stbi_image_free(decoded);
  CHECK(png_data_uri(image).rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);  // the PNG signature

  const auto path = std::filesystem::temp_directory_path() / "kiln_test_image.png";
  write_png(path.string(), image);
  CHECK(std::filesystem::file_size(path) == png.size());
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(write_png("/nonexistent-dir/x.png", image), doctest::Contains("/nonexistent-dir/x.png"));
}

TEST_CASE("report image: tile_grid places tiles row by row with gaps") {
  std::vector<RgbImage> tiles;
  for (int i = 0; i < 5; ++i) tiles.emplace_back(2, 2, Rgb{uint8_t(i * 10), 0, 0});
  const RgbImage grid = tile_grid(tiles, 3, 1, {255, 255, 255});
  CHECK(grid.width == 3 * 2 + 4);
  CHECK(grid.height == 2 * 2 + 3);
  CHECK(grid.at(0, 0).r == 255);  // the border gap
  CHECK(grid.at(1, 1).r == 0);    // tile 0
  CHECK(grid.at(4, 1).r == 10);   // tile 1
  CHECK(grid.at(4, 4).r == 40);   // tile 4, second row
  CHECK(grid.at(7, 4).r == 255);  // no tile 5: background
  CHECK_THROWS_WITH(tile_grid({RgbImage(2, 2), RgbImage(3, 2)}, 2), doctest::Contains("one size"));
}

TEST_CASE("report image: colour maps, scalar maps, nearest resize and blend") {
  CHECK(viridis(0).r == 68);   // 0.267 * 255
  CHECK(viridis(1).g == 231);  // 0.906 * 255
  CHECK(jet(0).b == 128);
  CHECK(jet(1).r == 128);
  const RgbImage map = scalar_map_to_image({0, 1, 2, 3}, 2, 2, viridis);
  CHECK(map.at(0, 0).r == viridis(0).r);
  CHECK(map.at(1, 1).g == viridis(1).g);
  const RgbImage constant = scalar_map_to_image({7, 7}, 2, 1, viridis);
  CHECK(constant.at(0, 0).g == viridis(0.5).g);
  const RgbImage big = resize_nearest(map, 4, 4);
  CHECK(big.at(3, 3).g == map.at(1, 1).g);
  CHECK(big.at(1, 0).r == map.at(0, 0).r);
  const RgbImage half = blend(RgbImage(1, 1, {0, 0, 0}), RgbImage(1, 1, {200, 100, 0}), 0.5);
  CHECK(half.at(0, 0).r == 100);
  CHECK(half.at(0, 0).g == 50);
}
