// Charts for run reports: each function lays out one chart (axes with "nice"
// ticks, labels with units, title, legend) as a report::Figure, which renders to
// SVG or PNG (report/figure.h). The pieces they share are public and tested:
// nice_scale() (1-2-5 tick steps), log_ticks(), format_tick(), the data-to-pixel
// transform PlotArea, and the tab10 palette.
//
// Typical use (a loss curve written as PNG and embedded as SVG):
//   Series train{"train", epochs, train_loss}, val{"val", epochs, val_loss};
//   val.dashed = true;
//   ChartOptions o; o.title = "Loss"; o.x_label = "epoch"; o.y_label = "cross-entropy";
//   Figure f = line_chart({train, val}, o);
//   write_figure_png(dir + "/loss.png", f);  html += f.to_svg();
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "report/figure.h"
#include "report/image.h"

namespace kiln::report {

// ---- ticks and axes

// An axis range widened to multiples of a 1-2-5 step (1, 2, 5, 10, 20, ...) with at
// most `max_ticks` ticks from lo to hi inclusive (Heckbert's "nice numbers"):
// (0, 1) -> 0, 0.2, ..., 1; (0.013, 0.91) -> 0, 0.2, ..., 1; (-3, -1) -> -3, -2.5, ..., -1.
// A single value v (lo == hi) gets the range v -+ 10% of |v| (-1..1 for 0); non-finite input throws.
struct NiceScale {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> ticks;  // lo, lo + step, ..., hi (multiples of step, exact zero where crossed)
};
NiceScale nice_scale(double lo, double hi, int max_ticks = 6);

// Ticks for a log10 axis over [lo, hi] (both > 0): the powers of ten of the
// decade-widened range (one value: a decade either side), thinned to at most
// `max_ticks` (every 2nd, 3rd, ... decade); over at most two decades also 2x and 5x.
std::vector<double> log_ticks(double lo, double hi, int max_ticks = 8);

// A tick label with just enough decimals for `step` (0.2 -> "0.4", 0.05 -> "0.25",
// 500 -> "1500"), without "-0"; very large or small magnitudes (>= 1e6, < 1e-4)
// and log axes (log_axis = true) use the shorter of "1e-3"-style and plain (the charts
// then write a whole log axis in "1e-3" style if any of its ticks needs it).
std::string format_tick(double value, double step, bool log_axis = false);
// Always "m e k" with the mantissa's trailing zeros dropped: 0.001 -> "1e-3", 2.5e-4 -> "2.5e-4", 100 -> "1e2".
std::string format_tick_scientific(double value);

// The data-to-pixel transform of a plot area: data (x, y) in [x_lo, x_hi] x [y_lo, y_hi]
// maps linearly (or log10-linearly) onto the pixel box (left, top, width, height),
// with y growing upwards in data and downwards in pixels.
struct PlotArea {
  double left = 0, top = 0, width = 1, height = 1;  // pixels
  double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;    // data
  bool log_x = false, log_y = false;

