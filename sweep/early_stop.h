// Early termination: Hyperband's rungs, read the way the hosted tools do
// (`early_terminate: {type: hyperband, min_iter: 3, eta: 3}`), and successive halving.
//
// Rungs are the epochs min_iter * eta^k (k = 0, 1, ...) below the sweep's epochs:
// min_iter 1, eta 3, 9 epochs -> rungs at 1 and 3. At a rung, of the n trials whose
// metric is known there, the best keep_count(n) = max(1, floor(n / eta)) go on.
//
//   asynchronous (any method with early_terminate): each trial is judged when it
//     reaches a rung, against every trial that reached that rung before it; a trial
//     outside the best 1/eta so far is stopped (status "stopped"). The first trial at
//     a rung always goes on. (Li et al., "A System for Massively Parallel
//     Hyperparameter Tuning", MLSys 2020: ASHA.)
//   synchronous (method halving: Jamieson and Talwalkar, AISTATS 2016): all run_cap
//     trials train to the first rung, the best 1/eta go on to the next, and so on;
//     the survivors finish all epochs. A trial waiting at a rung is paused with a
//     checkpoint (SIGTERM) and continues with --resume, which is bit-exact, so the
//     pause changes nothing in its results.
// A trial's metric at a rung is the best of its epochs up to the rung (the epoch its
// best.safetensors holds), read from its epochs.csv.
#pragma once
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sweep/journal.h"

namespace kiln::sweep {

std::vector<int> rung_epochs(const EarlyTerminate& early_terminate, int epochs);
int64_t keep_count(int64_t reached, int eta);
// Whether `metric` is among the best keep_count(1 + others.size()) of {metric} u others
// (ties go on).
bool keep_at_rung(double metric, const std::vector<double>& others, int eta, bool maximize);

// One value of `column` per epoch row of RUN/epochs.csv (complete lines only; the file
// is written atomically, but it may not exist yet). Empty when there is none.
std::vector<double> read_epoch_column(const std::string& csv_path, const std::string& column);
// The best value of the first `epochs` entries (all when epochs <= 0).
std::optional<double> best_of(const std::vector<double>& values, int epochs, bool maximize);

// Synchronous successive halving: what to do next, from the journal alone.
struct HalvingStep {
  enum class Kind { run, decide, wait, done } kind = Kind::done;
  int64_t trial = -1;        // run: this trial, to target_epoch
  int target_epoch = 0;
  int rung_epoch = 0;        // decide: the rung whose survivors all reached it
  std::vector<int64_t> survivors;  // decide: the trials to rank
};
// `busy`: trials running now (never given out twice). `wait`: every trial still to
// reach the rung is busy.
HalvingStep next_halving_step(const Journal& journal, const std::set<int64_t>& busy);
// A decide step: rank the survivors by their metric at the rung (best first, ties by
// trial id, so every resume decides the same), record the rung in each, and mark the
// trials outside the best keep_count "stopped". Returns how many go on.
int64_t apply_halving_decision(Journal& journal, const HalvingStep& step,
                               std::vector<std::pair<int64_t, double>> metrics);

}  // namespace kiln::sweep
