#include "report/image.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "engine/core/check.h"
#include "weights/atomic_file.h"

namespace kiln::report {

RgbImage::RgbImage(int w, int h, Rgb fill) : width(w), height(h) {
  KILN_CHECK(w >= 0 && h >= 0, "RgbImage: negative size ", w, "x", h);
  rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = fill.r;
    rgb[i + 1] = fill.g;
    rgb[i + 2] = fill.b;
  }
}

Rgb RgbImage::at(int x, int y) const {
  KILN_CHECK(x >= 0 && y >= 0 && x < width && y < height, "RgbImage::at: (", x, ", ", y, ") outside ", width, "x",
             height);
  const size_t i = (static_cast<size_t>(y) * width + x) * 3;
  return {rgb[i], rgb[i + 1], rgb[i + 2]};
}

void RgbImage::set(int x, int y, Rgb color) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const size_t i = (static_cast<size_t>(y) * width + x) * 3;
  rgb[i] = color.r;
  rgb[i + 1] = color.g;
  rgb[i + 2] = color.b;
}

void RgbImage::paste(const RgbImage& source, int x0, int y0) {
  for (int y = 0; y < source.height; ++y)
    for (int x = 0; x < source.width; ++x) set(x0 + x, y0 + y, source.at(x, y));
}

std::string encode_png(const RgbImage& image) {
  KILN_CHECK(image.width > 0 && image.height > 0, "encode_png: empty image ", image.width, "x", image.height);
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  KILN_CHECK(stbi_write_png_to_func(append, &bytes, image.width, image.height, 3, image.rgb.data(),
                                    image.width * 3) != 0,
             "encode_png: stb_image_write failed for a ", image.width, "x", image.height, " image");
  return bytes;
}

