#include "engine/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace kiln {

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buffer[32];
  if (s >= 3600)
    std::snprintf(buffer, sizeof(buffer), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buffer, sizeof(buffer), "%ld:%02ld", s / 60, s % 60);
  return buffer;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), terminal_(isatty(2)),
      start_(std::chrono::steady_clock::now()) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done, const std::string& status) {
  if (terminal_) return draw(done, status, false);
  // Without a terminal: a line each quarter.
  if (total_ > 0 && done * 4 >= total_ * next_quarter_ && next_quarter_ < 4) {
    ++next_quarter_;
    draw(done, status, true);
  }
}

void ProgressBar::finish(const std::string& status) { draw(total_, status, true); }

void ProgressBar::draw(int64_t done, const std::string& status, bool final) {
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld  %s  %.0f %s/s  %s %s%s", terminal_ ? "\r" : "", label_.c_str(),
               bar.c_str(), static_cast<long long>(done), static_cast<long long>(total_), status.c_str(), rate,
               unit_.c_str(), done >= total_ ? "took" : "ETA", format_duration(done >= total_ ? elapsed : eta).c_str(),
               terminal_ ? "\033[K" : "");
  if (final || !terminal_) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace kiln
