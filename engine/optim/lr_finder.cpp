// run_lr_finder and its SVG plot.
#include "engine/optim/lr_finder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/check.h"

namespace kiln::optim {

LrFinderResult run_lr_finder(const std::function<double(double lr)>& train_step, const LrFinderOptions& options) {
  KILN_CHECK(options.start_lr > 0 && options.end_lr > options.start_lr, "lr finder: needs 0 < start_lr < end_lr, got ",
             options.start_lr, " and ", options.end_lr);
  KILN_CHECK(options.steps >= 2, "lr finder: needs at least 2 steps, got ", options.steps);
  KILN_CHECK(options.smoothing >= 0 && options.smoothing < 1, "lr finder: smoothing must lie in [0, 1), got ",
             options.smoothing);
  LrFinderResult result;
  const double ratio = options.end_lr / options.start_lr;
  double average = 0, best = INFINITY;
  for (int64_t i = 0; i < options.steps; ++i) {
    const double lr = options.start_lr * std::pow(ratio, static_cast<double>(i) / static_cast<double>(options.steps - 1));
    const double loss = train_step(lr);
    // An exponential moving average smooths out batch-to-batch noise; dividing by
    // 1 - beta^(i+1) removes its bias towards the initial 0 (as Adam does for m).
    average = options.smoothing * average + (1 - options.smoothing) * loss;
    const double smoothed = average / (1 - std::pow(options.smoothing, static_cast<double>(i + 1)));
    result.lrs.push_back(lr);
    result.raw_losses.push_back(loss);
    result.losses.push_back(smoothed);
    if (!std::isfinite(smoothed) || smoothed > options.divergence_factor * best) {
      result.diverged = true;  // past this point the lr only blows the model up
      break;
    }
    best = std::min(best, smoothed);
  }
  // The steepest descent: the most negative slope d(loss)/d(step). The lr grows
  // by the same ratio each step, so this is also the slope per decade of lr.
  // Central differences inside, one-sided at the ends (numpy.gradient); the
  // diverged last point is left out, its slope says nothing about training.
  const int64_t n = static_cast<int64_t>(result.losses.size()) - (result.diverged ? 1 : 0);
  if (n >= 2) {
    double steepest = INFINITY;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t lo = std::max<int64_t>(i - 1, 0), hi = std::min<int64_t>(i + 1, n - 1);
      const double slope = (result.losses[hi] - result.losses[lo]) / static_cast<double>(hi - lo);
      if (slope < steepest) {
        steepest = slope;
        result.suggested_index = i;
      }
    }
  } else if (n == 1) {
    result.suggested_index = 0;
  }
  if (result.suggested_index >= 0) result.suggested_lr = result.lrs[result.suggested_index];
  return result;
}

namespace {
std::string fmt(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}
}  // namespace

