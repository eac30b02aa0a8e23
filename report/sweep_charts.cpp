// The sweep report's charts (report/sweep_charts.h).
#include "report/sweep_charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "report/chart_layout.h"
#include "report/html.h"

namespace kiln::report {
namespace {

using layout::AxisTicks;
using layout::LegendEntry;

std::string hex(Rgb c) {
  char text[8];
  std::snprintf(text, sizeof(text), "#%02x%02x%02x", c.r, c.g, c.b);
  return text;
}

double widest(const std::vector<std::string>& labels, double size) {
  double w = 0;
  for (const std::string& l : labels) w = std::max(w, text_width(l, size));
  return w;
}

// A value's pixel y on an axis running from `bottom` (ticks.lo) up to `top` (ticks.hi).
double axis_pixel(const AxisTicks& ticks, double value, double top, double bottom) {
  const double lo = ticks.log ? std::log10(ticks.lo) : ticks.lo, hi = ticks.log ? std::log10(ticks.hi) : ticks.hi;
  const double v = ticks.log ? std::log10(value) : value;
  return bottom - (v - lo) / (hi - lo) * (bottom - top);
}

}  // namespace

Figure metric_order_chart(const SweepJournal& journal, int width, int height) {
  std::vector<const SweepTrial*> trials;
  for (const SweepTrial& t : journal.trials) trials.push_back(&t);
  std::stable_sort(trials.begin(), trials.end(), [](const SweepTrial* a, const SweepTrial* b) { return a->order < b->order; });
  double lo = INFINITY, hi = -INFINITY;
  for (const SweepTrial* t : trials)
    if (t->metric && std::isfinite(*t->metric)) lo = std::min(lo, *t->metric), hi = std::max(hi, *t->metric);
  if (!std::isfinite(lo)) lo = 0, hi = 1;  // nothing validated yet: an empty frame
  ChartOptions options;
  options.width = width;
  options.height = height;
  options.title = journal.metric_name + " by trial (creation order)";
  options.x_label = "trial, in the order created";
  options.y_label = journal.metric_name;
  // Trial numbers are whole: ticks at multiples of a whole 1-2-5 step, the axis from 0 to n + 1.
  const double n = static_cast<double>(std::max<size_t>(1, trials.size()));
  AxisTicks x_axis;
  x_axis.lo = 0;
  x_axis.hi = n + 1;
  const double step = std::max(1.0, nice_scale(0, n + 1, 8).step);
  for (double t = step; t <= n; t += step) {
    x_axis.ticks.push_back(t);
    x_axis.labels.push_back(std::to_string(static_cast<int64_t>(t)));
  }
  const AxisTicks y_axis = layout::resolve_axis(lo, hi, std::nullopt, std::nullopt, false);
  std::vector<LegendEntry> entries{{"finished", finished_color, false, true},
                                   {"stopped early", stopped_color, false, true},
                                   {"failed", failed_color, false, true},
                                   {journal.maximize() ? "best so far (max)" : "best so far (min)", best_line_color}};
  PlotArea area = layout::plot_area(options, widest(y_axis.labels, layout::tick_size),
                                    text_ascent(layout::tick_size) + text_descent(layout::tick_size),
                                    layout::legend_width(entries));
  area.x_lo = x_axis.lo, area.x_hi = x_axis.hi, area.y_lo = y_axis.lo, area.y_hi = y_axis.hi;
  Figure figure(width, height);
  layout::draw_frame(figure, area, x_axis, y_axis, options);

  // The running best: a step line that moves only when a trial beats every earlier one.
  std::vector<Point> best_line;
  std::optional<double> best;
  for (size_t i = 0; i < trials.size(); ++i) {
    const SweepTrial& t = *trials[i];
    const double x = static_cast<double>(i + 1);
    if (t.metric && std::isfinite(*t.metric) &&
        (!best || (journal.maximize() ? *t.metric > *best : *t.metric < *best))) {
      if (best) best_line.push_back(area.to_pixel(x, *best));
      best = *t.metric;
    }
    if (best) best_line.push_back(area.to_pixel(x, *best));
  }
  if (best_line.size() > 1) figure.polyline(best_line, {best_line_color, 2.0, false});
  const double bottom = area.top + area.height;
  for (size_t i = 0; i < trials.size(); ++i) {
    const SweepTrial& t = *trials[i];
    const double x = area.to_pixel_x(static_cast<double>(i + 1));
    const bool scored = t.metric && std::isfinite(*t.metric);
    if (t.status == "failed") {  // a cross, at its metric when it had one, else on the bottom edge
      const double y = scored ? area.to_pixel_y(*t.metric) : bottom - 6;
      figure.line({x - 5, y - 5}, {x + 5, y + 5}, {failed_color, 2.0});
      figure.line({x - 5, y + 5}, {x + 5, y - 5}, {failed_color, 2.0});
    } else if (scored && t.status == "stopped") {
      figure.circle(area.to_pixel(static_cast<double>(i + 1), *t.metric), 5, Rgb{255, 255, 255},
                    stopped_color, 2.0);
    } else if (scored) {
      figure.circle(area.to_pixel(static_cast<double>(i + 1), *t.metric), 5, finished_color, Rgb{255, 255, 255}, 1.0);
    }
  }
  layout::draw_legend(figure, area, entries, LegendPosition::outside_right);
  return figure;
}

ParallelLayout parallel_layout(const SweepJournal& journal, const SweepAnalysis& analysis, int width, int height) {
  ParallelLayout out;
  out.width = width;
  out.height = height;
  out.metric_name = journal.metric_name;
  out.maximize = journal.maximize();
  out.top = 46;
  out.bottom = height - 24;
  const double left = 70, right = width - 160;  // room for tick labels, the metric's title and the colour bar
  const size_t count = analysis.axes.size() + 1;
  const double spacing = count > 1 ? (right - left) / static_cast<double>(count - 1) : 0;
  out.lines.assign(analysis.trials.size(), {});

  // A numeric axis; one whose parameter was a list of numbers (`listed`) runs from the
  // smallest to the largest and has a tick at each listed value.
  auto add_numeric = [&](const std::string& title, bool log, const std::vector<double>& values, double x,
                         const std::vector<double>& listed) {
    double lo = INFINITY, hi = -INFINITY;
    for (double v : values) lo = std::min(lo, v), hi = std::max(hi, v);
    for (double v : listed) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    AxisTicks ticks = layout::resolve_axis(lo, hi, std::nullopt, std::nullopt, log);
    if (listed.size() >= 2 && lo < hi) {
      ticks.lo = lo;
      ticks.hi = hi;
      ticks.ticks = listed;
      ticks.labels.clear();
      for (double v : listed) ticks.labels.push_back(parameter_label(v));
    }
    ParallelAxis axis{title + (log ? " (log)" : ""), x, {}};
    for (size_t k = 0; k < ticks.ticks.size(); ++k)
      axis.ticks.push_back({axis_pixel(ticks, ticks.ticks[k], out.top, out.bottom), ticks.labels[k]});
    for (size_t r = 0; r < values.size(); ++r) out.lines[r].push_back(axis_pixel(ticks, values[r], out.top, out.bottom));
    out.axes.push_back(axis);
  };
  for (size_t k = 0; k < analysis.axes.size(); ++k) {
    const SweepAxis& a = analysis.axes[k];
    const double x = left + spacing * static_cast<double>(k);
    std::vector<double> values;
    for (const std::vector<double>& row : analysis.axis_values) values.push_back(row[k]);
    if (!a.categorical) {
      add_numeric(a.name, a.log, values, x, a.listed_values);
      continue;
    }
    // Categories evenly spaced, the first at the bottom.
    const double m = static_cast<double>(a.categories.size());
    auto pixel = [&](double c) { return out.bottom - (c + 0.5) / m * (out.bottom - out.top); };
    ParallelAxis axis{a.name, x, {}};
    for (size_t c = 0; c < a.categories.size(); ++c) axis.ticks.push_back({pixel(static_cast<double>(c)), a.categories[c]});
    for (size_t r = 0; r < values.size(); ++r) out.lines[r].push_back(pixel(values[r]));
    out.axes.push_back(axis);
  }
  add_numeric(journal.metric_name, false, analysis.metric, left + spacing * static_cast<double>(count - 1), {});
  double lo = INFINITY, hi = -INFINITY;
  for (double v : analysis.metric) lo = std::min(lo, v), hi = std::max(hi, v);
  out.metric_lo = std::isfinite(lo) ? lo : 0;
  out.metric_hi = std::isfinite(hi) ? hi : 0;
  for (size_t r = 0; r < analysis.trials.size(); ++r) {
    // 1 is the best end: the highest metric when maximising, the lowest when minimising.
    const double scaled = hi > lo ? (analysis.metric[r] - lo) / (hi - lo) : 1.0;
    out.color_value.push_back(journal.maximize() || !(hi > lo) ? scaled : 1.0 - scaled);
    out.trial_names.push_back(journal.trials[analysis.trials[r]].name);
  }
  return out;
}

namespace {

// Rows in drawing order: the lowest colour value (the worst metric) first, so the best trials lie on top.
std::vector<size_t> drawing_order(const ParallelLayout& l) {
  std::vector<size_t> order(l.lines.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return l.color_value[a] < l.color_value[b]; });
  return order;
}

}  // namespace

