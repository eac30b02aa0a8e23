// What `kiln train` records for its run report, and the report it writes at the end
// of a run (report/run_report.h). Kept out of tools/cmd_train.cpp, which only calls
// these two functions.
#pragma once
#include <string>

#include "data/dataset.h"
#include "engine/nn/module.h"
#include "report/run_folder.h"
#include "tools/data_options.h"
#include "tools/model_options.h"

namespace kiln::tools {

// The run_info.json fields that do not depend on the data: this process's command
// line, the model's description and parameter counts, the device's name and memory,
// the CPU threads, kiln's version and the start time (kiln train and kiln demo).
report::RunInfo run_info_of_process(const nn::Module& model, const std::string& model_description,
                                    const Device& device);

// Writes <run_dir>/run_info.json (report/run_folder.h RunInfo): this process's command
// line, the model's description and parameter counts, the device's name and memory,
// the set sizes and images per epoch. A resumed run keeps the first command.
void record_run_info(const std::string& run_dir, const BuiltModel& built, const nn::Module& model, const Device& device,
                     const DataOptions& data_options, const PreparedData& data, int64_t batch_size, bool resumed,
                     const std::string& feature_cache = "");

// Writes <run_dir>/report.html and figures/ from the run folder and the evaluated
// model's test logits (N, K) (undefined when there is no test set). `evaluated` names
// that model in the report; empty: evaluated_checkpoint(run_dir). A failure is
// printed as a warning naming `kiln report`, not thrown: the run itself is saved.
void write_report_after_training(const std::string& run_dir, const data::Dataset& test_set, const Tensor& test_logits,
                                 const std::string& evaluated = "");

// The checkpoint a run's test metrics come from: "best.safetensors", else
// "last.safetensors", else "" (an --epochs 0 run saves none).
std::string evaluated_checkpoint(const std::string& run_dir);

}  // namespace kiln::tools
