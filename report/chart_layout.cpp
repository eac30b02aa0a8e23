// The frame shared by the x-y charts (report/chart_layout.h): axis resolution,
// margins, grid, ticks, labels, title, the legend and polyline clipping.
//
// The margins are measured, not guessed: the left one holds the y label (rotated)
// and the widest y tick label, the bottom one the x tick labels and the x label,
// so labels never overlap the plot or each other.
#include "report/chart_layout.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "engine/core/check.h"

namespace kiln::report::layout {

namespace {
constexpr double outer_margin = 10;  // figure edge to the outermost text
constexpr double legend_sample = 22, legend_padding = 7, legend_row = legend_size + 5;
constexpr double legend_max_text = 240;
}  // namespace

AxisTicks resolve_axis(double data_lo, double data_hi, std::optional<double> fixed_lo, std::optional<double> fixed_hi,
                       bool log) {
  AxisTicks axis;
  axis.log = log;
  double lo = fixed_lo.value_or(data_lo), hi = fixed_hi.value_or(data_hi);
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = log ? 0.1 : 0, hi = 1;  // no data: an empty 0..1 axis
  if (lo > hi) std::swap(lo, hi);
  if (log) {
    KILN_CHECK(lo > 0, "chart: a log axis needs positive values, got ", lo);
    axis.ticks = log_ticks(lo, hi);
    axis.lo = fixed_lo.value_or(axis.ticks.front());
    axis.hi = fixed_hi.value_or(axis.ticks.back());
  } else {
    const NiceScale scale = nice_scale(lo, hi);
    axis.ticks = scale.ticks;
    axis.lo = fixed_lo.value_or(scale.lo);
    axis.hi = fixed_hi.value_or(scale.hi);
    if (axis.lo == axis.hi) axis.lo = scale.lo, axis.hi = scale.hi;  // both fixed to one value
  }
  const double tolerance = 1e-9 * std::max(std::abs(axis.lo), std::abs(axis.hi));
  axis.ticks.erase(std::remove_if(axis.ticks.begin(), axis.ticks.end(),
                                  [&](double t) { return t < axis.lo - tolerance || t > axis.hi + tolerance; }),
                   axis.ticks.end());
  const double step = axis.ticks.size() >= 2 ? axis.ticks[1] - axis.ticks[0] : std::abs(axis.hi - axis.lo);
  for (double t : axis.ticks) axis.labels.push_back(format_tick(t, step, log));
  // A log axis reads best in one spelling: if any tick needs "1e-3", write all of them so.
  if (log && std::any_of(axis.labels.begin(), axis.labels.end(),
                         [](const std::string& l) { return l.find('e') != std::string::npos; }))
    for (size_t i = 0; i < axis.ticks.size(); ++i) axis.labels[i] = format_tick_scientific(axis.ticks[i]);
  return axis;
}

double legend_width(const std::vector<LegendEntry>& entries) {
  double text = 0;
  for (const LegendEntry& e : entries) text = std::max(text, std::min(legend_max_text, text_width(e.label, legend_size)));
  return 2 * legend_padding + legend_sample + 6 + text;
}

double legend_height(const std::vector<LegendEntry>& entries) {
  return 2 * legend_padding + legend_row * static_cast<double>(entries.size()) - 5;
}

PlotArea plot_area(const ChartOptions& options, double y_tick_label_width, double x_tick_labels_height,
                   double legend_w) {
  const double text_height = text_ascent(label_size) + text_descent(label_size);
  const double top = outer_margin + (options.title.empty() ? 4 : text_height + 12);
  const double left = outer_margin + (options.y_label.empty() ? 0 : text_height + 8) + y_tick_label_width + 4 +
                      tick_length;
  const double bottom = outer_margin + (options.x_label.empty() ? 0 : text_height + 6) + x_tick_labels_height + 4 +
                        tick_length;
  const double right = 20 + (legend_w > 0 ? legend_w + 12 : 0);
  PlotArea area;
  area.left = std::round(left), area.top = std::round(top);
  area.width = std::round(options.width - right - area.left);
  area.height = std::round(options.height - bottom - area.top);
  KILN_CHECK(area.width >= 40 && area.height >= 40, "chart: ", options.width, "x", options.height,
             " is too small for its labels (plot area ", area.width, "x", area.height, ")");
  return area;
}

void draw_frame(Figure& figure, const PlotArea& area, const AxisTicks& x, const AxisTicks& y,
                const ChartOptions& options, bool x_categorical) {
  const double left = area.left, top = area.top, right = area.left + area.width, bottom = area.top + area.height;
  const TextStyle tick_style{tick_size, TextAnchor::end, 0, false, text_color};
  // y: grid, ticks and labels (vertically centred on the tick)
  for (size_t i = 0; i < y.ticks.size(); ++i) {
    const double py = crisp(std::min(area.to_pixel_y(y.ticks[i]), bottom - 0.5));
    if (options.grid) figure.line({left, py}, {right, py}, {grid_color, 1});
    figure.line({left - tick_length, py}, {left, py}, {axis_color, 1});
    figure.text({left - tick_length - 3, py + text_ascent(tick_size) / 2}, y.labels[i], tick_style);
  }
  if (!x_categorical)
    for (size_t i = 0; i < x.ticks.size(); ++i) {
      const double px = crisp(std::min(area.to_pixel_x(x.ticks[i]), right - 0.5));
      if (options.grid) figure.line({px, top}, {px, bottom}, {grid_color, 1});
      figure.line({px, bottom}, {px, bottom + tick_length}, {axis_color, 1});
      TextStyle style = tick_style;
      style.anchor = TextAnchor::middle;
      figure.text({px, bottom + tick_length + 3 + text_ascent(tick_size)}, x.labels[i], style);
    }
  figure.rect(left - 0.5, top - 0.5, area.width + 1, area.height + 1, std::nullopt, axis_color, 1);

  TextStyle label_style{label_size, TextAnchor::middle, 0, false, text_color};
  if (!options.x_label.empty())
    figure.text({left + area.width / 2, options.height - outer_margin - text_descent(label_size)},
                truncate_to_width(options.x_label, label_size, options.width - 20), label_style);
  if (!options.y_label.empty()) {
    label_style.rotation = -90;
    figure.text({outer_margin + text_ascent(label_size), top + area.height / 2},
                truncate_to_width(options.y_label, label_size, area.height + top), label_style);
  }
  if (!options.title.empty()) {
    const TextStyle title_style{title_size, TextAnchor::middle, 0, true, text_color};
    const std::string title = truncate_to_width(options.title, title_size, options.width - 20, true);
    // Centred over the plot, moved left or right as needed to stay inside the figure.
    const double half = text_width(title, title_size, true) / 2;
    const double centre = std::clamp(left + area.width / 2, 10 + half, options.width - 10 - half);
    figure.text({centre, outer_margin + text_ascent(title_size)}, title, title_style);
  }
}

namespace {
// The legend's box for a position: {x, y, w, h}.
std::array<double, 4> legend_box(const PlotArea& area, const std::vector<LegendEntry>& entries,
                                 LegendPosition position) {
  const double w = legend_width(entries), h = legend_height(entries), inset = 8;
  const double left = area.left + inset, right = area.left + area.width - inset - w;
  const double top = area.top + inset, bottom = area.top + area.height - inset - h;
  switch (position) {
    case LegendPosition::top_left: return {left, top, w, h};
    case LegendPosition::bottom_right: return {right, bottom, w, h};
    case LegendPosition::bottom_left: return {left, bottom, w, h};
    case LegendPosition::outside_right: return {area.left + area.width + 12, area.top, w, h};
    default: return {right, top, w, h};
  }
}
}  // namespace

LegendPosition place_legend(LegendPosition requested, const PlotArea& area, const std::vector<LegendEntry>& entries,
                            const std::vector<std::vector<Point>>& occupied) {
  if (entries.empty()) return LegendPosition::none;
  if (requested != LegendPosition::automatic) return requested;
  // Count points sampled every 2 px along the drawn data inside each candidate box.
  std::vector<Point> samples;
  for (const auto& line : occupied) {
    if (line.size() == 1) samples.push_back(line[0]);
    for (size_t k = 1; k < line.size(); ++k) {
      const Point a = line[k - 1], b = line[k];
      const int steps = std::max(1, static_cast<int>(std::hypot(b.x - a.x, b.y - a.y) / 2));
      for (int s = 0; s <= steps; ++s)
        samples.push_back({a.x + (b.x - a.x) * s / steps, a.y + (b.y - a.y) * s / steps});
    }
  }
  LegendPosition best = LegendPosition::outside_right;
  size_t fewest = SIZE_MAX;
  for (LegendPosition candidate : {LegendPosition::top_right, LegendPosition::top_left, LegendPosition::bottom_right,
                                   LegendPosition::bottom_left}) {
    const auto [x, y, w, h] = legend_box(area, entries, candidate);
    if (x < area.left || y < area.top) continue;  // does not fit inside
    // The bindings are copied into the lambda: C++17 does not let a lambda capture a
    // structured binding (g++ allows it, clang does not).
    const size_t covered = std::count_if(samples.begin(), samples.end(), [&, x = x, y = y, w = w, h = h](const Point& p) {
      return p.x >= x - 3 && p.x <= x + w + 3 && p.y >= y - 3 && p.y <= y + h + 3;
    });
    if (covered < fewest) fewest = covered, best = candidate;
  }
  return fewest == 0 ? best : LegendPosition::outside_right;
}

void draw_legend(Figure& figure, const PlotArea& area, const std::vector<LegendEntry>& entries,
                 LegendPosition position) {
  if (entries.empty() || position == LegendPosition::none) return;
  const auto [x, y, w, h] = legend_box(area, entries, position);
  figure.rect(std::round(x) + 0.5, std::round(y) + 0.5, std::round(w), std::round(h), Rgb{255, 255, 255},
              Rgb{200, 200, 200}, 1);
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    const double middle = std::round(y + legend_padding + legend_row * static_cast<double>(i) + legend_size / 2);
    const double sample_left = std::round(x + legend_padding);
    if (e.box) {
      figure.rect(sample_left + 5, middle - 5, 11, 11, e.color);
    } else {
      figure.line({sample_left, middle}, {sample_left + legend_sample, middle}, {e.color, 2, e.dashed});
    }
    figure.text({sample_left + legend_sample + 6, middle + text_ascent(legend_size) / 2},
                truncate_to_width(e.label, legend_size, legend_max_text), {legend_size, TextAnchor::start, 0, false, text_color});
  }
}

