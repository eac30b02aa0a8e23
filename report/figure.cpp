// Figure: building the primitive list, the text metrics and the SVG renderer.
// The raster renderer is in report/rasterize.cpp; both read the same primitives.
#include "report/figure.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/core/check.h"
#include "report/font.h"
#include "weights/atomic_file.h"

namespace kiln::report {

// ---- text metrics: the embedded font's (report/font.h), scaled by size / em_rows

double text_width(const std::string& text, double size, bool bold) {
  const double per_char = (font::advance_columns + (bold ? 1 : 0)) * size / font::em_rows;
  return per_char * static_cast<double>(text.size());
}

double text_ascent(double size) { return font::ascent_rows * size / font::em_rows; }
double text_descent(double size) { return (font::glyph_rows - font::ascent_rows) * size / font::em_rows; }

std::string truncate_to_width(const std::string& text, double size, double max_width, bool bold) {
  if (text_width(text, size, bold) <= max_width) return text;
  std::string cut = text;
  while (cut.size() > 1 && text_width(cut + "..", size, bold) > max_width) cut.pop_back();
  while (!cut.empty() && cut.size() > 1 && cut.back() == ' ') cut.pop_back();  // no "cat .."
  return cut + "..";
}

// ---- building

Figure::Figure(int width, int height, Rgb background) : width_(width), height_(height), background_(background) {
  KILN_CHECK(width > 0 && height > 0, "Figure: size must be positive, got ", width, "x", height);
}

void Figure::line(Point from, Point to, LineStyle style) { polyline({from, to}, style); }

void Figure::polyline(std::vector<Point> points, LineStyle style) {
  KILN_CHECK(points.size() >= 2, "Figure::polyline: needs at least 2 points, got ", points.size());
  for (const Point& p : points)
    KILN_CHECK(std::isfinite(p.x) && std::isfinite(p.y), "Figure::polyline: non-finite point (", p.x, ", ", p.y, ")");
  KILN_CHECK(style.width > 0, "Figure::polyline: line width must be positive, got ", style.width);
  primitives_.emplace_back(std::in_place_type<PolylinePrimitive>, PolylinePrimitive{std::move(points), style});
}

void Figure::rect(double x, double y, double width, double height, std::optional<Rgb> fill, std::optional<Rgb> stroke,
                  double stroke_width) {
  KILN_CHECK(width >= 0 && height >= 0, "Figure::rect: negative size ", width, "x", height);
  primitives_.emplace_back(std::in_place_type<RectPrimitive>, RectPrimitive{x, y, width, height, fill, stroke, stroke_width});
}

void Figure::circle(Point center, double radius, std::optional<Rgb> fill, std::optional<Rgb> stroke,
                    double stroke_width) {
  KILN_CHECK(radius >= 0, "Figure::circle: negative radius ", radius);
  primitives_.emplace_back(std::in_place_type<CirclePrimitive>, CirclePrimitive{center, radius, fill, stroke, stroke_width});
}

void Figure::text(Point at, std::string text, TextStyle style) {
  KILN_CHECK(style.rotation == 0 || style.rotation == -90, "Figure::text: rotation must be 0 or -90, got ",
             style.rotation);
  KILN_CHECK(style.size > 0, "Figure::text: font size must be positive, got ", style.size);
  primitives_.emplace_back(std::in_place_type<TextPrimitive>, TextPrimitive{at, std::move(text), style});
}

void Figure::image(const RgbImage& image, double x, double y, double width, double height, bool pixelated) {
  KILN_CHECK(image.width > 0 && image.height > 0, "Figure::image: empty image");
  KILN_CHECK(width > 0 && height > 0, "Figure::image: box size must be positive, got ", width, "x", height);
  primitives_.emplace_back(std::in_place_type<ImagePrimitive>, ImagePrimitive{x, y, width, height, std::make_shared<const RgbImage>(image), pixelated});
}

void Figure::add(Primitive primitive) { primitives_.push_back(std::move(primitive)); }

void Figure::draw_figure(const Figure& other, Point offset) {
  const double dx = offset.x, dy = offset.y;
  for (Primitive p : other.primitives_) {
    if (auto* line = std::get_if<PolylinePrimitive>(&p)) {
      for (Point& q : line->points) q.x += dx, q.y += dy;
    } else if (auto* rect = std::get_if<RectPrimitive>(&p)) {
      rect->x += dx, rect->y += dy;
    } else if (auto* circle = std::get_if<CirclePrimitive>(&p)) {
      circle->center.x += dx, circle->center.y += dy;
    } else if (auto* text = std::get_if<TextPrimitive>(&p)) {
      text->at.x += dx, text->at.y += dy;
    } else if (auto* image = std::get_if<ImagePrimitive>(&p)) {
      image->x += dx, image->y += dy;
    }
    primitives_.push_back(std::move(p));
  }
}

// ---- SVG

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:  // control characters are not allowed in XML 1.0 (except tab and newline)
        out += (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') ? '?' : c;
    }
  }
  return out;
}

