// Image decoding through kiln's loader: decode_image_bytes (stb_image's JPEG, PNG
// and BMP decoders behind kiln's header limits) and fit_image to a square, in both
// channel counts and both fits (data/image_io.cpp).
#include <vector>

#include "data/image_io.h"
#include "engine/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int64_t channels : {3, 1}) {
    try {
      const kiln::data::DecodedImage image = kiln::data::decode_image_bytes(data, size, "fuzz.img", channels);
      std::vector<uint8_t> out(static_cast<size_t>(channels * 7 * 7));
      kiln::data::fit_image(image, 7, kiln::data::Fit::crop, out.data());
      kiln::data::fit_image(image, 7, kiln::data::Fit::pad, out.data());
    } catch (const kiln::Error&) {
    }
  }
  return 0;
}
