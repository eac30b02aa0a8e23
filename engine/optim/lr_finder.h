// The learning-rate range test (Smith 2015, popularised by fastai): train for a
// few hundred steps while the lr grows exponentially from tiny to huge, record the
// smoothed loss, and pick an lr where the loss falls fastest. `kiln lr-find`
// wires it to a model; here it is a plain loop over a closure, so it can be
// tested on a toy problem.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln::optim {

struct LrFinderOptions {
  double start_lr = 1e-7;
  double end_lr = 10.0;
  int64_t steps = 100;
  double smoothing = 0.98;         // beta of the exponential moving average of the loss
  double divergence_factor = 4.0;  // stop once the smoothed loss exceeds this times the best
};

struct LrFinderResult {
  std::vector<double> lrs;          // the lr of each step taken
  std::vector<double> losses;       // the smoothed loss after that step
  std::vector<double> raw_losses;   // what train_step returned
  double suggested_lr = 0;          // where the smoothed loss falls fastest per decade of lr
  int64_t suggested_index = -1;
  bool diverged = false;            // stopped early (loss > divergence_factor x best, or not finite)
};

// Calls train_step(lr) once per step with lr = start * (end / start)^(i / (steps - 1))
// and records the loss it returns. The model is left as the last step made it:
// callers that want to train afterwards restore their weights first.
LrFinderResult run_lr_finder(const std::function<double(double lr)>& train_step, const LrFinderOptions& options);

// A self-contained SVG line plot of the smoothed loss against the lr (log-x axis,
// decade ticks, labelled axes) with the suggestion marked.
std::string lr_finder_svg(const LrFinderResult& result);

}  // namespace kiln::optim