namespace {

// Coordinates with at most 2 decimals and no trailing zeros ("12.5", "40", "-0.25").
std::string num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", v);
  std::string s = buffer;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string color(Rgb c) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", c.r, c.g, c.b);
  return buffer;
}

// fill="..." stroke="..." stroke-width="..." for a shape that may have either.
std::string paint(const std::optional<Rgb>& fill, const std::optional<Rgb>& stroke, double stroke_width) {
  std::string s = " fill=\"" + (fill ? color(*fill) : std::string("none")) + "\"";
  if (stroke) s += " stroke=\"" + color(*stroke) + "\" stroke-width=\"" + num(stroke_width) + "\"";
  return s;
}

}  // namespace

// The dash pattern both renderers use (report/rasterize.cpp reads it from here).
std::pair<double, double> dash_pattern(double line_width) {
  return {std::max(4.0, 4 * line_width), std::max(3.0, 3 * line_width)};
}

std::string Figure::to_svg() const {
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"" << width_
      << "\" height=\"" << height_ << "\" viewBox=\"0 0 " << width_ << " " << height_
      << "\" font-family=\"Helvetica, Arial, sans-serif\">\n";
  svg << "<rect x=\"0\" y=\"0\" width=\"" << width_ << "\" height=\"" << height_ << "\" fill=\"" << color(background_)
      << "\"/>\n";
  for (const Primitive& primitive : primitives_) {
    if (const auto* line = std::get_if<PolylinePrimitive>(&primitive)) {
      svg << "<polyline points=\"";
      for (size_t i = 0; i < line->points.size(); ++i)
        svg << (i ? " " : "") << num(line->points[i].x) << "," << num(line->points[i].y);
      svg << "\" fill=\"none\" stroke=\"" << color(line->style.color) << "\" stroke-width=\""
          << num(line->style.width) << "\" stroke-linejoin=\"round\"";
      if (line->style.dashed) {
        const auto [on, off] = dash_pattern(line->style.width);
        svg << " stroke-dasharray=\"" << num(on) << " " << num(off) << "\"";
      }
      svg << "/>\n";
    } else if (const auto* rect = std::get_if<RectPrimitive>(&primitive)) {
      svg << "<rect x=\"" << num(rect->x) << "\" y=\"" << num(rect->y) << "\" width=\"" << num(rect->width)
          << "\" height=\"" << num(rect->height) << "\"" << paint(rect->fill, rect->stroke, rect->stroke_width)
          << "/>\n";
    } else if (const auto* circle = std::get_if<CirclePrimitive>(&primitive)) {
      svg << "<circle cx=\"" << num(circle->center.x) << "\" cy=\"" << num(circle->center.y) << "\" r=\""
          << num(circle->radius) << "\"" << paint(circle->fill, circle->stroke, circle->stroke_width) << "/>\n";
    } else if (const auto* text = std::get_if<TextPrimitive>(&primitive)) {
      static const char* anchors[] = {"start", "middle", "end"};
      const TextStyle& s = text->style;
      svg << "<text x=\"" << num(text->at.x) << "\" y=\"" << num(text->at.y) << "\" font-size=\"" << num(s.size)
          << "\" fill=\"" << color(s.color) << "\"";
      if (s.anchor != TextAnchor::start) svg << " text-anchor=\"" << anchors[static_cast<int>(s.anchor)] << "\"";
      if (s.bold) svg << " font-weight=\"bold\"";
      if (s.rotation != 0)
        svg << " transform=\"rotate(" << s.rotation << " " << num(text->at.x) << " " << num(text->at.y) << ")\"";
      svg << " xml:space=\"preserve\">" << xml_escape(text->text) << "</text>\n";
    } else if (const auto* image = std::get_if<ImagePrimitive>(&primitive)) {
      svg << "<image x=\"" << num(image->x) << "\" y=\"" << num(image->y) << "\" width=\"" << num(image->width)
          << "\" height=\"" << num(image->height) << "\" preserveAspectRatio=\"none\"";
      if (image->pixelated) svg << " style=\"image-rendering:pixelated\"";
      svg << " xlink:href=\"" << png_data_uri(*image->image) << "\"/>\n";
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_svg(const std::string& path, const Figure& figure) {
  const std::string svg = figure.to_svg();
  write_file_atomically(path, [&](std::ostream& out) { out.write(svg.data(), static_cast<std::streamsize>(svg.size())); });
}

void write_figure_png(const std::string& path, const Figure& figure) { write_png(path, figure.rasterize()); }

}  // namespace kiln::report