std::string base64(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                       uint32_t(uint8_t(bytes[i + 2]));
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i < bytes.size()) {  // one or two bytes left: pad with '='
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png_data_uri(const RgbImage& image) { return "data:image/png;base64," + base64(encode_png(image)); }

void write_png(const std::string& path, const RgbImage& image) {
  const std::string bytes = encode_png(image);
  write_file_atomically(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

RgbImage resize_nearest(const RgbImage& image, int width, int height) {
  KILN_CHECK(image.width > 0 && image.height > 0, "resize_nearest: empty source image");
  RgbImage out(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      out.set(x, y, image.at(static_cast<int>(static_cast<int64_t>(x) * image.width / width),
                             static_cast<int>(static_cast<int64_t>(y) * image.height / height)));
  return out;
}

namespace {
struct Tap {
  int index;  // source pixel along the axis
  double weight;
};
// For each of `out` pixels along an axis of `in` source pixels: which source pixels it
// reads and with what weights (summing to 1). Shrinking: the source interval
// [o * in / out, (o + 1) * in / out) averaged by overlap. Enlarging: linear
// interpolation between the pixel centres around (o + 0.5) * in / out - 0.5.
std::vector<std::vector<Tap>> resample_taps(int in, int out) {
  std::vector<std::vector<Tap>> taps(out);
  const double scale = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    if (scale >= 1) {
      const double a = o * scale, b = (o + 1) * scale;
      for (int i = static_cast<int>(a); i < in && i < b; ++i) {
        const double overlap = std::min<double>(i + 1, b) - std::max<double>(i, a);
        if (overlap > 0) taps[o].push_back({i, overlap / scale});
      }
    } else {
      const double centre = (o + 0.5) * scale - 0.5;
      const int i0 = static_cast<int>(std::floor(centre));
      const double f = centre - i0;
      taps[o].push_back({std::clamp(i0, 0, in - 1), 1 - f});
      taps[o].push_back({std::clamp(i0 + 1, 0, in - 1), f});
    }
  }
  return taps;
}
}  // namespace

RgbImage resize_smooth(const RgbImage& image, int width, int height) {
  KILN_CHECK(image.width > 0 && image.height > 0, "resize_smooth: empty source image");
  KILN_CHECK(width > 0 && height > 0, "resize_smooth: target size must be positive, got ", width, "x", height);
  const auto x_taps = resample_taps(image.width, width), y_taps = resample_taps(image.height, height);
  std::vector<double> rows(static_cast<size_t>(image.height) * width * 3, 0.0);  // resized along x
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < width; ++x)
      for (const Tap& t : x_taps[x])
        for (int c = 0; c < 3; ++c)
          rows[(static_cast<size_t>(y) * width + x) * 3 + c] +=
              t.weight * image.rgb[(static_cast<size_t>(y) * image.width + t.index) * 3 + c];
  RgbImage out(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) {
        double v = 0;
        for (const Tap& t : y_taps[y]) v += t.weight * rows[(static_cast<size_t>(t.index) * width + x) * 3 + c];
        out.rgb[(static_cast<size_t>(y) * width + x) * 3 + c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
  return out;
}

RgbImage tile_grid(const std::vector<RgbImage>& tiles, int columns, int gap, Rgb background) {
  KILN_CHECK(!tiles.empty(), "tile_grid: no tiles");
  KILN_CHECK(columns > 0, "tile_grid: columns must be positive, got ", columns);
  const int w = tiles[0].width, h = tiles[0].height;
  for (const RgbImage& t : tiles)
    KILN_CHECK(t.width == w && t.height == h, "tile_grid: tiles must share one size: ", w, "x", h, " vs ", t.width,
               "x", t.height);
  const int count = static_cast<int>(tiles.size());
  const int cols = std::min(columns, count), rows = (count + cols - 1) / cols;
  RgbImage grid(cols * w + (cols + 1) * gap, rows * h + (rows + 1) * gap, background);
  for (int i = 0; i < count; ++i) grid.paste(tiles[i], gap + (i % cols) * (w + gap), gap + (i / cols) * (h + gap));
  return grid;
}

namespace {
// Piecewise-linear colour map through evenly spaced stops.
template <size_t N>
Rgb interpolate(const std::array<std::array<double, 3>, N>& stops, double t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * (N - 1);
  const size_t i = std::min(static_cast<size_t>(t), N - 2);
  const double f = t - static_cast<double>(i);
  auto channel = [&](int c) {
    return static_cast<uint8_t>(std::lround(255.0 * (stops[i][c] * (1 - f) + stops[i + 1][c] * f)));
  };
  return {channel(0), channel(1), channel(2)};
}
}  // namespace

Rgb viridis(double t) {
  // matplotlib's viridis sampled at 9 points
  static const std::array<std::array<double, 3>, 9> stops{{{0.267, 0.005, 0.329},
                                                           {0.279, 0.175, 0.483},
                                                           {0.230, 0.322, 0.546},
                                                           {0.173, 0.449, 0.558},
                                                           {0.128, 0.567, 0.551},
                                                           {0.154, 0.680, 0.504},
                                                           {0.369, 0.789, 0.383},
                                                           {0.678, 0.864, 0.190},
                                                           {0.993, 0.906, 0.144}}};
  return interpolate(stops, t);
}

Rgb blues(double t) {
  // ColorBrewer's 9-class Blues, the stops of matplotlib's "Blues"
  static const std::array<std::array<double, 3>, 9> stops{{{0.969, 0.984, 1.000},
                                                           {0.871, 0.922, 0.969},
                                                           {0.776, 0.859, 0.937},
                                                           {0.620, 0.792, 0.882},
                                                           {0.420, 0.682, 0.839},
                                                           {0.259, 0.573, 0.776},
                                                           {0.129, 0.443, 0.710},
                                                           {0.031, 0.318, 0.612},
                                                           {0.031, 0.188, 0.420}}};
  return interpolate(stops, t);
}

Rgb jet(double t) {
  static const std::array<std::array<double, 3>, 5> stops{
      {{0.0, 0.0, 0.5}, {0.0, 0.5, 1.0}, {0.5, 1.0, 0.5}, {1.0, 0.5, 0.0}, {0.5, 0.0, 0.0}}};
  return interpolate(stops, t);
}

RgbImage scalar_map_to_image(const std::vector<double>& values, int width, int height, Rgb (*colormap)(double)) {
  KILN_CHECK(values.size() == static_cast<size_t>(width) * height, "scalar_map_to_image: ", values.size(),
             " values for a ", width, "x", height, " map");
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  RgbImage out(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double v = values[static_cast<size_t>(y) * width + x];
      out.set(x, y, colormap(hi > lo ? (v - lo) / (hi - lo) : 0.5));
    }
  return out;
}

RgbImage blend(const RgbImage& base, const RgbImage& overlay, double alpha) {
  KILN_CHECK(base.width == overlay.width && base.height == overlay.height, "blend: sizes differ: ", base.width, "x",
             base.height, " vs ", overlay.width, "x", overlay.height);
  RgbImage out = base;
  for (size_t i = 0; i < out.rgb.size(); ++i)
    out.rgb[i] = static_cast<uint8_t>(std::lround((1 - alpha) * base.rgb[i] + alpha * overlay.rgb[i]));
  return out;
}

}  // namespace kiln::report
