// Decoding one image file and bringing it to a fixed square size.
//
// Files are decoded by stb_image (JPEG, PNG and BMP: stb_image_impl.cpp compiles only
// those decoders, the formats kiln lists, so less-tested ones are no attack surface) into
// interleaved (H, W, C) uint8, with C forced to 3 (grey files are repeated into R, G
// and B) or 1 (colour files are turned into luma by stb). fit_image then resizes with
// stb_image_resize with its triangle (tent) filter and writes planar (C, size, size)
// uint8, the layout of one row of a Dataset. The triangle filter is bilinear
// interpolation when enlarging and, widened by the scale factor, an antialiased
// bilinear when shrinking: the same as PIL's BILINEAR, which torchvision's Resize
// uses, so a pretrained model sees the pixels it saw in PyTorch (on the shared
// photos the ImageNet MobileNetV2's probabilities then match PyTorch's to 0.005;
// with Catmull-Rom, an enlarged photo moved by 0.11).
//
//   Fit::crop  shorter side -> size, aspect kept, then the centre size x size region
//              (torchvision's Resize(size) + CenterCrop(size)).
//   Fit::pad   longer side -> size, aspect kept, then centred on a black size x size
//              canvas (letterboxing: nothing is cut off).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::data {

enum class Fit { crop, pad };
// Names the resampling filter; part of the on-the-fly pack cache key, so that packs
// made with another filter are not reused.
inline constexpr const char* kResizeFilter = "stbir-triangle";
Fit parse_fit(const std::string& name);  // "crop" or "pad"; throws listing both
const char* fit_name(Fit fit);

struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (H, W, C) interleaved, as image files store them
};

// Throws kiln::Error naming the file and stb's reason ("corrupt JPEG", "can't open").
// The header is read first and images larger than kMaxImagePixels or kMaxImageSide
// (engine/core/checked_math.h) are refused before decoding (decompression bombs).
DecodedImage decode_image(const std::string& path, int64_t channels);
// The same on bytes in memory; `name` names them in errors.
DecodedImage decode_image_bytes(const uint8_t* bytes, size_t size, const std::string& name, int64_t channels);

// Writes image into out: (C, size, size) planar uint8.
void fit_image(const DecodedImage& image, int64_t size, Fit fit, uint8_t* out);

// True for the extensions an image folder is searched for: .jpg .jpeg .png .bmp (any case).
bool has_image_extension(const std::string& file_name);

// The image files named by `inputs`: files as given, folders searched recursively
// (sorted). `command` names the caller in errors: a missing path, or no image at all.
std::vector<std::string> list_image_files(const std::vector<std::string>& inputs, const std::string& command);

}  // namespace kiln::data
