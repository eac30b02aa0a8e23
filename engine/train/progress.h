// A terminal progress bar with rate and ETA, drawn on stderr:
//   epoch 2/5 [#########.........]  540/1000  loss 0.4123  acc 0.861  812 img/s  ETA 0:01
// On a non-terminal (CI logs) it prints one line at 25%, 50%, 75% and the end instead
// of redrawing, so logs stay readable.
#pragma once
#include <chrono>
#include <string>

namespace kiln {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "img");
  // `done` items so far; `status` is shown after the counts ("loss 0.41  acc 0.86").
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");
  double elapsed_seconds() const;

 private:
  void draw(int64_t done, const std::string& status, bool final);
  std::string label_, unit_;
  int64_t total_;
  bool terminal_;
  int next_quarter_ = 1;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);  // "1:05", "1:02:03"

}  // namespace kiln