Figure parallel_coordinates(const ParallelLayout& l) {
  Figure figure(l.width, l.height);
  const double spacing = l.axes.size() > 1 ? l.axes[1].x - l.axes[0].x : 140;
  for (size_t r : drawing_order(l)) {
    std::vector<Point> points;
    for (size_t k = 0; k < l.axes.size(); ++k) points.push_back({l.axes[k].x, l.lines[r][k]});
    figure.polyline(points, {viridis(l.color_value[r]), 1.6, false});
  }
  const TextStyle tick{layout::tick_size, TextAnchor::end, 0, false, layout::text_color};
  for (const ParallelAxis& axis : l.axes) {
    figure.line({layout::crisp(axis.x), l.top}, {layout::crisp(axis.x), l.bottom}, {layout::axis_color, 1.0});
    for (const auto& [y, label] : axis.ticks) {
      figure.line({axis.x - 4, y}, {axis.x, y}, {layout::axis_color, 1.0});
      // A white box under the label keeps it readable over the lines.
      const std::string text = truncate_to_width(label, layout::tick_size, 64);
      const double w = text_width(text, layout::tick_size);
      figure.rect(axis.x - 7 - w, y - text_ascent(layout::tick_size) + 2, w + 2, layout::tick_size, Rgb{255, 255, 255});
      figure.text({axis.x - 6, y + text_ascent(layout::tick_size) / 2}, text, tick);
    }
    figure.text({axis.x, l.top - 14}, truncate_to_width(axis.title, layout::label_size, spacing - 8, true),
                {layout::label_size, TextAnchor::middle, 0, true, layout::text_color});
  }
  // The colour bar: viridis from the lowest metric (bottom) to the highest (top).
  const double bar_x = l.width - 60, steps = 48, span = l.bottom - l.top;
  for (int s = 0; s < steps; ++s)
    figure.rect(bar_x, l.bottom - (s + 1) * span / steps, 14, span / steps + 0.5, viridis((s + 0.5) / steps));
  figure.rect(bar_x, l.top, 14, span, std::nullopt, layout::axis_color, 1.0);
  const TextStyle bar_label{layout::tick_size, TextAnchor::start, 0, false, layout::text_color};
  // The colour bar's top is the best end (yellow).
  figure.text({bar_x + 18, l.top + 8}, format_fixed(l.maximize ? l.metric_hi : l.metric_lo, 4), bar_label);
  figure.text({bar_x + 18, l.bottom}, format_fixed(l.maximize ? l.metric_lo : l.metric_hi, 4), bar_label);
  return figure;
}

