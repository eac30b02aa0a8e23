// The x-y charts: line_chart (and roc_chart on top of it) and bar_chart. Each
// resolves its axes, measures its labels, takes a plot area from
// layout::plot_area(), draws the frame, the data and the legend into a Figure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/core/check.h"
#include "report/chart_layout.h"
#include "report/charts.h"

namespace kiln::report {

using layout::AxisTicks;
using layout::LegendEntry;

namespace {

double widest(const std::vector<std::string>& labels, double size) {
  double w = 0;
  for (const std::string& label : labels) w = std::max(w, text_width(label, size));
  return w;
}

// The runs of consecutive drawable points of a series (finite, and y > 0 on a log axis).
std::vector<std::vector<std::pair<double, double>>> drawable_runs(const Series& s, bool log_y) {
  std::vector<std::vector<std::pair<double, double>>> runs(1);
  for (size_t i = 0; i < s.x.size(); ++i) {
    const bool ok = std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!log_y || s.y[i] > 0);
    if (ok) {
      runs.back().push_back({s.x[i], s.y[i]});
    } else if (!runs.back().empty()) {
      runs.emplace_back();
    }
  }
  if (runs.back().empty()) runs.pop_back();
  return runs;
}

Rgb color_of(const Series& s, size_t index) { return s.color.value_or(series_color(index)); }

}  // namespace

Figure line_chart(const std::vector<Series>& series, const ChartOptions& options) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    KILN_CHECK(s.x.size() == s.y.size(), "line_chart: series '", s.label, "' has ", s.x.size(), " x values but ",
               s.y.size(), " y values");
    for (const auto& run : drawable_runs(s, options.log_y))
      for (const auto& [x, y] : run)
        x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x), y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    if (!s.label.empty()) entries.push_back({s.label, color_of(s, i), s.dashed});
  }
  const AxisTicks x_axis = layout::resolve_axis(x_lo, x_hi, options.x_min, options.x_max, false);
  const AxisTicks y_axis = layout::resolve_axis(y_lo, y_hi, options.y_min, options.y_max, options.log_y);

  // The pixel polylines of every series for a plot area (clipped to it).
  struct Drawn {
    std::vector<std::vector<Point>> lines;
    std::vector<Point> markers;
  };
  auto draw_data = [&](const PlotArea& area) {
    std::vector<Drawn> drawn(series.size());
    for (size_t i = 0; i < series.size(); ++i)
      for (const auto& run : drawable_runs(series[i], options.log_y)) {
        std::vector<Point> pixels;
        for (const auto& [x, y] : run) pixels.push_back(area.to_pixel(x, y));
        if (series[i].markers || pixels.size() == 1)
          for (const Point& p : pixels)
            if (p.x >= area.left - 0.5 && p.x <= area.left + area.width + 0.5 && p.y >= area.top - 0.5 &&
                p.y <= area.top + area.height + 0.5)
              drawn[i].markers.push_back(p);
        for (auto& piece : layout::clip_polyline(pixels, area)) drawn[i].lines.push_back(std::move(piece));
      }
    return drawn;
  };
  auto make_area = [&](double legend_w) {
    PlotArea area = layout::plot_area(options, widest(y_axis.labels, layout::tick_size),
                                      text_ascent(layout::tick_size) + text_descent(layout::tick_size), legend_w);
    area.x_lo = x_axis.lo, area.x_hi = x_axis.hi, area.y_lo = y_axis.lo, area.y_hi = y_axis.hi;
    area.log_y = options.log_y;
    return area;
  };

  PlotArea area = make_area(options.legend == LegendPosition::outside_right ? layout::legend_width(entries) : 0);
  std::vector<Drawn> drawn = draw_data(area);
  std::vector<std::vector<Point>> occupied;
  for (const Drawn& d : drawn) {
    occupied.insert(occupied.end(), d.lines.begin(), d.lines.end());
    for (const Point& p : d.markers) occupied.push_back({p});
  }
  const LegendPosition legend = layout::place_legend(options.legend, area, entries, occupied);
  if (legend == LegendPosition::outside_right && options.legend != LegendPosition::outside_right) {
    area = make_area(layout::legend_width(entries));  // the legend needs room beside the plot
    drawn = draw_data(area);
  }

  Figure figure(options.width, options.height);
  layout::draw_frame(figure, area, x_axis, y_axis, options);
  for (size_t i = 0; i < series.size(); ++i) {
    const Rgb color = color_of(series[i], i);
    for (const auto& line : drawn[i].lines) figure.polyline(line, {color, series[i].line_width, series[i].dashed});
    for (const Point& p : drawn[i].markers) figure.circle(p, std::max(2.5, series[i].line_width + 1), color);
  }
  layout::draw_legend(figure, area, entries, legend);
  return figure;
}