std::string lr_finder_svg(const LrFinderResult& result) {
  const double width = 640, height = 400;
  const double left = 70, right = 20, top = 40, bottom = 60;  // margins for tick labels and axis titles
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"400\" "
                    "viewBox=\"0 0 640 400\" font-family=\"sans-serif\" font-size=\"12\">\n"
                    "<rect width=\"640\" height=\"400\" fill=\"white\"/>\n"
                    "<text x=\"320\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Learning-rate finder</text>\n";
  if (result.lrs.empty()) return svg + "<text x=\"320\" y=\"200\" text-anchor=\"middle\">no steps recorded</text>\n</svg>\n";

  // x: whole decades around the swept range; y: the finite losses, with a margin.
  const auto [lr_min, lr_max] = std::minmax_element(result.lrs.begin(), result.lrs.end());
  const double decade_lo = std::floor(std::log10(*lr_min)), decade_hi = std::max(std::ceil(std::log10(*lr_max)), decade_lo + 1);
  double loss_lo = INFINITY, loss_hi = -INFINITY;
  for (double loss : result.losses)
    if (std::isfinite(loss)) loss_lo = std::min(loss_lo, loss), loss_hi = std::max(loss_hi, loss);
  if (!std::isfinite(loss_lo)) loss_lo = 0, loss_hi = 1;
  if (loss_hi - loss_lo < 1e-12) loss_lo -= 0.5, loss_hi += 0.5;
  const double pad = 0.05 * (loss_hi - loss_lo);
  loss_lo -= pad, loss_hi += pad;
  auto x_of = [&](double lr) { return left + (std::log10(lr) - decade_lo) / (decade_hi - decade_lo) * plot_w; };
  auto y_of = [&](double loss) { return top + (loss_hi - loss) / (loss_hi - loss_lo) * plot_h; };

  svg += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"" + fmt("%.1f", plot_w) +
         "\" height=\"" + fmt("%.1f", plot_h) + "\" fill=\"none\" stroke=\"black\"/>\n";
  for (double d = decade_lo; d <= decade_hi; d += 1) {  // a tick and a label per decade
    const double x = left + (d - decade_lo) / (decade_hi - decade_lo) * plot_w;
    svg += "<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + fmt("%.1f", top + plot_h) + "\" x2=\"" + fmt("%.1f", x) +
           "\" y2=\"" + fmt("%.1f", top + plot_h + 5) + "\" stroke=\"black\"/>\n";
    svg += "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", top + plot_h + 18) +
           "\" text-anchor=\"middle\">1e" + fmt("%.0f", d) + "</text>\n";
  }
  for (int i = 0; i <= 4; ++i) {  // five loss ticks
    const double loss = loss_lo + (loss_hi - loss_lo) * i / 4.0;
    const double y = y_of(loss);
    svg += "<line x1=\"" + fmt("%.1f", left - 5) + "\" y1=\"" + fmt("%.1f", y) + "\" x2=\"" + fmt("%.1f", left) +
           "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"black\"/>\n";
    svg += "<text x=\"" + fmt("%.1f", left - 8) + "\" y=\"" + fmt("%.1f", y + 4) + "\" text-anchor=\"end\">" +
           fmt("%.3g", loss) + "</text>\n";
  }
  svg += "<text x=\"" + fmt("%.1f", left + plot_w / 2) + "\" y=\"" + fmt("%.1f", height - 15) +
         "\" text-anchor=\"middle\">learning rate (log scale)</text>\n";
  svg += "<text x=\"18\" y=\"" + fmt("%.1f", top + plot_h / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
         fmt("%.1f", top + plot_h / 2) + ")\">smoothed loss</text>\n";

  svg += "<polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"2\" points=\"";
  for (size_t i = 0; i < result.lrs.size(); ++i) {
    if (!std::isfinite(result.losses[i])) continue;
    svg += fmt("%.1f", x_of(result.lrs[i])) + "," + fmt("%.1f", y_of(result.losses[i])) + " ";
  }
  svg += "\"/>\n";
  if (result.suggested_index >= 0) {
    const double x = x_of(result.suggested_lr), y = y_of(result.losses[result.suggested_index]);
    svg += "<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + fmt("%.1f", top) + "\" x2=\"" + fmt("%.1f", x) + "\" y2=\"" +
           fmt("%.1f", top + plot_h) + "\" stroke=\"firebrick\" stroke-dasharray=\"4 3\"/>\n";
    svg += "<circle cx=\"" + fmt("%.1f", x) + "\" cy=\"" + fmt("%.1f", y) + "\" r=\"5\" fill=\"firebrick\"/>\n";
    svg += "<text x=\"" + fmt("%.1f", x + 8) + "\" y=\"" + fmt("%.1f", top + 16) + "\" fill=\"firebrick\">suggested lr " +
           fmt("%.3g", result.suggested_lr) + "</text>\n";
  }
  return svg + "</svg>\n";
}

}  // namespace kiln::optim
