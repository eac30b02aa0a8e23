// Figure: a picture described once, as a list of drawing primitives in pixel
// coordinates (x to the right, y down, (0, 0) the top-left corner), and drawn by
// two renderers from that one description:
//   to_svg()     a self-contained SVG document (vector; for report.html and zooming),
//   rasterize()  an RgbImage drawn by kiln's own rasteriser (for PNG files), with
//                text from the bitmap font embedded in report/font.cpp.
// Both read the same primitives, so the PNG and the SVG show the same picture; the
// charts (report/charts.h) only ever build Figures and never draw pixels themselves.
//
// Text is placed by its baseline: a TextPrimitive at (x, y) with anchor `start`
// begins at x and sits on the line y (capitals rise text_ascent(size) above it,
// descenders hang text_descent(size) below). Layout code measures text with
// text_width(), the bitmap font's exact advance; the SVG's Helvetica/Arial is a
// little narrower on average, so text measured to fit fits in both.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "report/image.h"

namespace kiln::report {

struct Point {
  double x = 0, y = 0;
};

struct LineStyle {
  Rgb color{0, 0, 0};
  double width = 1.0;   // pixels
  bool dashed = false;  // dash_pattern(width): 4 * width on, 3 * width off (at least 4 px on, 3 px off)
};

// (on, off) lengths in pixels of a dashed line's pattern; both renderers use it.
std::pair<double, double> dash_pattern(double line_width);

enum class TextAnchor { start, middle, end };  // where the anchor point lies along the text

struct TextStyle {
  double size = 12;  // font size in pixels (the em: capitals are 0.7 * size tall)
  TextAnchor anchor = TextAnchor::start;
  int rotation = 0;  // 0 (left to right) or -90 (bottom to top, for y-axis labels)
  bool bold = false;
  Rgb color{0, 0, 0};
};

// ---- primitives (plain data; Figure's methods build them)

struct PolylinePrimitive {  // an open path through `points` (two points: a line)
  std::vector<Point> points;
  LineStyle style;
};

struct RectPrimitive {  // axis-aligned; filled, stroked or both
  double x = 0, y = 0, width = 0, height = 0;
  std::optional<Rgb> fill, stroke;
  double stroke_width = 1.0;
};

struct CirclePrimitive {  // markers and dots
  Point center;
  double radius = 3;
  std::optional<Rgb> fill, stroke;
  double stroke_width = 1.0;
};

struct TextPrimitive {
  Point at;  // the anchor point on the baseline
  std::string text;  // printable ASCII is drawn; other bytes are drawn as '?'
  TextStyle style;
};

struct ImagePrimitive {  // a raster image scaled into the box (x, y, width, height)
  double x = 0, y = 0, width = 0, height = 0;
  std::shared_ptr<const RgbImage> image;  // shared: copies of a Figure do not copy pixels
  bool pixelated = false;  // nearest-neighbour (filters, feature maps) instead of smooth scaling (photos)
};

using Primitive = std::variant<PolylinePrimitive, RectPrimitive, CirclePrimitive, TextPrimitive, ImagePrimitive>;

// ---- text metrics (of the embedded font; shared by layout code and both renderers)

// Advance width of `text` in pixels at `size`: 0.6 * size per character (+0.1 * size per character when bold).
double text_width(const std::string& text, double size, bool bold = false);
double text_ascent(double size);   // 0.7 * size: from the baseline to the top of capitals
double text_descent(double size);  // 0.2 * size: from the baseline to the bottom of 'g', 'p', 'y'
// `text` unchanged if it fits in max_width, else cut and ended with ".." so it does
// (at least one character and the ".." are kept).
std::string truncate_to_width(const std::string& text, double size, double max_width, bool bold = false);

// ---- the figure

class Figure {
 public:
  Figure(int width, int height, Rgb background = {255, 255, 255});

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb background() const { return background_; }
  const std::vector<Primitive>& primitives() const { return primitives_; }

  // Later primitives are drawn over earlier ones (painter's order) by both renderers.
  void line(Point from, Point to, LineStyle style = {});
  void polyline(std::vector<Point> points, LineStyle style = {});
  void rect(double x, double y, double width, double height, std::optional<Rgb> fill,
            std::optional<Rgb> stroke = std::nullopt, double stroke_width = 1.0);
  void circle(Point center, double radius, std::optional<Rgb> fill, std::optional<Rgb> stroke = std::nullopt,
              double stroke_width = 1.0);
  void text(Point at, std::string text, TextStyle style = {});
  void image(const RgbImage& image, double x, double y, double width, double height, bool pixelated = false);
  void add(Primitive primitive);
  // Draws every primitive of `other` shifted by `offset` (to compose figures side by side).
  void draw_figure(const Figure& other, Point offset);

  // A self-contained SVG document (<svg xmlns=... width=... height=...>...</svg>):
  // polylines as <polyline>, rects as <rect>, circles as <circle>, text as <text>
  // (XML-escaped, sans-serif), images as <image> with a PNG data URI.
  std::string to_svg() const;
  // The picture as pixels, drawn by kiln's rasteriser with the SVG's geometry
  // (pixel (i, j) is the square [i, i+1) x [j, j+1)): anti-aliased lines and
  // circles by area coverage, so a rect on integer edges and a 1-px horizontal or
  // vertical line on a pixel centre (y = j + 0.5) are pixel-exact; text from the
  // embedded bitmap font.
  RgbImage rasterize() const;

 private:
  int width_, height_;
  Rgb background_;
  std::vector<Primitive> primitives_;
};

// "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" for the five XML specials; control
// characters (not allowed in XML) become '?'.
std::string xml_escape(const std::string& text);

// Writes the figure's SVG (write_svg) or rasterised PNG (write_figure_png) atomically.
void write_svg(const std::string& path, const Figure& figure);
void write_figure_png(const std::string& path, const Figure& figure);

}  // namespace kiln::report