std::string roc_legend_label(const RocSeries& curve) {
  char auc[32];
  if (std::isfinite(curve.auc)) {
    std::snprintf(auc, sizeof auc, "%.3f", curve.auc);
  } else {
    std::snprintf(auc, sizeof auc, "n/a");
  }
  return curve.label + " (AUC " + auc + ")";
}

Figure roc_chart(const std::vector<RocSeries>& curves, ChartOptions options) {
  if (options.title.empty()) options.title = "ROC (one-vs-rest)";
  if (options.x_label.empty()) options.x_label = "false positive rate";
  if (options.y_label.empty()) options.y_label = "true positive rate";
  options.x_min = options.x_min.value_or(0), options.x_max = options.x_max.value_or(1);
  options.y_min = options.y_min.value_or(0), options.y_max = options.y_max.value_or(1);
  options.log_y = false;
  std::vector<Series> series;
  Series chance{"chance", {0, 1}, {0, 1}, true, Rgb{150, 150, 150}};
  chance.line_width = 1.5;
  series.push_back(chance);
  for (size_t i = 0; i < curves.size(); ++i) {
    const RocSeries& c = curves[i];
    KILN_CHECK(c.fpr.size() == c.tpr.size(), "roc_chart: curve '", c.label, "' has ", c.fpr.size(), " fpr but ",
               c.tpr.size(), " tpr values");
    Series s{roc_legend_label(c), c.fpr, c.tpr, false, series_color(i)};
    series.push_back(std::move(s));
  }
  // The chance line first, so the legend lists the classes after it and the curves draw over it.
  return line_chart(series, options);
}

