#include "data/image_io.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>

#include "engine/core/check.h"
#include "engine/core/checked_math.h"

namespace kiln::data {

Fit parse_fit(const std::string& name) {
  if (name == "crop") return Fit::crop;
  if (name == "pad") return Fit::pad;
  KILN_FAIL("unknown fit '", name, "': use crop (centre region) or pad (letterbox)");
}

const char* fit_name(Fit fit) { return fit == Fit::crop ? "crop" : "pad"; }

namespace {

// Debian's stb_image (v2.27) trusts a JPEG's DHT segment: sixteen code counts whose
// sum may exceed the 256 entries of its Huffman tables, and it then writes past
// them (found by tests/fuzz/fuzz_image.cpp; stb 2.28 added the check). Until the
// system copy has it, kiln walks the JPEG's marker segments and refuses such a table
// before stb reads the file. Segments are [FF marker][2-byte big-endian length];
// after SOS comes entropy-coded data, where FF is followed by 00 (a stuffed byte) or
// a restart marker D0-D7, so the next real marker is the first FF followed by
// anything else. Where stb reads a segment by its contents rather than its declared
// length (DQT and DHT tables are read until the length is used up, and a table that
// overruns it is read whole), this walk does the same, so both stay in step (the
// fuzzer found the desynchronised case: a 16-bit DQT table in a 67-byte segment).
// The DHT segment whose FF C4 marker is at `at`, read as stb reads it: tables until
// the declared length is used up, even when the last one runs past the segment (or
// the file, where stb reads zeros). Returns where stb's reading ends.
// Which Huffman tables (DC/AC x id 0-3) the file has defined so far, and whether its
// frame is progressive (SOF2).
struct JpegTables {
  bool defined[2][4] = {};
  bool progressive = false;
};

size_t check_dht_segment(const uint8_t* bytes, size_t size, size_t at, const std::string& name, JpegTables& tables) {
  const size_t length = at + 3 < size ? (static_cast<size_t>(bytes[at + 2]) << 8 | bytes[at + 3]) : 0;
  size_t table = at + 4;
  while (table < at + 2 + length) {  // [class|id][16 counts][symbols]
    size_t codes = 0;
    for (size_t i = 1; i <= 16; ++i) codes += table + i < size ? bytes[table + i] : 0;
    KILN_CHECK(codes <= 256, "cannot decode image '", name, "': corrupt JPEG: the Huffman table at byte ", table,
               " (DHT segment at byte ", at, ") defines ", codes, " codes, at most 256 exist");
    const int table_class = table < size ? bytes[table] >> 4 : 0, id = table < size ? bytes[table] & 15 : 0;
    if (table_class <= 1 && id <= 3) tables.defined[table_class][id] = true;
    table += 17 + codes;
  }
  return std::max(table, at + 2 + length);
}

// A scan (SOS at `at`) may only use Huffman tables defined before it: stb 2.27 does
// not check, and decodes with its never-initialised table memory (the fuzzer found it
// as a read at index -23: tests/fuzz/corpus/image/regression_scan_uses_undefined_table.jpg).
// DC tables serve baseline scans and progressive DC scans (Ss = 0), AC tables baseline
// scans and progressive AC scans (Ss > 0), as in stb.
void check_sos_tables(const uint8_t* bytes, size_t size, size_t at, const std::string& name,
                      const JpegTables& tables) {
  if (at + 4 >= size) return;
  const size_t components = bytes[at + 4];
  const size_t spectral_start_at = at + 5 + 2 * components;
  if (spectral_start_at >= size) return;  // truncated: stb reports it
  const int spectral_start = bytes[spectral_start_at];
  for (size_t c = 0; c < components; ++c) {
    const int selectors = bytes[at + 6 + 2 * c], dc = selectors >> 4, ac = selectors & 15;
    const bool uses_dc = !tables.progressive || spectral_start == 0, uses_ac = !tables.progressive || spectral_start > 0;
    KILN_CHECK((!uses_dc || (dc <= 3 && tables.defined[0][dc])) && (!uses_ac || (ac <= 3 && tables.defined[1][ac])),
               "cannot decode image '", name, "': corrupt JPEG: the scan at byte ", at, " uses Huffman table ",
               uses_dc && !(dc <= 3 && tables.defined[0][dc]) ? "DC " + std::to_string(dc) : "AC " + std::to_string(ac),
               ", which no DHT segment before it defines");
  }
}

void check_jpeg_huffman_tables(const uint8_t* bytes, size_t size, const std::string& name) {
  JpegTables tables;
  // SOI is FF D8, where stb (as the JPEG standard allows) skips any number of FF
  // fill bytes before the D8: FF FF D8 is a JPEG to stb, so it is one here too.
  size_t at = 0;
  if (size < 2 || bytes[0] != 0xFF) return;  // not a JPEG
  while (at < size && bytes[at] == 0xFF) ++at;
  if (at >= size || bytes[at] != 0xD8) return;  // not a JPEG
  ++at;
  // Up to the first scan: the segments one by one, as stb walks them.
  while (at + 4 <= size) {
    if (bytes[at] != 0xFF) {  // stb skips bytes between segments looking for the next marker; so does this
      ++at;
      continue;
    }
    const uint8_t marker = bytes[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD9) return;  // end of image
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += 2;
      continue;
    }
    const size_t length = static_cast<size_t>(bytes[at + 2]) << 8 | bytes[at + 3];
    if (length < 2) return;  // stb refuses it
    if (marker == 0xDA) break;  // the first scan: see below
    if (marker == 0xC2) tables.progressive = true;
    if (marker == 0xDB) {  // DQT: tables of [precision|id][64 values of 1 or 2 bytes]
      size_t table = at + 4;
      for (int64_t left = static_cast<int64_t>(length) - 2; left > 0 && table < size;) {
        const int precision = bytes[table] >> 4;
        if (precision > 1) return;  // stb refuses it
        const int64_t table_bytes = 1 + 64 * (precision + 1);
        table += static_cast<size_t>(table_bytes);
        left -= table_bytes;
      }
      at = table;
      continue;
    }
    at = marker == 0xC4 ? check_dht_segment(bytes, size, at, name, tables) : at + 2 + length;
  }
  // From the first scan on, stb's position depends on how much entropy-coded data its
  // decoder consumes (fill bytes, restart markers, scans that end early), which no walk
  // can mirror. Valid entropy-coded data never holds FF C4 (an FF there is followed by
  // 00, FF or a restart marker), so every FF C4 from here on is checked as a DHT
  // segment, and every FF DA as a scan: no valid file is refused, and no table stb
  // could read escapes.
  for (; at + 1 < size; ++at) {
    if (bytes[at] != 0xFF) continue;
    if (bytes[at + 1] == 0xC4) check_dht_segment(bytes, size, at, name, tables);
    if (bytes[at + 1] == 0xDA) check_sos_tables(bytes, size, at, name, tables);
  }
}

// stb_image allocates a PNG chunk's declared length before it reads the chunk: a
// 185-byte file whose IDAT says 1.8 GB made it allocate 1.8 GB (found by
// tests/fuzz/fuzz_image.cpp; regression_png_idat_claims_1_8_gb.png). The whole file is
// in memory here, so a chunk longer than what follows it is refused first. Chunks are
// [4-byte big-endian length][4-byte type][data][4-byte CRC] after the 8-byte signature.
void check_png_chunks(const uint8_t* bytes, size_t size, const std::string& name) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size < 8 || std::memcmp(bytes, kSignature, 8) != 0) return;  // not a PNG
  for (size_t at = 8; at + 8 <= size;) {
    const uint64_t length = static_cast<uint64_t>(bytes[at]) << 24 | static_cast<uint64_t>(bytes[at + 1]) << 16 |
                            static_cast<uint64_t>(bytes[at + 2]) << 8 | bytes[at + 3];
    std::string type(reinterpret_cast<const char*>(bytes + at + 4), 4);
    for (char& c : type) c = std::isalpha(static_cast<unsigned char>(c)) ? c : '?';
    KILN_CHECK(length <= size - at - 8, "cannot decode image '", name, "': corrupt PNG: chunk ", type, " at byte ", at,
               " declares ", length, " bytes, but only ", size - at - 8, " follow (truncated or corrupt)");
    if (type == "IEND") return;
    at += 12 + length;
  }
}

}  // namespace

