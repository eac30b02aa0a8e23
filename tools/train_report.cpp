// The run report hooks of `kiln train` (tools/train_report.h).
#include "tools/train_report.h"

#include <cstdio>
#include <filesystem>

#include "engine/core/backend_info.h"
#include "engine/core/cpu_threads.h"
#include "report/run_folder.h"
#include "report/run_report.h"
#include "tools/commands.h"

namespace kiln::tools {

report::RunInfo run_info_of_process(const nn::Module& model, const std::string& model_description,
                                    const Device& device) {
  report::RunInfo info;
  info.command = command_line();
  info.model_description = model_description;
  info.parameters = model.parameter_count();
  info.trainable_parameters = model.parameter_count(true);
  info.device = device.to_string();
  const DeviceDescription described = describe_device(device);
  info.device_name = described.name;
  info.device_memory_mb = static_cast<double>(described.total_memory_bytes) / (1 << 20);
  info.cpu_threads = cpu_threads();
  info.kiln_version = kVersion;
  info.started = report::local_time_stamp();
  return info;
}

void record_run_info(const std::string& run_dir, const BuiltModel& built, const nn::Module& model, const Device& device,
                     const DataOptions& data_options, const PreparedData& data, int64_t batch_size, bool resumed,
                     const std::string& feature_cache) {
  report::RunInfo info = run_info_of_process(model, built.description, device);
  info.data_source = data_options.data;
  info.test_data = data_options.test_data;
  info.channels = data_options.channels;
  info.train_images = data.train.size();
  info.val_images = data.val.size();
  info.test_images = data.test.size();
  // The trainer's loader drops a last partial batch when there is more than one batch.
  info.train_images_per_epoch = info.train_images > batch_size ? info.train_images / batch_size * batch_size
                                                               : info.train_images;
  info.feature_cache = feature_cache;
  report::write_run_info(run_dir, info, resumed);
}

std::string evaluated_checkpoint(const std::string& run_dir) {
  for (const char* name : {"best.safetensors", "last.safetensors"})
    if (std::filesystem::exists(run_dir + "/" + name)) return name;
  return "";
}

void write_report_after_training(const std::string& run_dir, const data::Dataset& test_set, const Tensor& test_logits,
                                 const std::string& evaluated) {
  try {
    const std::string checkpoint = evaluated.empty() ? evaluated_checkpoint(run_dir) : evaluated;
    const std::string path = report::write_report_for_run(run_dir, test_set, test_logits,
                                                          checkpoint.empty() ? "model as built" : checkpoint);
    std::printf("report: %s\n", path.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "kiln: warning: the run report was not written: %s\n(the run is saved; `kiln report %s` "
                         "writes it again)\n", e.what(), run_dir.c_str());
  }
}

}  // namespace kiln::tools
