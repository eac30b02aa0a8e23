// The sweep report's charts (report/sweep_report.h):
//
//   metric_order_chart      every trial's metric against the order it was created in,
//                           the running best as a step line, stopped (early-terminated)
//                           trials hollow, failed ones as a red cross on the bottom edge;
//   parallel_coordinates    one vertical axis per swept parameter and one for the
//                           metric; each trial is a polyline through its values,
//                           coloured by its metric (viridis: dark = worst, yellow = best);
//                           categorical axes list their values, log axes their decades.
//
// The parallel-coordinates geometry is computed once (ParallelLayout) and drawn
// twice: as a static Figure (SVG/PNG) and as an interactive inline SVG whose brushing
// script lives in the page (parallel_coordinates_interactive_html).
#pragma once
#include <string>
#include <vector>

#include "report/charts.h"
#include "report/figure.h"
#include "report/sweep_analysis.h"
#include "report/sweep_journal.h"

namespace kiln::report {

// Colours of the trial states in the charts and the table.
inline constexpr Rgb finished_color{31, 119, 180};  // tab10 blue
inline constexpr Rgb stopped_color{255, 127, 14};   // tab10 orange
inline constexpr Rgb failed_color{214, 39, 40};     // tab10 red
inline constexpr Rgb best_line_color{44, 160, 44};  // tab10 green

Figure metric_order_chart(const SweepJournal& journal, int width = 640, int height = 360);

struct ParallelAxis {
  std::string title;
  double x = 0;                                // pixel column of the axis
  std::vector<std::pair<double, std::string>> ticks;  // (pixel y, label)
};

struct ParallelLayout {
  int width = 0, height = 0;
  double top = 0, bottom = 0;                 // pixel y of the axes' ends (top = high values)
  std::vector<ParallelAxis> axes;             // the parameters, then the metric
  std::vector<std::vector<double>> lines;     // per analysis row: pixel y on each axis
  std::vector<double> color_value;            // per row in [0, 1]: the metric min-max scaled, 1 = best
                                              // (the lowest metric when the goal is minimize)
  std::vector<std::string> trial_names;       // per row
  std::string metric_name;
  double metric_lo = 0, metric_hi = 0;
  bool maximize = true;
};

ParallelLayout parallel_layout(const SweepJournal& journal, const SweepAnalysis& analysis, int width = 900,
                               int height = 420);
// Worse trials first, so the best are drawn on top; a colour bar on the right.
Figure parallel_coordinates(const ParallelLayout& layout);
// The same picture as an inline <svg> for the page: each trial a <polyline> carrying
// its pixel y per axis, each axis a brushable strip. Dragging along an axis keeps the
// trials passing through the dragged range (others fade); a click clears that axis.
// The script is parallel_coordinates_script(), added once to the page.
std::string parallel_coordinates_interactive_html(const ParallelLayout& layout);
std::string parallel_coordinates_script();

}  // namespace kiln::report