DecodedImage decode_image_bytes(const uint8_t* bytes, size_t size, const std::string& name, int64_t channels) {
  KILN_CHECK(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got ", channels);
  KILN_CHECK(size <= static_cast<size_t>(INT32_MAX), "cannot decode image '", name, "': ", size,
             " bytes is more than stb_image reads (2 GB)");
  int width = 0, height = 0, channels_in_file = 0;
  const int length = static_cast<int>(size);
  check_jpeg_huffman_tables(bytes, size, name);
  check_png_chunks(bytes, size, name);
  // The header first: a 100-byte PNG may claim 65535 x 65535 pixels (a decompression
  // bomb, 12 GB once decoded). stbi_info reads only the header, so the size is refused
  // before a pixel is allocated.
  KILN_CHECK(stbi_info_from_memory(bytes, length, &width, &height, &channels_in_file), "cannot decode image '", name,
             "': ", stbi_failure_reason(), " (kiln reads JPEG, PNG and BMP)");
  KILN_CHECK(width > 0 && height > 0 && width <= kMaxImageSide && height <= kMaxImageSide &&
                 static_cast<int64_t>(width) * height <= kMaxImagePixels,
             "image '", name, "' header says ", width, "x", height, " pixels: more than kiln decodes (sides up to ",
             kMaxImageSide, ", at most ", kMaxImagePixels, " pixels, Pillow's decompression-bomb limit)");
  // A file can only hold so many pixels: deflate compresses at most 1032:1 and a 1-bit
  // PNG packs 8 pixels a byte (8256 pixels a byte), a JPEG spends at least one bit per
  // 8 x 8 block (512). stb decodes a truncated file as if the rest were there, so a
  // 377-byte JPEG claiming 23561 x 1804 pixels cost a minute (fuzzer timeout); it is
  // refused as the truncated file it is.
  KILN_CHECK(static_cast<int64_t>(width) * height <= kMaxPixelsPerFileByte * static_cast<int64_t>(size) + 65536,
             "image '", name, "' header says ", width, "x", height, " pixels, more than its ", size,
             " bytes can hold at the best compression PNG or JPEG allow: the file is truncated or corrupt");
  // stb_image_resize's downsampling costs (input width x output width): a 64267 x 9
  // BMP (tests/fuzz/corpus/image/regression_aspect_64267x9.bmp, found as a fuzzer
  // timeout) took minutes to fit to a square. No photo is 100 times wider than high.
  KILN_CHECK(std::max(width, height) <= kMaxImageAspect * std::min(width, height), "image '", name,
             "' header says ", width, "x", height, " pixels: an aspect ratio beyond ", kMaxImageAspect,
             ":1, which kiln refuses (it fits images to a square)");
  // stbi_load keeps its reason in a (thread-local when threaded) global; read it at once.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes, length, &width, &height, &channels_in_file, static_cast<int>(channels)),
      stbi_image_free);
  KILN_CHECK(pixels != nullptr, "cannot decode image '", name, "': ", stbi_failure_reason());
  DecodedImage image;
  image.height = height;
  image.width = width;
  image.channels = channels;
  image.pixels.assign(pixels.get(), pixels.get() + static_cast<size_t>(height) * width * channels);
  return image;
}

