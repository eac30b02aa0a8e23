// Figure::rasterize(): kiln's rasteriser, drawing a Figure's primitives into an
// RgbImage with the same geometry as the SVG renderer (report/figure.cpp).
//
// Pixel (i, j) is the unit square [i, i+1) x [j, j+1). Each primitive becomes a
// coverage a in [0, 1] per pixel, and the pixel is blended "over":
//     out = (1 - a) * out + a * color.
// Coverage is exact (area) for axis-aligned rectangles and text, and counted on a
// 4 x 4 grid of samples per pixel for lines and circles, which anti-aliases their
// edges while keeping an axis-aligned line that covers whole pixels pixel-exact.
// Lines are stroked as butt-ended rectangles per segment with round joins (discs
// at the inner vertices); a polyline's samples are OR-ed before blending so that
// overlapping segments and joins do not darken it.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "report/figure.h"
#include "report/font.h"

namespace kiln::report {
namespace {

constexpr int samples_per_side = 4;  // 4 x 4 = 16 samples per pixel

void blend_pixel(RgbImage& image, int x, int y, Rgb color, double alpha) {
  if (alpha <= 0 || x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  alpha = std::min(alpha, 1.0);
  uint8_t* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
  const uint8_t c[3] = {color.r, color.g, color.b};
  for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(std::lround((1 - alpha) * p[k] + alpha * c[k]));
}

// Integer pixel range [lo, hi) of the pixels touching [a, b], clipped to [0, limit).
std::pair<int, int> pixel_span(double a, double b, int limit) {
  const int lo = std::max(0, static_cast<int>(std::floor(a)));
  const int hi = std::min(limit, static_cast<int>(std::ceil(b)));
  return {lo, std::max(lo, hi)};
}

// The pixels touching the box [ax, bx] x [ay, by], clipped to the image, as {x0, y0, x1, y1}.
std::array<int, 4> pixel_box(const RgbImage& image, double ax, double ay, double bx, double by) {
  const auto [x0, x1] = pixel_span(ax, bx, image.width);
  const auto [y0, y1] = pixel_span(ay, by, image.height);
  return {x0, y0, x1, y1};
}

// Exact area coverage, accumulated over a box of pixels: rectangles that tile
// (text's font pixels, a rect's stroke sides) add up without seams or double blending.
class AreaCoverage {
 public:
  explicit AreaCoverage(std::array<int, 4> box)
      : x0_(box[0]), y0_(box[1]), w_(std::max(0, box[2] - box[0])), h_(std::max(0, box[3] - box[1])) {
    coverage_.assign(static_cast<size_t>(w_) * h_, 0.0f);
  }
  void add_rect(double ax, double ay, double bx, double by) {
    if (bx <= ax || by <= ay) return;
    const auto [i0, i1] = pixel_span(ax - x0_, bx - x0_, w_);
    const auto [j0, j1] = pixel_span(ay - y0_, by - y0_, h_);
    for (int j = j0; j < j1; ++j) {
      const double cy = std::min<double>(j + 1, by - y0_) - std::max<double>(j, ay - y0_);
      for (int i = i0; i < i1; ++i) {
        const double cx = std::min<double>(i + 1, bx - x0_) - std::max<double>(i, ax - x0_);
        coverage_[static_cast<size_t>(j) * w_ + i] += static_cast<float>(cx * cy);
      }
    }
  }
  void composite(RgbImage& image, Rgb color) const {
    for (int j = 0; j < h_; ++j)
      for (int i = 0; i < w_; ++i) blend_pixel(image, x0_ + i, y0_ + j, color, coverage_[static_cast<size_t>(j) * w_ + i]);
  }

 private:
  int x0_, y0_, w_, h_;
  std::vector<float> coverage_;
};

// Sampled coverage over a box of pixels: one bit per sample, OR-ed across shapes.
class SampleMask {
 public:
  explicit SampleMask(std::array<int, 4> box)
      : x0_(box[0]), y0_(box[1]), w_(std::max(0, box[2] - box[0])), h_(std::max(0, box[3] - box[1])) {
    bits_.assign(static_cast<size_t>(w_) * h_, 0);
  }
  // Sets the samples inside [ax, bx] x [ay, by] (a bounding box) for which inside(x, y) holds.
  template <class Inside>
  void add(double ax, double ay, double bx, double by, Inside inside) {
    const auto [i0, i1] = pixel_span(ax - x0_, bx - x0_, w_);
    const auto [j0, j1] = pixel_span(ay - y0_, by - y0_, h_);
    for (int j = j0; j < j1; ++j)
      for (int i = i0; i < i1; ++i) {
        uint16_t& bits = bits_[static_cast<size_t>(j) * w_ + i];
        for (int sy = 0; sy < samples_per_side; ++sy)
          for (int sx = 0; sx < samples_per_side; ++sx) {
            const double x = x0_ + i + (sx + 0.5) / samples_per_side, y = y0_ + j + (sy + 0.5) / samples_per_side;
            if (inside(x, y)) bits |= uint16_t(1u << (sy * samples_per_side + sx));
          }
      }
  }
  void composite(RgbImage& image, Rgb color) const {
    constexpr double samples = samples_per_side * samples_per_side;
    for (int j = 0; j < h_; ++j)
      for (int i = 0; i < w_; ++i) {
        const uint16_t bits = bits_[static_cast<size_t>(j) * w_ + i];
        if (bits) blend_pixel(image, x0_ + i, y0_ + j, color, __builtin_popcount(bits) / samples);
      }
  }

 private:
  int x0_, y0_, w_, h_;
  std::vector<uint16_t> bits_;
};

// A polyline cut into its dashes (on-pieces of dash_pattern along the arc length).
std::vector<std::vector<Point>> dash_pieces(const std::vector<Point>& points, double line_width) {
  const auto [on, off] = dash_pattern(line_width);
  std::vector<std::vector<Point>> pieces(1);
  bool drawing = true;
  double left = on;  // length left in the current dash or gap
  pieces.back().push_back(points[0]);
  for (size_t k = 1; k < points.size(); ++k) {
    Point a = points[k - 1];
    const Point b = points[k];
    double length = std::hypot(b.x - a.x, b.y - a.y);
    while (length > left) {  // the dash or gap ends inside this segment
      const double t = left / length;
      a = {a.x + t * (b.x - a.x), a.y + t * (b.y - a.y)};
      length -= left;
      if (drawing) {
        pieces.back().push_back(a);
      } else {
        pieces.push_back({a});
      }
      drawing = !drawing;
      left = drawing ? on : off;
    }
    left -= length;
    if (drawing) pieces.back().push_back(b);
  }
  pieces.erase(std::remove_if(pieces.begin(), pieces.end(), [](const auto& p) { return p.size() < 2; }), pieces.end());
  return pieces;
}

void draw_polyline(RgbImage& image, const PolylinePrimitive& line) {
  const double half = line.style.width / 2;
  double min_x = INFINITY, min_y = INFINITY, max_x = -INFINITY, max_y = -INFINITY;
  for (const Point& p : line.points)
    min_x = std::min(min_x, p.x), min_y = std::min(min_y, p.y), max_x = std::max(max_x, p.x), max_y = std::max(max_y, p.y);
  SampleMask mask(pixel_box(image, min_x - half, min_y - half, max_x + half, max_y + half));
  const auto pieces = line.style.dashed ? dash_pieces(line.points, line.style.width)
                                        : std::vector<std::vector<Point>>{line.points};
  for (const auto& piece : pieces) {
    for (size_t k = 1; k < piece.size(); ++k) {
      const Point a = piece[k - 1], b = piece[k];
      const double length = std::hypot(b.x - a.x, b.y - a.y);
      if (length == 0) continue;
      const double ux = (b.x - a.x) / length, uy = (b.y - a.y) / length;  // along the segment
      mask.add(std::min(a.x, b.x) - half, std::min(a.y, b.y) - half, std::max(a.x, b.x) + half,
               std::max(a.y, b.y) + half, [&](double x, double y) {
                 const double along = (x - a.x) * ux + (y - a.y) * uy, across = -(x - a.x) * uy + (y - a.y) * ux;
                 return along >= 0 && along <= length && std::abs(across) <= half;
               });
    }
    for (size_t k = 1; k + 1 < piece.size(); ++k) {  // round joins at the inner vertices
      const Point c = piece[k];
      mask.add(c.x - half, c.y - half, c.x + half, c.y + half,
               [&](double x, double y) { return (x - c.x) * (x - c.x) + (y - c.y) * (y - c.y) <= half * half; });
    }
  }
  mask.composite(image, line.style.color);
}

void draw_rect(RgbImage& image, const RectPrimitive& rect) {
  const double x0 = rect.x, y0 = rect.y, x1 = rect.x + rect.width, y1 = rect.y + rect.height;
  if (rect.fill) {
    AreaCoverage fill(pixel_box(image, x0, y0, x1, y1));
    fill.add_rect(x0, y0, x1, y1);
    fill.composite(image, *rect.fill);
  }
  if (rect.stroke && rect.stroke_width > 0) {  // centred on the edges, square corners (SVG's miter)
    const double h = rect.stroke_width / 2;
    AreaCoverage stroke(pixel_box(image, x0 - h, y0 - h, x1 + h, y1 + h));
    stroke.add_rect(x0 - h, y0 - h, x1 + h, y0 + h);  // top, full width
    stroke.add_rect(x0 - h, y1 - h, x1 + h, y1 + h);  // bottom
    stroke.add_rect(x0 - h, y0 + h, x0 + h, y1 - h);  // left, between them
    stroke.add_rect(x1 - h, y0 + h, x1 + h, y1 - h);  // right
    stroke.composite(image, *rect.stroke);
  }
}

void draw_circle(RgbImage& image, const CirclePrimitive& circle) {
  const Point c = circle.center;
  const double r = circle.radius, h = circle.stroke ? circle.stroke_width / 2 : 0;
  const auto box = pixel_box(image, c.x - r - h, c.y - r - h, c.x + r + h, c.y + r + h);
  auto distance = [&](double x, double y) { return std::hypot(x - c.x, y - c.y); };
  if (circle.fill) {
    SampleMask fill(box);
    fill.add(c.x - r, c.y - r, c.x + r, c.y + r, [&](double x, double y) { return distance(x, y) <= r; });
    fill.composite(image, *circle.fill);
  }
  if (circle.stroke) {
    SampleMask stroke(box);
    stroke.add(c.x - r - h, c.y - r - h, c.x + r + h, c.y + r + h,
               [&](double x, double y) { return std::abs(distance(x, y) - r) <= h; });
    stroke.composite(image, *circle.stroke);
  }
}

// Text: every ink pixel of the font becomes a square of side size / em_rows. From
// 10 px up (a square at least one pixel wide), the squares' edges are rounded to
// whole pixels, which keeps the glyphs crisp (columns 1 or 2 pixels wide) instead
// of blurred; smaller text keeps exact, anti-aliased squares.
void draw_text(RgbImage& image, const TextPrimitive& text) {
  const TextStyle& style = text.style;
  const double scale = style.size / font::em_rows;
  const bool snap = scale >= 1;
  auto snapped = [&](double v) { return snap ? std::round(v) : v; };
  const double width = text_width(text.text, style.size, style.bold);
  const double shift = style.anchor == TextAnchor::start ? 0 : style.anchor == TextAnchor::middle ? -width / 2 : -width;
  const double ax = snapped(text.at.x), ay = snapped(text.at.y), start = snapped(shift);
  const int columns = font::glyph_columns + (style.bold ? 1 : 0);  // bold: each column OR its left neighbour
  const int advance = font::advance_columns + (style.bold ? 1 : 0);

  // The text's box in its own frame (one pixel of slack for the rounding), then in the image's.
  const double u_lo = start - 1, u_hi = start + width + 1;
  const double v_lo = -text_ascent(style.size) - 1, v_hi = text_descent(style.size) + 1;
  AreaCoverage coverage(style.rotation == 0 ? pixel_box(image, ax + u_lo, ay + v_lo, ax + u_hi, ay + v_hi)
                                            : pixel_box(image, ax + v_lo, ay - u_hi, ax + v_hi, ay - u_lo));
  for (size_t k = 0; k < text.text.size(); ++k) {
    const char c = text.text[k];
    for (int row = 0; row < font::glyph_rows; ++row)
      for (int column = 0; column < columns; ++column) {
        const bool ink = font::glyph_pixel(c, column, row) || (style.bold && font::glyph_pixel(c, column - 1, row));
        if (!ink) continue;
        // The square in the text's frame: u along the text from the anchor, v down from the baseline.
        const double u0 = snapped(start + (static_cast<double>(k) * advance + column) * scale);
        const double u1 = snapped(start + (static_cast<double>(k) * advance + column + 1) * scale);
        const double v0 = snapped((row - font::ascent_rows) * scale), v1 = snapped((row + 1 - font::ascent_rows) * scale);
        if (style.rotation == 0) {
          coverage.add_rect(ax + u0, ay + v0, ax + u1, ay + v1);
        } else {  // rotate(-90) about the anchor: (u, v) -> (v, -u)
          coverage.add_rect(ax + v0, ay - u1, ax + v1, ay - u0);
        }
      }
  }
  coverage.composite(image, style.color);
}

void draw_image(RgbImage& image, const ImagePrimitive& picture) {
  const int x0 = static_cast<int>(std::lround(picture.x)), y0 = static_cast<int>(std::lround(picture.y));
  const int w = static_cast<int>(std::lround(picture.x + picture.width)) - x0;
  const int h = static_cast<int>(std::lround(picture.y + picture.height)) - y0;
  if (w <= 0 || h <= 0) return;
  const RgbImage& source = *picture.image;
  if (source.width == w && source.height == h) {
    image.paste(source, x0, y0);
  } else {
    image.paste(picture.pixelated ? resize_nearest(source, w, h) : resize_smooth(source, w, h), x0, y0);
  }
}

}  // namespace

RgbImage Figure::rasterize() const {
  RgbImage image(width_, height_, background_);
  for (const Primitive& primitive : primitives_) {
    if (const auto* line = std::get_if<PolylinePrimitive>(&primitive)) draw_polyline(image, *line);
    else if (const auto* rect = std::get_if<RectPrimitive>(&primitive)) draw_rect(image, *rect);
    else if (const auto* circle = std::get_if<CirclePrimitive>(&primitive)) draw_circle(image, *circle);
    else if (const auto* text = std::get_if<TextPrimitive>(&primitive)) draw_text(image, *text);
    else if (const auto* picture = std::get_if<ImagePrimitive>(&primitive)) draw_image(image, *picture);
  }
  return image;
}

}  // namespace kiln::report
