// RgbImage: the picture type of kiln's reports and visualisations, an 8-bit RGB
// raster in row-major order (pixel (x, y) channel c at rgb[(y * width + x) * 3 + c]).
// Plots are rasterised into one (report/figure.h), model pictures (filters,
// feature maps, Grad-CAM) are built from tensors into one, and both are written as
// PNG through stb_image_write, atomically, or embedded in report.html as data URIs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::report {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (height, width, 3)

  RgbImage() = default;
  RgbImage(int width, int height, Rgb fill = {255, 255, 255});
  Rgb at(int x, int y) const;
  void set(int x, int y, Rgb color);  // ignores pixels outside the image (clipping)
  // Copies `source` with its top-left corner at (x, y), clipped to this image.
  void paste(const RgbImage& source, int x, int y);
};

// The PNG bytes of an image (stb_image_write, zlib-compressed).
std::string encode_png(const RgbImage& image);
// "data:image/png;base64,...", for an <img src> in a self-contained HTML file.
std::string png_data_uri(const RgbImage& image);
std::string base64(const std::string& bytes);
// Writes `path` atomically (temporary file, then rename); throws naming the path.
void write_png(const std::string& path, const RgbImage& image);

// Nearest-neighbour resize (for enlarging small filters and feature maps without blurring them).
RgbImage resize_nearest(const RgbImage& image, int width, int height);
// Smooth resize for photos, separably along x then y: each output pixel averages the
// source pixels its footprint covers (area weights) when shrinking, and
// interpolates linearly between the two nearest source pixels when enlarging.
RgbImage resize_smooth(const RgbImage& image, int width, int height);

// Tiles equally-sized images in a grid of `columns` columns (rows as needed), with
// `gap` pixels of `background` between and around them.
RgbImage tile_grid(const std::vector<RgbImage>& tiles, int columns, int gap = 2, Rgb background = {255, 255, 255});

// Colour maps for scalar pictures: t in [0, 1] (clamped). viridis for feature maps
// and heat maps (perceptually uniform, readable in grey), jet for Grad-CAM overlays
// as in the Grad-CAM paper, blues for counts (zero is white, so empty cells vanish).
Rgb viridis(double t);
Rgb jet(double t);
// matplotlib's "Blues" (ColorBrewer): near-white to dark blue, for confusion matrices.
Rgb blues(double t);

// A scalar map (height, width), row-major, as an image: min-max normalised to [0, 1]
// (a constant map is mid-grey in the colour map) and coloured with `colormap`.
RgbImage scalar_map_to_image(const std::vector<double>& values, int width, int height, Rgb (*colormap)(double));

// Blends `overlay` over `base` (same size) with weight `alpha` for the overlay.
RgbImage blend(const RgbImage& base, const RgbImage& overlay, double alpha);

}  // namespace kiln::report
