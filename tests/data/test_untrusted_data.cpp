// Hostile data files: kpack headers whose sizes overflow or whose blocks are
// misaligned, labels outside the classes, metadata of the wrong type, PNG headers
// that claim billions of pixels (decompression bombs), truncated images. Each ends
// in a kiln::Error naming the file and the field or offset.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/image_folder.h"
#include "data/image_io.h"
#include "data/pack.h"
#include "engine/core/checked_math.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A valid pack of 4 images of 2 classes, as bytes to corrupt.
std::string good_pack(test::TempDir& dir) {
  test::make_image_folder(dir / "photos", {"a", "b"}, 2);
  data::LoadConfig config;
  config.size = 8;
  data::write_pack(dir / "good.kpack", data::load_images(dir / "photos", config));
  return read_all(dir / "good.kpack");
}

template <class T> void poke(std::string& bytes, size_t offset, T value) { std::memcpy(&bytes[offset], &value, sizeof(T)); }
template <class T> T peek(const std::string& bytes, size_t offset) {
  T value;
  std::memcpy(&value, &bytes[offset], sizeof(T));
  return value;
}

// kpack header offsets (data/pack.cpp's PackHeader).
constexpr size_t kCount = 16, kChannels = 24, kHeight = 32, kMetadataBytes = 64, kPixelsBytes = 80, kLabelsOffset = 88;

}  // namespace

TEST_CASE("untrusted kpack: N*C*H*W that wraps around to the pixel block's size is refused") {
  test::TempDir dir("untrusted_pack");
  std::string bytes = good_pack(dir);
  REQUIRE(peek<int64_t>(bytes, kCount) == 4);
  // N = 2^62 + 4 with C*H*W = 64*3 wraps; a negative channel count makes a negative product.
  std::string wrap = bytes;
  poke<int64_t>(wrap, kCount, (int64_t{1} << 62) + 4);
  test::write_text(dir / "wrap.kpack", wrap);
  test::expect_error_containing([&] { data::open_pack(dir / "wrap.kpack"); },
                                {"wrap.kpack", "(N, C, H, W, K)", "overflows"});
  std::string negative = bytes;
  poke<int64_t>(negative, kChannels, -3);
  poke<int64_t>(negative, kHeight, -8);
  test::write_text(dir / "negative.kpack", negative);
  test::expect_error_containing([&] { data::open_pack(dir / "negative.kpack"); }, {"negative.kpack", "negative"});
}

TEST_CASE("untrusted kpack: misaligned blocks, labels outside the classes and bad metadata name the field") {
  test::TempDir dir("untrusted_pack2");
  const std::string bytes = good_pack(dir);
  const auto expect = [&](const std::string& name, const std::string& corrupt, std::vector<std::string> fragments) {
    test::write_text(dir / name, corrupt);
    fragments.insert(fragments.begin(), name);
    test::expect_error_containing([&] { data::open_pack(dir / name); }, fragments);
  };
  std::string misaligned = bytes;
  poke<uint64_t>(misaligned, kLabelsOffset, peek<uint64_t>(bytes, kLabelsOffset) - 3);
  expect("misaligned.kpack", misaligned, {"labels_offset", "not a multiple of 64"});

  std::string label = bytes;
  poke<int64_t>(label, peek<uint64_t>(bytes, kLabelsOffset) + 8, 7);  // image 1 of 2 classes labelled 7
  expect("label.kpack", label, {"label 1", "is 7, outside the 2 classes"});

  std::string metadata = bytes;
  const std::string text = metadata.substr(128, peek<uint64_t>(bytes, kMetadataBytes));
  const size_t at = text.find("\"class_names\"");
  REQUIRE(at != std::string::npos);
  metadata.replace(128 + at, 13, "\"class_namez\"");
  expect("metadata.kpack", metadata, {"metadata (bytes 128-", "missing or has the wrong type"});

  std::string pixels = bytes;
  poke<uint64_t>(pixels, kPixelsBytes, peek<uint64_t>(bytes, kPixelsBytes) + 64);  // still inside the file
  expect("pixels.kpack", pixels, {"block sizes do not match"});
}

TEST_CASE("untrusted images: a PNG header claiming 20000 x 20000 pixels is refused before decoding") {
  test::TempDir dir("untrusted_png");
  // Grey, so that stb's own limit (2^30 bytes decoded) would let 4e8 pixels through.
  test::write_image(dir / "small.png", 4, 5, std::vector<uint8_t>(20, 128), 1);
  std::string png = read_all(dir / "small.png");
  // IHDR: 8-byte signature, 4-byte length, "IHDR", then width and height big-endian.
  REQUIRE(png.substr(12, 4) == "IHDR");
  const auto big_endian = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  png.replace(16, 8, big_endian(20000) + big_endian(20000));  // 4e8 pixels, 1.2 GB decoded as RGB
  test::write_text(dir / "bomb.png", png);
  test::expect_error_containing([&] { data::decode_image(dir / "bomb.png", 3); },
                                {"bomb.png", "20000x20000", "decompression-bomb"});
  // A side beyond the limit alone is refused too, however few pixels in all.
  png.replace(16, 8, big_endian(static_cast<uint32_t>(kMaxImageSide) + 1) + big_endian(1));
  test::write_text(dir / "wide.png", png);
  test::expect_error_containing([&] { data::decode_image(dir / "wide.png", 3); }, {"wide.png", "more than kiln decodes"});
}

