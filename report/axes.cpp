// The parts of a chart around the data: nice ticks (Heckbert, "Nice numbers for
// graph labels", Graphics Gems 1990), tick labels, the data-to-pixel transform,
// colours, and the frame and legend that report/charts.cpp and report/heatmap.cpp
// lay out with (report/chart_layout.h).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/check.h"
#include "report/chart_layout.h"
#include "report/charts.h"

namespace kiln::report {

// ---- ticks

namespace {
// The smallest 1-2-5 number >= x (x > 0): 0.17 -> 0.2, 3.8 -> 5, 6 -> 10.
double nice_step_at_least(double x) {
  const double decade = std::pow(10.0, std::floor(std::log10(x)));
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (f * decade >= x * (1 - 1e-9)) return f * decade;
  return 10 * decade;
}
// The next 1-2-5 number after step: 0.2 -> 0.5 -> 1.
double next_nice_step(double step) { return nice_step_at_least(step * 1.5); }
}  // namespace

NiceScale nice_scale(double lo, double hi, int max_ticks) {
  KILN_CHECK(std::isfinite(lo) && std::isfinite(hi), "nice_scale: range must be finite, got [", lo, ", ", hi, "]");
  KILN_CHECK(max_ticks >= 2, "nice_scale: max_ticks must be at least 2, got ", max_ticks);
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {  // one value: a range around it
    const double pad = lo == 0 ? 1.0 : 0.1 * std::abs(lo);
    lo -= pad, hi += pad;
  }
  NiceScale scale;
  scale.step = nice_step_at_least((hi - lo) / (max_ticks - 1));
  for (;;) {
    // The tolerance keeps 0.6 / 0.2 = 2.9999999999999996 from widening the range by a step.
    const double first = std::floor(lo / scale.step + 1e-9), last = std::ceil(hi / scale.step - 1e-9);
    if (last - first + 1 <= max_ticks) {
      // min/max: first * step can round to just inside [lo, hi] (6 * 5e-6 < 3e-5).
      scale.lo = std::min(lo, first * scale.step), scale.hi = std::max(hi, last * scale.step);
      for (double k = first; k <= last; ++k) scale.ticks.push_back(k == 0 ? 0.0 : k * scale.step);
      return scale;
    }
    scale.step = next_nice_step(scale.step);
  }
}

std::vector<double> log_ticks(double lo, double hi, int max_ticks) {
  KILN_CHECK(lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi), "log_ticks: range must be positive, got [",
             lo, ", ", hi, "]");
  KILN_CHECK(max_ticks >= 2, "log_ticks: max_ticks must be at least 2, got ", max_ticks);
  if (lo > hi) std::swap(lo, hi);
  int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9)), last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (first == last) --first, ++last;
  const int decades = last - first;
  const int every = (decades + max_ticks - 1) / max_ticks;  // thin to at most max_ticks powers
  std::vector<double> ticks;
  for (int e = first; e <= last; ++e) {
    if ((e - first) % every != 0) continue;
    ticks.push_back(std::pow(10.0, e));
    if (decades <= 2 && e < last)  // few decades: 2 and 5 in between
      for (double m : {2.0, 5.0}) ticks.push_back(m * std::pow(10.0, e));
  }
  return ticks;
}

namespace {
std::string printf_string(const char* format, int decimals, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, decimals, value);
  return buffer;
}
}  // namespace

// Mantissa with at most 2 decimals, trailing zeros dropped, no '+' or leading exponent zeros.
std::string format_tick_scientific(double value) {
  if (value == 0 || !std::isfinite(value)) return format_tick(value, 1);
  const int exponent = static_cast<int>(std::floor(std::log10(std::abs(value)) + 1e-9));
  std::string mantissa = printf_string("%.*f", 2, value / std::pow(10.0, exponent));
  while (mantissa.back() == '0') mantissa.pop_back();
  if (mantissa.back() == '.') mantissa.pop_back();
  return mantissa + "e" + std::to_string(exponent);
}

namespace {
std::string without_negative_zero(std::string s) {
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}
}  // namespace

std::string format_tick(double value, double step, bool log_axis) {
  if (!std::isfinite(value)) return value != value ? "nan" : value > 0 ? "inf" : "-inf";
  if (!log_axis && std::abs(value) < step * 1e-6) value = 0;  // rounding noise of k * step
  const double magnitude = std::abs(value);
  if (log_axis && value == 0) return "0";
  if (log_axis) {  // decimals for the value itself (0.002 -> 3), then the shorter spelling
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(magnitude) + 1e-9)));
    std::string plain = printf_string("%.*f", decimals, value);
    std::string sci = format_tick_scientific(value);
    return without_negative_zero(sci.size() < plain.size() ? sci : plain);
  }
  if (magnitude >= 1e6 || (magnitude < 1e-4 && value != 0)) return format_tick_scientific(value);
  if (!(step > 0) || !std::isfinite(step)) step = magnitude > 0 ? magnitude : 1;  // no step given: the value's own
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  return without_negative_zero(printf_string("%.*f", decimals, value));
}

// ---- transform

double PlotArea::to_pixel_x(double x) const {
  const double f = log_x ? (std::log10(x) - std::log10(x_lo)) / (std::log10(x_hi) - std::log10(x_lo))
                         : (x - x_lo) / (x_hi - x_lo);
  return left + f * width;
}

double PlotArea::to_pixel_y(double y) const {
  const double f = log_y ? (std::log10(y) - std::log10(y_lo)) / (std::log10(y_hi) - std::log10(y_lo))
                         : (y - y_lo) / (y_hi - y_lo);
  return top + (1 - f) * height;
}

// ---- colours

const std::vector<Rgb>& tab10() {
  static const std::vector<Rgb> colors{{31, 119, 180}, {255, 127, 14},  {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};
  return colors;
}

Rgb series_color(size_t index) { return tab10()[index % tab10().size()]; }

Rgb contrasting_text_color(Rgb background) {
  // WCAG relative luminance; black and white text contrast equally at L = 0.179.
  auto linear = [](uint8_t c) {
    const double v = c / 255.0;
    return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  };
  const double luminance = 0.2126 * linear(background.r) + 0.7152 * linear(background.g) + 0.0722 * linear(background.b);
  return luminance > 0.179 ? Rgb{0, 0, 0} : Rgb{255, 255, 255};
}

}  // namespace kiln::report