std::string parallel_coordinates_interactive_html(const ParallelLayout& l) {
  const std::string w = std::to_string(l.width), h = std::to_string(l.height);
  std::string svg = "<figure class=\"figure\"><svg class=\"pc-interactive\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
                    "\" style=\"max-width:100%;height:auto;user-select:none\" font-family=\"Helvetica, Arial, sans-serif\">\n"
                    "<rect width=\"" + w + "\" height=\"" + h + "\" fill=\"#ffffff\"/>\n<g fill=\"none\" stroke-width=\"1.6\">\n";
  char number[32];
  auto num = [&](double v) {
    std::snprintf(number, sizeof(number), "%.1f", v);
    return std::string(number);
  };
  for (size_t r : drawing_order(l)) {
    std::string points, ys;
    for (size_t k = 0; k < l.axes.size(); ++k) {
      points += (k ? " " : "") + num(l.axes[k].x) + "," + num(l.lines[r][k]);
      ys += (k ? "," : "") + num(l.lines[r][k]);
    }
    svg += "<polyline class=\"pc-line\" points=\"" + points + "\" stroke=\"" + hex(viridis(l.color_value[r])) +
           "\" data-y=\"" + ys + "\"><title>" + xml_escape(l.trial_names[r]) + "</title></polyline>\n";
  }
  svg += "</g>\n";
  for (size_t k = 0; k < l.axes.size(); ++k) {
    const ParallelAxis& axis = l.axes[k];
    const std::string x = num(axis.x);
    svg += "<line x1=\"" + x + "\" y1=\"" + num(l.top) + "\" x2=\"" + x + "\" y2=\"" + num(l.bottom) +
           "\" stroke=\"#444\"/>\n";
    for (const auto& [y, label] : axis.ticks)
      svg += "<text x=\"" + num(axis.x - 6) + "\" y=\"" + num(y + 4) + "\" font-size=\"11\" text-anchor=\"end\" "
             "fill=\"#222\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">" + xml_escape(label) + "</text>\n";
    svg += "<text x=\"" + x + "\" y=\"" + num(l.top - 14) + "\" font-size=\"13\" font-weight=\"bold\" text-anchor=\"middle\" "
           "fill=\"#222\">" + xml_escape(axis.title) + "</text>\n";
    svg += "<rect class=\"pc-brush\" data-axis=\"" + std::to_string(k) + "\" x=\"" + num(axis.x - 9) +
           "\" width=\"18\" y=\"0\" height=\"0\" fill=\"#000\" fill-opacity=\"0.18\" stroke=\"#333\" visibility=\"hidden\"/>\n";
    svg += "<rect class=\"pc-brush-area\" data-axis=\"" + std::to_string(k) + "\" x=\"" + num(axis.x - 12) + "\" y=\"" +
           num(l.top) + "\" width=\"24\" height=\"" + num(l.bottom - l.top) +
           "\" fill=\"#fff\" fill-opacity=\"0\" style=\"cursor:crosshair\"/>\n";
  }
  svg += "</svg><figcaption>Drag along any axis to keep the trials passing through that range; click an axis to "
         "clear it. <span class=\"pc-count\"></span></figcaption></figure>\n";
  return svg;
}