TEST_CASE("untrusted images: truncated and foreign files are errors naming the file, in memory and on disk") {
  test::TempDir dir("untrusted_img");
  test::write_image(dir / "ok.jpg", 16, 16, test::solid_image(16, 16, {200, 100, 50}));
  const std::string jpeg = read_all(dir / "ok.jpg");
  const data::DecodedImage ok = data::decode_image_bytes(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(),
                                                         "ok.jpg", 3);
  CHECK(ok.width == 16);
  CHECK(ok.pixels.size() == 16 * 16 * 3);
  test::write_text(dir / "cut.jpg", jpeg.substr(0, 20));
  test::expect_error_containing([&] { data::decode_image(dir / "cut.jpg", 1); }, {"cut.jpg"});
  test::write_text(dir / "empty.png", "");
  test::expect_error_containing([&] { data::decode_image(dir / "empty.png", 3); }, {"empty.png"});
  // GIF is a format stb could read but kiln does not compile in (data/stb_image_impl.cpp).
  test::write_text(dir / "anim.gif", "GIF89a\x01\x00\x01\x00\x00\x00\x00;");
  test::expect_error_containing([&] { data::decode_image(dir / "anim.gif", 3); }, {"anim.gif", "JPEG, PNG and BMP"});
  test::expect_error_containing([&] { data::decode_image(dir / "missing.png", 3); }, {"missing.png", "can't open"});
}

TEST_CASE("untrusted images: a JPEG Huffman table of more than 256 codes is refused before stb writes past it") {
  // Found by tests/fuzz/fuzz_image.cpp in its first seconds: Debian's stb_image 2.27
  // overflows stbi__huffman::size[257] on it (UBSan: index 257 out of bounds).
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/image/regression_dht_over_256_codes.jpg";
  test::expect_error_containing([&] { data::decode_image(path, 3); },
                                {"regression_dht_over_256_codes.jpg", "corrupt JPEG", "Huffman table", "at most 256"});
}

TEST_CASE("untrusted images: fuzzer regressions (garbage between JPEG markers, a 64267 x 9 BMP) are errors naming the file") {
  const std::string corpus = test::fixture_dir() + "/../fuzz/corpus/image/";
  // stb skips bytes between JPEG segments, so the Huffman-table check must too.
  test::expect_error_containing([&] { data::decode_image(corpus + "regression_dht_garbage_between_markers.jpg", 3); },
                                {"regression_dht_garbage_between_markers.jpg", "Huffman table"});
  test::expect_error_containing([&] { data::decode_image(corpus + "regression_aspect_64267x9.bmp", 3); },
                                {"regression_aspect_64267x9.bmp", "64267x9", "aspect ratio beyond 100:1"});
}

TEST_CASE("untrusted images: a JPEG whose SOI has fill bytes and whose DQT overruns its segment still has its Huffman tables checked") {
  // Found by tests/fuzz/fuzz_image.cpp after the first guard: FF FF D8 is a JPEG to stb,
  // and a 16-bit quantisation table read whole past a 67-byte segment moves stb's
  // position; the guard must walk the file as stb does to reach the bad DHT.
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/image/regression_dqt_16bit_overruns_segment.jpg";
  test::expect_error_containing([&] { data::decode_image(path, 3); }, {"Huffman table", "911 codes"});
  // And past the first scan, where stb's position depends on its entropy decoder
  // (here FF FF FF 00 inside the coded data): every FF C4 there is checked.
  const std::string fill = test::fixture_dir() + "/../fuzz/corpus/image/regression_fill_bytes_in_entropy_data.jpg";
  test::expect_error_containing([&] { data::decode_image(fill, 3); }, {"Huffman table", "at most 256"});
}

TEST_CASE("untrusted csv: an image name too long for the file system is a missing file, not an exception") {
  // Found by tests/fuzz/fuzz_csv.cpp: std::filesystem::is_regular_file threw ENAMETOOLONG.
  test::TempDir dir("untrusted_csv");
  test::write_text(dir / "long.csv", "image,label\n" + std::string(5000, 'x') + ".png,a\n");
  test::expect_error_containing([&] { data::list_csv(dir / "long.csv"); }, {"long.csv' row 2", "does not exist"});
}

TEST_CASE("untrusted images: a PNG chunk declaring more bytes than the file holds is refused before stb allocates them") {
  // Found by tests/fuzz/fuzz_image.cpp: 185 bytes whose IDAT chunk declares 1.8 GB.
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/image/regression_png_idat_claims_1_8_gb.png";
  test::expect_error_containing([&] { data::decode_image(path, 3); }, {"corrupt PNG: chunk IDAT at byte 33", "follow"});
}

TEST_CASE("untrusted images: a JPEG scan that uses a Huffman table no DHT has defined is refused") {
  // Found by tests/fuzz/fuzz_image.cpp: stb 2.27 decodes with never-initialised table
  // memory (a read at index -23, only when earlier allocations left the right garbage).
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/image/regression_scan_uses_undefined_table.jpg";
  test::expect_error_containing([&] { data::decode_image(path, 3); },
                                {"the scan at byte 435 uses Huffman table AC 0", "which no DHT segment before it defines"});
}

TEST_CASE("untrusted images: a 377-byte JPEG claiming 23561 x 1804 pixels is refused as truncated") {
  // Found by tests/fuzz/fuzz_image.cpp as a timeout: stb decoded it as if the data were there.
  const std::string path = test::fixture_dir() + "/../fuzz/corpus/image/regression_377_byte_jpeg_claims_42m_pixels.jpg";
  test::expect_error_containing([&] { data::decode_image(path, 3); }, {"more than its 377 bytes can hold", "truncated"});
}
