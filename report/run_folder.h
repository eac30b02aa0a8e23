// Reading a `kiln train` run folder back for reports, and the one file that
// training writes only for them.
//
// A run folder holds (tools/cmd_train.cpp):
//   config.json        the resolved configuration (model, data, optimizer, augment, batch size, ...)
//   run_info.json      what a report needs and the config does not say: the command
//                      line, parameter counts, the device's name and memory, the set
//                      sizes and images per epoch (written by write_run_info below)
//   epochs.jsonl       one JSON object per epoch: lr, train/val loss and accuracy,
//                      val macro F1, seconds, images/s, peak memory (engine/train/run_log.h)
//   test_metrics.json  the best checkpoint's test metrics (metrics::ClassificationReport::to_json)
//   split.json, best.safetensors, last.safetensors
//
// read_run_folder() needs config.json and epochs.jsonl; run_info.json and
// test_metrics.json are optional (a run without a test split, or one written before
// run_info.json existed), and the report says what is missing.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::report {

struct RunInfo {
  std::string command;                       // the command line that started the run, shell-quoted
  std::vector<std::string> resume_commands;  // later `--resume` command lines, in order
  std::string model_description;             // "cnn5: 5 blocks of ..." / "resnet18 (torchvision layout) ..."
  int64_t parameters = 0, trainable_parameters = 0;
  std::string device;                    // "cpu" / "cuda:0"
  std::string device_name;               // backend_info.h describe_device()
  double device_memory_mb = 0;           // the GPU's memory, or the host's physical memory (0: unknown)
  std::string data_source;               // DATA as given
  std::string test_data;                 // --test-data, "" when the test split came from DATA
  int64_t channels = 3;                  // --channels
  int64_t train_images = 0, val_images = 0, test_images = 0;
  int64_t train_images_per_epoch = 0;    // what one epoch feeds (the trainer drops a last partial batch)
  int cpu_threads = 0;                   // the CPU backend's compute threads (--threads); 0: not recorded
  std::string feature_cache;             // "on: ..." / "off: why" (engine/train/feature_cache.h); "" not decided
  std::string kiln_version;
  std::string started;                   // local time, "2026-11-23 12:34:56"

  nlohmann::json to_json() const;
  static RunInfo from_json(const nlohmann::json& j);  // missing keys keep their defaults
};

// Writes <run_dir>/run_info.json atomically. When `resumed` and the file exists, the
// original command and start time are kept and info.command is appended to
// resume_commands (the first command still reproduces the run).
void write_run_info(const std::string& run_dir, const RunInfo& info, bool resumed);

// One line of epochs.jsonl.
struct EpochRow {
  int epoch = 0;
  double lr = 0;
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0, val_f1 = 0;
  double seconds = 0, images_per_second = 0, peak_memory_mb = 0;
  double image_size = 0, batch_size = 0;  // a --progressive run's "size" and "batch_size" columns; else 0
};

struct RunRecord {
  std::string dir;                       // the run folder as given
  std::string name;                      // its last path component (labels in comparisons)
  nlohmann::json config;                 // config.json
  std::optional<RunInfo> info;           // run_info.json
  std::vector<EpochRow> epochs;          // epochs.jsonl, in file order
  std::optional<nlohmann::json> test_metrics;  // test_metrics.json

  // Whether epochs were validated (run_info's val_images; without it, any non-zero val_loss).
  bool has_validation() const;
  // Index into epochs of the epoch whose checkpoint is best.safetensors: the first
  // epoch reaching the best value of config's "monitor" (val_loss: lowest; val_accuracy,
  // val_f1: highest), as the trainer picks it; the last epoch when there was no
  // validation set. nullopt when no epoch was logged.
  std::optional<size_t> best_epoch_index() const;
  // Sum of the epochs' training seconds (the trainer's per-epoch time, without validation).
  double training_seconds() const;
  // The highest per-epoch peak memory (MiB) of the device allocator.
  double peak_memory_mb() const;
};

// Throws naming the folder and the file when config.json or epochs.jsonl is missing
// or a line is not JSON.
RunRecord read_run_folder(const std::string& dir);

// "1h 02m 03s", "4m 05s", "12.3 s"
std::string format_seconds(double seconds);
// Integers with thousands separators: 11689512 -> "11,689,512".
std::string format_count(int64_t value);

// The command line as one shell-quoted string: arguments with spaces or shell
// specials in single quotes, so it can be pasted back into a shell.
std::string shell_quote_command(int argc, const char* const* argv);

}  // namespace kiln::report
