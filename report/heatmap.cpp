// heatmap() and confusion_matrix_chart(): a grid of coloured cells with the value
// written in each, row labels on the left, column labels underneath (rotated when
// they do not fit a cell), and an optional colour bar.
//
// Sizes follow the number of cells: cells shrink from 72 px (K <= 6) to 24 px
// (K >= 18) so that a 20 x 20 matrix stays under ~600 px, and the value and label
// fonts shrink with them so that a count fits its cell.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/check.h"
#include "report/chart_layout.h"
#include "report/charts.h"

namespace kiln::report {

namespace {
std::string format_value(double v, int decimals) {
  if (!std::isfinite(v)) return "";
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}
}  // namespace

Figure heatmap(const std::vector<std::vector<double>>& values, const std::vector<std::string>& row_labels,
               const std::vector<std::string>& column_labels, const HeatmapOptions& options) {
  const size_t rows = values.size();
  KILN_CHECK(rows > 0, "heatmap: no rows");
  const size_t columns = values[0].size();
  KILN_CHECK(columns > 0, "heatmap: no columns");
  for (size_t r = 0; r < rows; ++r)
    KILN_CHECK(values[r].size() == columns, "heatmap: row ", r, " has ", values[r].size(), " values, expected ",
               columns);
  KILN_CHECK(row_labels.size() == rows, "heatmap: ", row_labels.size(), " row labels for ", rows, " rows");
  KILN_CHECK(column_labels.size() == columns, "heatmap: ", column_labels.size(), " column labels for ", columns,
             " columns");
  KILN_CHECK(options.colormap != nullptr, "heatmap: no colormap");

  // ---- sizes
  const double n = static_cast<double>(std::max(rows, columns));
  const double cell = options.cell_size > 0 ? options.cell_size : std::clamp(std::round(440 / n), 24.0, 72.0);
  const double label_size = std::clamp(std::round(cell * 0.45), 9.0, 12.0);
  std::vector<std::string> texts;
  size_t longest = 1;
  double lo = 0, hi = -INFINITY;  // the colour scale runs from min(0, minimum) to the maximum
  for (const auto& row : values)
    for (double v : row) {
      texts.push_back(format_value(v, options.decimals));
      longest = std::max(longest, texts.back().size());
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  if (!(hi > lo)) hi = lo + 1;  // all zero (or no finite value): an all-light grid
  const double value_size = std::clamp(std::min({13.0, (cell - 4) / (0.6 * longest), cell * 0.5}), 6.0, 13.0);

  std::vector<std::string> row_names, column_names;
  for (const std::string& l : row_labels) row_names.push_back(truncate_to_width(l, label_size, options.max_label_width));
  for (const std::string& l : column_labels)
    column_names.push_back(truncate_to_width(l, label_size, options.max_label_width));
  double row_label_w = 0, column_label_w = 0;
  for (const std::string& l : row_names) row_label_w = std::max(row_label_w, text_width(l, label_size));
  for (const std::string& l : column_names) column_label_w = std::max(column_label_w, text_width(l, label_size));
  const bool rotate_columns = column_label_w > cell - 4;
  const double label_h = text_ascent(label_size) + text_descent(label_size);
  const double axis_label_h = text_ascent(layout::label_size) + text_descent(layout::label_size);
  const double title_h = text_ascent(layout::title_size) + text_descent(layout::title_size);
  const double column_labels_h = rotate_columns ? column_label_w : label_h;

  // Colour-bar ticks: nice steps over [lo, hi]; whole numbers only when the values are (decimals == 0).
  NiceScale bar_scale = nice_scale(lo, hi, 6);
  std::vector<double> bar_ticks;
  for (double t : bar_scale.ticks)
    if (t >= lo - 1e-9 && t <= hi + 1e-9 && (options.decimals > 0 || t == std::round(t))) bar_ticks.push_back(t);
  double bar_label_w = 0;
  for (double t : bar_ticks) bar_label_w = std::max(bar_label_w, text_width(format_tick(t, bar_scale.step), layout::tick_size));

  // ---- layout
  const double grid_w = cell * columns, grid_h = cell * rows;
  const double x0 = std::round(10 + (options.y_label.empty() ? 0 : axis_label_h + 8) + row_label_w + 6);
  const double y0 = std::round(10 + (options.title.empty() ? 4 : title_h + 10));
  const double bar_x = x0 + grid_w + 16, bar_w = 14;
  const double right = options.color_bar ? bar_x + bar_w + 4 + 3 + bar_label_w + 10 : x0 + grid_w + 12;
  const double title_w = options.title.empty() ? 0 : text_width(options.title, layout::title_size, true) + 20;
  const int width = static_cast<int>(std::ceil(std::max(right, title_w)));
  const double below = 6 + column_labels_h + (options.x_label.empty() ? 0 : 8 + axis_label_h) + 10;
  const int height = static_cast<int>(std::ceil(y0 + grid_h + below));
  Figure figure(width, height);

  // ---- cells with their values
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < columns; ++c) {
      const double v = values[r][c];
      const double x = x0 + c * cell, y = y0 + r * cell;
      const Rgb fill = std::isfinite(v) ? options.colormap((v - lo) / (hi - lo)) : Rgb{230, 230, 230};
      figure.rect(x, y, cell, cell, fill);
      const std::string& text = texts[r * columns + c];
      if (options.show_values && !text.empty())
        figure.text({x + cell / 2, y + cell / 2 + text_ascent(value_size) / 2}, text,
                    {value_size, TextAnchor::middle, 0, false, contrasting_text_color(fill)});
    }
  figure.rect(x0 - 0.5, y0 - 0.5, grid_w + 1, grid_h + 1, std::nullopt, layout::axis_color, 1);

  // ---- labels
  const TextStyle row_style{label_size, TextAnchor::end, 0, false, layout::text_color};
  for (size_t r = 0; r < rows; ++r)
    figure.text({x0 - 6, y0 + (r + 0.5) * cell + text_ascent(label_size) / 2}, row_names[r], row_style);
  for (size_t c = 0; c < columns; ++c) {
    const double centre = x0 + (c + 0.5) * cell;
    if (rotate_columns) {
      figure.text({centre + text_ascent(label_size) / 2, y0 + grid_h + 6}, column_names[c],
                  {label_size, TextAnchor::end, -90, false, layout::text_color});
    } else {
      figure.text({centre, y0 + grid_h + 6 + text_ascent(label_size)}, column_names[c],
                  {label_size, TextAnchor::middle, 0, false, layout::text_color});
    }
  }
  if (!options.x_label.empty())
    figure.text({x0 + grid_w / 2, y0 + grid_h + 6 + column_labels_h + 8 + text_ascent(layout::label_size)},
                options.x_label, {layout::label_size, TextAnchor::middle, 0, false, layout::text_color});
  if (!options.y_label.empty())
    figure.text({10 + text_ascent(layout::label_size), y0 + grid_h / 2}, options.y_label,
                {layout::label_size, TextAnchor::middle, -90, false, layout::text_color});
  if (!options.title.empty()) {
    const double half = text_width(options.title, layout::title_size, true) / 2;
    figure.text({std::clamp(x0 + grid_w / 2, 10 + half, width - 10 - half), 10 + text_ascent(layout::title_size)},
                options.title, {layout::title_size, TextAnchor::middle, 0, true, layout::text_color});
  }

  // ---- colour bar: one 1-px band per pixel row, top = hi
  if (options.color_bar) {
    const int bands = static_cast<int>(grid_h);
    for (int b = 0; b < bands; ++b)
      figure.rect(bar_x, y0 + b, bar_w, 1, options.colormap(1 - (b + 0.5) / bands));
    figure.rect(bar_x - 0.5, y0 - 0.5, bar_w + 1, grid_h + 1, std::nullopt, layout::axis_color, 1);
    for (double t : bar_ticks) {
      const double y = layout::crisp(std::min(y0 + grid_h * (1 - (t - lo) / (hi - lo)), y0 + grid_h - 0.5));
      figure.line({bar_x + bar_w, y}, {bar_x + bar_w + 4, y}, {layout::axis_color, 1});
      figure.text({bar_x + bar_w + 7, y + text_ascent(layout::tick_size) / 2}, format_tick(t, bar_scale.step),
                  {layout::tick_size, TextAnchor::start, 0, false, layout::text_color});
    }
  }
  return figure;
}

Figure confusion_matrix_chart(const std::vector<std::vector<int64_t>>& counts,
                              const std::vector<std::string>& class_names, HeatmapOptions options) {
  const size_t k = class_names.size();
  KILN_CHECK(counts.size() == k, "confusion_matrix_chart: ", counts.size(), " rows for ", k, " classes");
  std::vector<std::vector<double>> values(k);
  for (size_t r = 0; r < k; ++r) {
    KILN_CHECK(counts[r].size() == k, "confusion_matrix_chart: row ", r, " has ", counts[r].size(),
               " counts for ", k, " classes");
    values[r].assign(counts[r].begin(), counts[r].end());
  }
  if (options.title.empty()) options.title = "Confusion matrix";
  options.decimals = 0;
  return heatmap(values, class_names, class_names, options);
}

}  // namespace kiln::report