DecodedImage decode_image(const std::string& path, int64_t channels) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  KILN_CHECK(in.good(), "cannot decode image '", path, "': can't open: ", std::strerror(errno));
  const std::streamoff size = in.tellg();
  KILN_CHECK(size >= 0, "cannot decode image '", path, "': not a regular file");
  KILN_CHECK(size <= INT32_MAX, "cannot decode image '", path, "': ", size, " bytes is more than stb_image reads (2 GB)");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  KILN_CHECK(in.gcount() == size, "cannot decode image '", path, "': could read only ", in.gcount(), " of ", size,
             " bytes");
  return decode_image_bytes(bytes.data(), bytes.size(), path, channels);
}

namespace {

// (H, W, C) interleaved -> resized (h, w, C) interleaved; a plain copy when the size
// already matches, so an image that is already size x size stays bit-exact.
std::vector<uint8_t> resize(const DecodedImage& image, int64_t height, int64_t width) {
  if (height == image.height && width == image.width) return image.pixels;
  std::vector<uint8_t> out(static_cast<size_t>(height * width * image.channels));
  const int ok = stbir_resize_uint8_generic(
      image.pixels.data(), static_cast<int>(image.width), static_cast<int>(image.height), 0, out.data(),
      static_cast<int>(width), static_cast<int>(height), 0, static_cast<int>(image.channels), STBIR_ALPHA_CHANNEL_NONE,
      0, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
  KILN_CHECK(ok, "stb_image_resize failed for ", image.width, "x", image.height, " -> ", width, "x", height);
  return out;
}

int64_t scaled(int64_t length, double scale) { return std::max<int64_t>(1, std::llround(length * scale)); }

}  // namespace

void fit_image(const DecodedImage& image, int64_t size, Fit fit, uint8_t* out) {
  const int64_t channels = image.channels;
  const int64_t shorter = std::min(image.height, image.width), longer = std::max(image.height, image.width);
  // crop scales the shorter side to size (then one side is exactly size and the other
  // at least size); pad scales the longer side to size (then nothing exceeds size).
  const double scale = static_cast<double>(size) / static_cast<double>(fit == Fit::crop ? shorter : longer);
  int64_t height = scaled(image.height, scale), width = scaled(image.width, scale);
  if (fit == Fit::crop) {
    height = std::max(height, size);
    width = std::max(width, size);
  } else {
    height = std::min(height, size);
    width = std::min(width, size);
  }
  const std::vector<uint8_t> resized = resize(image, height, width);

  // Where resized pixel (y, x) lands in the output: crop starts inside the image,
  // pad starts inside the canvas. Integer halving puts an odd leftover at the far side.
  const int64_t src_y = fit == Fit::crop ? (height - size) / 2 : 0, src_x = fit == Fit::crop ? (width - size) / 2 : 0;
  const int64_t dst_y = fit == Fit::pad ? (size - height) / 2 : 0, dst_x = fit == Fit::pad ? (size - width) / 2 : 0;
  const int64_t rows = std::min(height, size), cols = std::min(width, size);
  if (fit == Fit::pad) std::memset(out, 0, static_cast<size_t>(channels * size * size));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < rows; ++y) {
      const uint8_t* src = resized.data() + ((src_y + y) * width + src_x) * channels + c;
      uint8_t* dst = out + (c * size + dst_y + y) * size + dst_x;
      for (int64_t x = 0; x < cols; ++x) dst[x] = src[x * channels];  // interleaved -> planar
    }
}

bool has_image_extension(const std::string& file_name) {
  const size_t dot = file_name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string extension = file_name.substr(dot + 1);
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return extension == "jpg" || extension == "jpeg" || extension == "png" || extension == "bmp";
}

std::vector<std::string> list_image_files(const std::vector<std::string>& inputs, const std::string& command) {
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    KILN_CHECK(std::filesystem::exists(input), command, ": '", input, "' does not exist");
    if (!std::filesystem::is_directory(input)) {
      files.push_back(input);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(input))
      if (entry.is_regular_file() && has_image_extension(entry.path().string())) found.push_back(entry.path().string());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  KILN_CHECK(!files.empty(), command, ": no images (jpg, png, bmp) found in the given paths");
  return files;
}

}  // namespace kiln::data