  double to_pixel_x(double x) const;
  double to_pixel_y(double y) const;
  Point to_pixel(double x, double y) const { return {to_pixel_x(x), to_pixel_y(y)}; }
};

// ---- colours

// matplotlib's tab10, the default colour cycle: blue, orange, green, red, purple,
// brown, pink, grey, olive, cyan. series_color(i) cycles through it.
const std::vector<Rgb>& tab10();
Rgb series_color(size_t index);
// Black or white, whichever reads better on `background` (by relative luminance).
Rgb contrasting_text_color(Rgb background);
// (blues(t), matplotlib's light-to-dark "Blues" for confusion matrices, is in report/image.h
// with the other colour maps.)

// ---- options shared by the x-y charts

enum class LegendPosition { automatic, top_right, top_left, bottom_right, bottom_left, outside_right, none };

struct ChartOptions {
  int width = 640, height = 400;  // pixels, the whole figure
  std::string title;
  std::string x_label, y_label;  // with units, e.g. "epoch", "learning rate", "time (s)"
  bool log_y = false;            // log10 y axis (learning rates); values <= 0 are skipped
  // Fixed axis ranges; unset ones come from the data through nice_scale().
  std::optional<double> x_min, x_max, y_min, y_max;
  // automatic: the inside corner that covers the fewest data points (outside_right
  // when every corner is crowded); none: no legend.
  LegendPosition legend = LegendPosition::automatic;
  bool grid = true;  // light grid lines at the ticks
};

// ---- line chart

struct Series {
  std::string label;          // legend text ("" leaves the series out of the legend)
  std::vector<double> x, y;   // same length; non-finite points break the line
  bool dashed = false;
  std::optional<Rgb> color;   // default series_color(index)
  bool markers = false;       // a dot at every point (always drawn for a single-point series)
  double line_width = 2.0;
};

// Several series on shared axes: loss per epoch (train solid, val dashed),
// accuracy, the learning rate (options.log_y), or the same curve of several runs.
Figure line_chart(const std::vector<Series>& series, const ChartOptions& options);

// ---- heatmap and confusion matrix

struct HeatmapOptions {
  int cell_size = 0;  // pixels per cell; 0 picks 440 / K clamped to [24, 72] (72 up to K = 6, 44 at 10, 24 from 18)
  std::string title;
  std::string x_label = "predicted", y_label = "true";
  bool show_values = true;  // each cell's value written in it, in a contrasting colour
  int decimals = 0;         // digits after the point in the written values (0 for counts)
  bool color_bar = true;    // a colour scale with ticks on the right
  Rgb (*colormap)(double) = blues;
  double max_label_width = 110;  // class names longer than this (pixels) are truncated with ".."
};

// values[row][column], rows labelled down the left, columns along the bottom
// (labels rotated -90 when they do not fit a cell's width). Colours scale from 0
// (or the minimum, if negative) to the maximum value.
Figure heatmap(const std::vector<std::vector<double>>& values, const std::vector<std::string>& row_labels,
               const std::vector<std::string>& column_labels, const HeatmapOptions& options);

// A K x K confusion matrix, counts[true][predicted] (as metrics::confusion_matrix
// returns it): rows = true class, columns = predicted class, counts in the cells.
// The title defaults to "Confusion matrix"; options.decimals is forced to 0.
Figure confusion_matrix_chart(const std::vector<std::vector<int64_t>>& counts,
                              const std::vector<std::string>& class_names, HeatmapOptions options = {});

// ---- ROC curves

struct RocSeries {
  std::string label;            // the class name
  std::vector<double> fpr, tpr;  // same length, as metrics::RocCurve holds them
  double auc = 0;               // shown in the legend as "cat (AUC 0.973)"; NaN shows "n/a"
};

// One-vs-rest ROC curves on [0, 1] x [0, 1] with the dashed chance diagonal.
// Defaults: title "ROC (one-vs-rest)", x "false positive rate", y "true positive rate".
Figure roc_chart(const std::vector<RocSeries>& curves, ChartOptions options = {});
// The legend label of one curve: "cat (AUC 0.973)".
std::string roc_legend_label(const RocSeries& curve);

// ---- bar chart

struct BarSeries {
  std::string label;           // legend text (one series: no legend)
  std::vector<double> values;  // one per category
  std::optional<Rgb> color;    // default series_color(index)
};

struct BarChartOptions : ChartOptions {
  bool show_values = false;  // the value written above each bar
  int value_decimals = 2;
};

// Grouped vertical bars: one group per category (per-class precision/recall/F1, or
// a metric per run), one bar per series in each group. The y axis starts at 0
// (or below, for negative values). Long category names are rotated or truncated.
Figure bar_chart(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                 const BarChartOptions& options);

// ---- image grid

struct Caption {
  std::string text;
  Rgb color{0, 0, 0};  // e.g. green for a correct prediction, red for a wrong one
};

struct CaptionedImage {
  RgbImage image;                 // any size; scaled (aspect kept) into the thumbnail box
  std::vector<Caption> captions;  // lines under the image ("true: cat", "pred: dog 0.87")
};

struct ImageGridOptions {
  int columns = 10;
  int thumbnail_size = 96;   // the longer side of each thumbnail, pixels
  double caption_size = 10;  // font size of the captions; longer ones are cut to the cell, keeping a trailing score
  int gap = 10;              // pixels between cells and around the grid
  std::string title;
  bool pixelated = false;    // nearest-neighbour scaling (tiny images like 28x28 digits stay sharp)
};

// Images in rows of `columns` cells, each with its caption lines underneath.
// Figure size: columns' * (thumbnail + gap) + gap wide, where columns' = min(columns, count).
Figure image_grid(const std::vector<CaptionedImage>& images, const ImageGridOptions& options = {});

// Colours for correct / wrong prediction captions (dark enough to read on white).
inline constexpr Rgb caption_green{0, 128, 0};
inline constexpr Rgb caption_red{200, 0, 0};

}  // namespace kiln::report