Figure bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                 const BarChartOptions& options) {
  KILN_CHECK(!categories.empty(), "bar_chart: no categories");
  KILN_CHECK(!series.empty(), "bar_chart: no series");
  double lo = 0, hi = 0;  // bars grow from 0, so 0 is always on the axis
  std::vector<LegendEntry> entries;
  for (size_t j = 0; j < series.size(); ++j) {
    KILN_CHECK(series[j].values.size() == categories.size(), "bar_chart: series '", series[j].label, "' has ",
               series[j].values.size(), " values for ", categories.size(), " categories");
    for (double v : series[j].values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (series.size() > 1 && !series[j].label.empty())
      entries.push_back({series[j].label, series[j].color.value_or(series_color(j)), false, true});
  }
  const AxisTicks y_axis = layout::resolve_axis(lo, hi, options.y_min, options.y_max, false);
  const double y_tick_w = widest(y_axis.labels, layout::tick_size);
  const double line_height = text_ascent(layout::tick_size) + text_descent(layout::tick_size);
  constexpr double max_category_width = 110;

  // Category labels: horizontal when the widest fits its group, else rotated (bottom to top) and truncated.
  auto make_area = [&](double labels_height, double legend_w) {
    PlotArea area = layout::plot_area(options, y_tick_w, labels_height, legend_w);
    area.x_lo = 0, area.x_hi = static_cast<double>(categories.size()), area.y_lo = y_axis.lo, area.y_hi = y_axis.hi;
    return area;
  };
  const double legend_w = options.legend == LegendPosition::outside_right ? layout::legend_width(entries) : 0;
  PlotArea area = make_area(line_height, legend_w);
  const bool rotate = widest(categories, layout::tick_size) > area.width / categories.size() - 6;
  std::vector<std::string> labels;
  for (const std::string& c : categories)
    labels.push_back(rotate ? truncate_to_width(c, layout::tick_size, max_category_width) : c);
  if (rotate) area = make_area(widest(labels, layout::tick_size), legend_w);

  // The bars, snapped to whole pixels so their edges are crisp.
  struct Bar {
    double x0, x1, y0, y1;
    Rgb color;
    double value;
  };
  auto bars_for = [&](const PlotArea& a) {
    std::vector<Bar> bars;
    const double group = a.width / categories.size(), bar = 0.8 * group / series.size();
    const double base = a.to_pixel_y(std::clamp(0.0, a.y_lo, a.y_hi));
    for (size_t i = 0; i < categories.size(); ++i)
      for (size_t j = 0; j < series.size(); ++j) {
        const double v = series[j].values[i];
        if (!std::isfinite(v)) continue;
        const double x0 = std::round(a.left + i * group + 0.1 * group + j * bar), x1 = std::round(x0 + bar) - 1;
        const double top = a.to_pixel_y(std::clamp(v, a.y_lo, a.y_hi));
        bars.push_back({x0, std::max(x0 + 1, x1), std::round(std::min(base, top)), std::round(std::max(base, top)),
                        series[j].color.value_or(series_color(j)), v});
      }
    return bars;
  };
  std::vector<Bar> bars = bars_for(area);
  std::vector<std::vector<Point>> occupied;
  for (const Bar& b : bars) occupied.push_back({{b.x0, b.y1}, {b.x0, b.y0}, {b.x1, b.y0}, {b.x1, b.y1}});
  const LegendPosition legend = layout::place_legend(options.legend, area, entries, occupied);
  if (legend == LegendPosition::outside_right && legend_w == 0) {
    area = make_area(rotate ? widest(labels, layout::tick_size) : line_height, layout::legend_width(entries));
    bars = bars_for(area);
  }

  Figure figure(options.width, options.height);
  layout::draw_frame(figure, area, AxisTicks{}, y_axis, options, /*x_categorical=*/true);
  const double bottom = area.top + area.height;
  for (size_t i = 0; i < categories.size(); ++i) {
    const double centre = area.left + (i + 0.5) * area.width / categories.size();
    figure.line({layout::crisp(centre), bottom}, {layout::crisp(centre), bottom + layout::tick_length},
                {layout::axis_color, 1});
    TextStyle style{layout::tick_size, TextAnchor::middle, 0, false, layout::text_color};
    if (rotate) {  // reads bottom to top, ending just under the tick
      style.anchor = TextAnchor::end, style.rotation = -90;
      figure.text({centre + text_ascent(layout::tick_size) / 2, bottom + layout::tick_length + 3}, labels[i], style);
    } else {
      figure.text({centre, bottom + layout::tick_length + 3 + text_ascent(layout::tick_size)}, labels[i], style);
    }
  }
  for (const Bar& b : bars) {
    figure.rect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0, b.color);
    if (!options.show_values) continue;
    char text[32];
    std::snprintf(text, sizeof text, "%.*f", options.value_decimals, b.value);
    // As large as fits the bar's width, up to 10 px; none when it would be unreadable.
    const double size = std::min(10.0, (b.x1 - b.x0 + 4) / (0.6 * std::strlen(text)));
    if (size < 6) continue;
    const bool below = b.value < 0;
    figure.text({(b.x0 + b.x1) / 2, below ? b.y1 + 3 + text_ascent(size) : b.y0 - 3}, text,
                {size, TextAnchor::middle, 0, false, layout::text_color});
  }
  if (area.y_lo < 0 && area.y_hi > 0) {  // the zero line between positive and negative bars
    const double zero = layout::crisp(area.to_pixel_y(0));
    figure.line({area.left, zero}, {area.left + area.width, zero}, {layout::axis_color, 1});
  }
  layout::draw_legend(figure, area, entries, legend);
  return figure;
}

}  // namespace kiln::report
