// Small image folders written on the fly with stb_image_write, for the data tests.
#pragma once
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kiln::test {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("kiln_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& child) const { return (path_ / child).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// An (H, W, 3) interleaved image whose every pixel is `rgb`.
inline std::vector<uint8_t> solid_image(int height, int width, std::vector<uint8_t> rgb) {
  std::vector<uint8_t> pixels;
  for (int i = 0; i < height * width; ++i) pixels.insert(pixels.end(), rgb.begin(), rgb.end());
  return pixels;
}

// Writes pixels (H, W, channels) as png, jpg or bmp, chosen by the extension of path.
inline void write_image(const std::string& path, int height, int width, const std::vector<uint8_t>& pixels,
                        int channels = 3) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string extension = std::filesystem::path(path).extension().string();
  int ok = 0;
  if (extension == ".png") ok = stbi_write_png(path.c_str(), width, height, channels, pixels.data(), width * channels);
  if (extension == ".jpg") ok = stbi_write_jpg(path.c_str(), width, height, channels, pixels.data(), 95);
  if (extension == ".bmp") ok = stbi_write_bmp(path.c_str(), width, height, channels, pixels.data());
  REQUIRE_MESSAGE(ok, "could not write test image " << path);
}

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// root/<class>/<i>.{png,jpg,bmp}: `per_class` images per class, sizes varying, each
// image a solid colour that encodes its class in red and its number in green.
inline void make_image_folder(const std::string& root, const std::vector<std::string>& classes, int per_class) {
  const char* extensions[] = {".png", ".jpg", ".bmp"};
  for (size_t k = 0; k < classes.size(); ++k)
    for (int i = 0; i < per_class; ++i) {
      const int height = 20 + 3 * i, width = 30 + 5 * static_cast<int>(k);
      write_image(root + "/" + classes[k] + "/" + std::to_string(i) + extensions[i % 3], height, width,
                  solid_image(height, width, {static_cast<uint8_t>(40 * k), static_cast<uint8_t>(10 * i), 200}));
    }
}

}  // namespace kiln::test
