// Hyperband rungs and successive halving (sweep/early_stop.h) on synthetic metric
// sequences: which trials go on at each rung, and how many epochs a halving sweep
// trains in all.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "sweep/early_stop.h"

using namespace kiln::sweep;

TEST_CASE("sweep hyperband: rungs at min_iter * eta^k below the epochs") {
  CHECK(rung_epochs({true, 1, 3}, 9) == std::vector<int>{1, 3});
  CHECK(rung_epochs({true, 3, 3}, 30) == std::vector<int>{3, 9, 27});
  CHECK(rung_epochs({true, 1, 2}, 5) == std::vector<int>{1, 2, 4});
  CHECK(rung_epochs({false, 1, 3}, 9).empty());
  CHECK(keep_count(9, 3) == 3);
  CHECK(keep_count(2, 3) == 1);
  CHECK(keep_count(8, 3) == 2);
}

TEST_CASE("sweep hyperband: a trial goes on only inside the best 1/eta of the trials at its rung") {
  CHECK(keep_at_rung(0.1, {}, 3, true));                 // the first at a rung always goes on
  CHECK(keep_at_rung(0.95, {0.9, 0.8}, 3, true));        // 3 reached: keep 1, and it is the best
  CHECK_FALSE(keep_at_rung(0.85, {0.9, 0.8}, 3, true));
  CHECK(keep_at_rung(0.9, {0.9, 0.8}, 3, true));         // a tie goes on
  CHECK(keep_at_rung(0.3, {0.5, 0.4, 0.9, 0.7, 0.8}, 3, false));  // minimize: the lowest loss
  CHECK_FALSE(keep_at_rung(0.6, {0.5, 0.4, 0.9, 0.7, 0.8}, 3, false));
  // Asynchronous decisions over a sequence of trials (val accuracy at the rung):
  // each judged against those before it.
  const std::vector<double> arriving = {0.60, 0.70, 0.65, 0.80, 0.50, 0.75};
  std::vector<double> seen;
  std::vector<bool> kept;
  for (double metric : arriving) {
    kept.push_back(keep_at_rung(metric, seen, 2, true));
    seen.push_back(metric);
  }
  CHECK(kept == std::vector<bool>{true, true, false, true, false, true});  // 0.75: 2nd of 6, keep 3
}

namespace {

// Accuracy of trial `id` after `epoch` epochs: trial quality q rises with the id's
// position in a fixed shuffle; every curve rises with the epochs.
double synthetic_accuracy(int64_t id, int epoch) {
  const int quality[9] = {4, 8, 1, 6, 0, 7, 3, 5, 2};
  return 0.5 + 0.04 * quality[id] + 0.1 * (1.0 - 1.0 / epoch);
}

}  // namespace

TEST_CASE("sweep halving: 9 trials, eta 3: 3 go on after epoch 1, 1 after epoch 3, and it trains to the end") {
  Journal j;
  j.method = "halving";
  j.epochs = 9;
  j.early_terminate = {true, 1, 3};
  for (int64_t id = 0; id < 9; ++id) {
    Trial t;
    t.id = id;
    j.trials.push_back(t);
  }
  int epochs_trained = 0, decisions = 0;
  for (int guard = 0; guard < 100; ++guard) {
    const HalvingStep step = next_halving_step(j, {});
    if (step.kind == HalvingStep::Kind::done) break;
    REQUIRE(step.kind != HalvingStep::Kind::wait);
    if (step.kind == HalvingStep::Kind::run) {
      Trial& t = j.trials[static_cast<size_t>(step.trial)];
      epochs_trained += step.target_epoch - t.epochs_done;
      t.epochs_done = step.target_epoch;
      t.status = step.target_epoch == j.epochs ? "finished" : "running";
      t.metric = synthetic_accuracy(t.id, t.epochs_done);
      continue;
    }
    std::vector<std::pair<int64_t, double>> metrics;
    for (int64_t id : step.survivors) metrics.push_back({id, synthetic_accuracy(id, step.rung_epoch)});
    const int64_t kept = apply_halving_decision(j, step, metrics);
    CHECK(kept == (decisions == 0 ? 3 : 1));
    decisions += 1;
  }
  CHECK(decisions == 2);
  CHECK(epochs_trained == 9 * 1 + 3 * 2 + 1 * 6);  // 21 epochs instead of 81
  // The best three at epoch 1 are trials 1, 5 and 3 (quality 8, 7, 6); trial 1 wins.
  CHECK(j.trials[1].status == "finished");
  CHECK(j.trials[1].epochs_done == 9);
  for (int64_t id : {5, 3}) {
    CHECK(j.trials[static_cast<size_t>(id)].status == "stopped");
    CHECK(j.trials[static_cast<size_t>(id)].epochs_done == 3);
    CHECK(j.trials[static_cast<size_t>(id)].rungs.size() == 2);
  }
  for (int64_t id : {0, 2, 4, 6, 7, 8}) {
    CHECK(j.trials[static_cast<size_t>(id)].status == "stopped");
    CHECK(j.trials[static_cast<size_t>(id)].epochs_done == 1);
    CHECK_FALSE(j.trials[static_cast<size_t>(id)].rungs.at(0).kept);
  }
  // A trial running now is never handed out twice; the others wait for it.
  Journal fresh = j;
  for (Trial& t : fresh.trials) t = Trial{t.id};
  CHECK(next_halving_step(fresh, {0}).trial == 1);
}

TEST_CASE("sweep epochs.csv reader: the metric column, complete lines only, best of the first N") {
  const std::string path = std::filesystem::temp_directory_path() / ("kiln_sweep_epochs_" + std::to_string(getpid()) + ".csv");
  {
    std::ofstream out(path);
    out << "epoch,lr,val_loss,val_accuracy\n1,0.1,0.9,0.50\n2,0.1,0.7,0.65\n3,0.1,0.8,0.60\n4,0.1,0.6";
  }
  const std::vector<double> accuracy = read_epoch_column(path, "val_accuracy");
  CHECK(accuracy == std::vector<double>{0.50, 0.65, 0.60});
  CHECK(*best_of(accuracy, 1, true) == 0.50);
  CHECK(*best_of(accuracy, 0, true) == 0.65);
  CHECK(*best_of(read_epoch_column(path, "val_loss"), 3, false) == 0.7);
  CHECK(read_epoch_column(path, "val_f1").empty());
  CHECK(read_epoch_column(path + ".missing", "val_accuracy").empty());
  CHECK_FALSE(best_of({}, 2, true).has_value());
  std::filesystem::remove(path);
}
