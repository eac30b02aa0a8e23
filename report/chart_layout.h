// Internal to report/: the pieces every x-y chart shares (kept out of charts.h so
// that the public API stays small): the text sizes, a resolved axis, the frame
// (margins, grid, ticks, tick labels, axis labels, title), the legend and its
// automatic placement, and clipping polylines to the plot area.
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "report/charts.h"
#include "report/figure.h"

namespace kiln::report::layout {

// Font sizes (pixels). 10 and 20 draw the bitmap font at exactly 1 and 2 pixels per
// font pixel; the in-between sizes are crisp but with uneven stroke widths.
inline constexpr double title_size = 15;
inline constexpr double label_size = 13;
inline constexpr double tick_size = 11;
inline constexpr double legend_size = 11;
inline constexpr double tick_length = 5;
inline const Rgb axis_color{68, 68, 68}, grid_color{226, 226, 226}, text_color{34, 34, 34};

// One resolved axis: its data range, ticks and their labels.
struct AxisTicks {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;        // data values inside [lo, hi]
  std::vector<std::string> labels;  // one per tick
};

// A linear axis covering [data_lo, data_hi] with nice_scale(), or with the fixed
// ends where given (ticks outside them are dropped); a log axis when `log`.
AxisTicks resolve_axis(double data_lo, double data_hi, std::optional<double> fixed_lo, std::optional<double> fixed_hi,
                       bool log);

struct LegendEntry {
  std::string label;
  Rgb color;
  bool dashed = false;
  bool box = false;  // a filled square (bars) instead of a line sample
};

// Width and height of the legend box for these entries.
double legend_width(const std::vector<LegendEntry>& entries);
double legend_height(const std::vector<LegendEntry>& entries);

// The plot area of an x-y chart of `options`' size: margins for the title, the y tick
// labels (`y_tick_label_width` wide), the axis labels, `x_tick_labels_height` under the
// x axis and, with outside_right, the legend (`legend_w` wide).
PlotArea plot_area(const ChartOptions& options, double y_tick_label_width, double x_tick_labels_height,
                   double legend_w);

// Grid lines, the frame, ticks with labels on both axes (x ticks from `x`, unless
// `x_categorical`, in which case the caller draws its own), axis labels and title.
void draw_frame(Figure& figure, const PlotArea& area, const AxisTicks& x, const AxisTicks& y,
                const ChartOptions& options, bool x_categorical = false);

// The corner chosen for the legend: `requested`, or for automatic the inside corner
// whose box covers the fewest of `occupied` (data drawn, in pixels), or outside_right
// when none is free.
LegendPosition place_legend(LegendPosition requested, const PlotArea& area, const std::vector<LegendEntry>& entries,
                            const std::vector<std::vector<Point>>& occupied);
void draw_legend(Figure& figure, const PlotArea& area, const std::vector<LegendEntry>& entries,
                 LegendPosition position);

// The parts of a polyline inside the box [left, left + width] x [top, top + height]
// (Liang-Barsky clipping per segment; a polyline that leaves and re-enters splits).
std::vector<std::vector<Point>> clip_polyline(const std::vector<Point>& points, const PlotArea& area);

// Pixel coordinate on a pixel centre, for crisp 1-px lines: floor(v) + 0.5.
inline double crisp(double v) { return std::floor(v) + 0.5; }

}  // namespace kiln::report::layout