std::vector<std::vector<Point>> clip_polyline(const std::vector<Point>& points, const PlotArea& area) {
  const double x0 = area.left, x1 = area.left + area.width, y0 = area.top, y1 = area.top + area.height;
  std::vector<std::vector<Point>> pieces;
  std::vector<Point> current;
  auto flush = [&] {
    if (current.size() >= 2) pieces.push_back(current);
    current.clear();
  };
  for (size_t k = 1; k < points.size(); ++k) {
    const Point a = points[k - 1], b = points[k];
    const double dx = b.x - a.x, dy = b.y - a.y;
    // Liang-Barsky: the segment a + t (b - a) is inside for t in [t0, t1].
    double t0 = 0, t1 = 1;
    bool visible = true;
    for (const auto& [p, q] : {std::pair{-dx, a.x - x0}, {dx, x1 - a.x}, {-dy, a.y - y0}, {dy, y1 - a.y}}) {
      if (p == 0) {
        if (q < 0) visible = false;
      } else if (p < 0) {
        t0 = std::max(t0, q / p);
      } else {
        t1 = std::min(t1, q / p);
      }
    }
    if (!visible || t0 > t1) {
      flush();
      continue;
    }
    if (current.empty() || t0 > 0) {
      flush();
      current.push_back({a.x + t0 * dx, a.y + t0 * dy});
    }
    current.push_back({a.x + t1 * dx, a.y + t1 * dy});
    if (t1 < 1) flush();
  }
  flush();
  return pieces;
}

}  // namespace kiln::report::layout
