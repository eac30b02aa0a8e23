// The best model's hand-in figures for a sweep report (report/sweep_report.h), and
// the report written with them. Loading a checkpoint and its data is the command
// line's business (tools/run_model.h, tools/data_options.h), so this lives in tools/:
// `kiln report SWEEP_DIR` and `kiln sweep` call write_sweep_report_with_figures().
//
// Which model and which images: after `kiln sweep --finish` (the journal's "finish"
// block), the finished run folder's checkpoint on the test split; before it, the best
// trial's checkpoint on its validation split (the test split is never looked at during
// a search). The report says which.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "report/sweep_journal.h"
#include "report/sweep_report.h"

namespace kiln::tools {

struct SweepFigureOptions {
  std::string device = "auto";
  std::string data;                       // "" : where the run read its data
  std::string cache_dir = ".cache/kiln";
  int64_t batch_size = 128;
  int neurons = 10;                       // guided backpropagation of channels 0..neurons-1
  int64_t guided_search_images = 2000;    // images searched for each neuron's strongest one
};

// nullopt (with a line on stdout saying why) when there is no best trial or its run
// folder holds no checkpoint.
std::optional<report::SweepBestFigures> sweep_best_figures(const std::string& sweep_dir,
                                                           const report::SweepJournal& journal,
                                                           const SweepFigureOptions& options);

// write_sweep_report() with the figures when they can be made; returns the page's path.
std::string write_sweep_report_with_figures(const std::string& sweep_dir, const SweepFigureOptions& options = {});

}  // namespace kiln::tools