std::string parallel_coordinates_script() {
  // Brushing: ranges[axis] = [y_lo, y_hi] in the SVG's pixels; a trial stays when its
  // data-y on every brushed axis lies inside that axis's range.
  return R"(<style>.pc-line.pc-faded{stroke:#d9d9d9;stroke-opacity:.35}</style>
<script>
(function () {
  document.querySelectorAll('svg.pc-interactive').forEach(function (svg) {
    var ranges = {}, lines = Array.prototype.slice.call(svg.querySelectorAll('.pc-line'));
    var count = svg.parentNode.querySelector('.pc-count');
    function svgY(event) {
      var box = svg.getBoundingClientRect();
      return (event.clientY - box.top) * svg.viewBox.baseVal.height / box.height;
    }
    function update() {
      var shown = 0;
      lines.forEach(function (line) {
        var ys = line.getAttribute('data-y').split(',').map(Number), keep = true;
        for (var axis in ranges) if (ys[axis] < ranges[axis][0] || ys[axis] > ranges[axis][1]) keep = false;
        line.classList.toggle('pc-faded', !keep);
        if (keep) shown++;
      });
      if (count) count.textContent = shown + ' of ' + lines.length + ' trials selected.';
    }
    svg.querySelectorAll('.pc-brush-area').forEach(function (area) {
      var axis = area.getAttribute('data-axis'), start = null;
      var brush = svg.querySelector('.pc-brush[data-axis="' + axis + '"]');
      area.addEventListener('mousedown', function (event) { start = svgY(event); event.preventDefault(); });
      svg.addEventListener('mousemove', function (event) {
        if (start === null) return;
        var y = svgY(event), lo = Math.min(start, y), hi = Math.max(start, y);
        brush.setAttribute('y', lo); brush.setAttribute('height', hi - lo); brush.setAttribute('visibility', 'visible');
        ranges[axis] = [lo, hi]; update();
      });
      window.addEventListener('mouseup', function (event) {
        if (start === null) return;
        if (Math.abs(svgY(event) - start) < 3) { delete ranges[axis]; brush.setAttribute('visibility', 'hidden'); update(); }
        start = null;
      });
    });
    update();
  });
})();
</script>
)";
}

}  // namespace kiln::report
