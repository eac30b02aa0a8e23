// CSV listings (single- and multi-label): list_csv on arbitrary text next to two
// real image files (a.png, b.bmp), then load_listing decodes what it lists (data/image_folder.cpp).
#include <stb/stb_image_write.h>

#include <cstring>

#include "data/image_folder.h"
#include "engine/core/error.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool images = [] {
    const uint8_t grey[4] = {0, 80, 160, 240};  // 2x2, so that listed rows can point at real files
    stbi_write_png((kiln::fuzz::scratch_dir() / "a.png").c_str(), 2, 2, 1, grey, 2);
    stbi_write_bmp((kiln::fuzz::scratch_dir() / "b.bmp").c_str(), 2, 2, 1, grey);
    return true;
  }();
  (void)images;
  const std::string path = kiln::fuzz::write_input("labels.csv", data, size);
  try {
    const kiln::data::FileListing listing = kiln::data::list_csv(path, size % 2 == 0);
    kiln::data::LoadConfig config;
    config.size = 4;
    config.skip_bad = true;
    const kiln::data::Dataset d = kiln::data::load_listing(listing, config);
    if (d.size() > 1 << 20) return 1;
  } catch (const kiln::Error&) {
  }
  return 0;
}
