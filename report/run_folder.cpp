// Reading a run folder's logs, and writing run_info.json (report/run_folder.h).
#include "report/run_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/core/check.h"
#include "engine/core/json_parse.h"
#include "models/summary.h"
#include "weights/atomic_file.h"

namespace kiln::report {
namespace {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "run folder: cannot read '", path, "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    KILN_CHECK(false, "run folder: '", path, "' is not valid JSON: ", e.what());
  }
  return {};
}

// A JSON number, or `fallback` for null (NaN is written as null) and absent keys.
double number_or(const nlohmann::json& j, const char* key, double fallback = 0) {
  if (!j.contains(key) || !j[key].is_number()) return fallback;
  return j[key].get<double>();
}

}  // namespace

nlohmann::json RunInfo::to_json() const {
  return {{"command", command},
          {"resume_commands", resume_commands},
          {"model_description", model_description},
          {"parameters", parameters},
          {"trainable_parameters", trainable_parameters},
          {"device", device},
          {"device_name", device_name},
          {"device_memory_mb", device_memory_mb},
          {"data_source", data_source},
          {"test_data", test_data},
          {"channels", channels},
          {"train_images", train_images},
          {"val_images", val_images},
          {"test_images", test_images},
          {"train_images_per_epoch", train_images_per_epoch},
          {"cpu_threads", cpu_threads},
          {"feature_cache", feature_cache},
          {"kiln_version", kiln_version},
          {"started", started}};
}

RunInfo RunInfo::from_json(const nlohmann::json& j) {
  RunInfo info;
  info.command = j.value("command", info.command);
  info.resume_commands = j.value("resume_commands", info.resume_commands);
  info.model_description = j.value("model_description", info.model_description);
  info.parameters = j.value("parameters", info.parameters);
  info.trainable_parameters = j.value("trainable_parameters", info.trainable_parameters);
  info.device = j.value("device", info.device);
  info.device_name = j.value("device_name", info.device_name);
  info.device_memory_mb = j.value("device_memory_mb", info.device_memory_mb);
  info.data_source = j.value("data_source", info.data_source);
  info.test_data = j.value("test_data", info.test_data);
  info.channels = j.value("channels", info.channels);
  info.train_images = j.value("train_images", info.train_images);
  info.val_images = j.value("val_images", info.val_images);
  info.test_images = j.value("test_images", info.test_images);
  info.train_images_per_epoch = j.value("train_images_per_epoch", info.train_images_per_epoch);
  info.cpu_threads = j.value("cpu_threads", info.cpu_threads);
  info.feature_cache = j.value("feature_cache", info.feature_cache);
  info.kiln_version = j.value("kiln_version", info.kiln_version);
  info.started = j.value("started", info.started);
  return info;
}

void write_run_info(const std::string& run_dir, const RunInfo& info, bool resumed) {
  const std::string path = run_dir + "/run_info.json";
  RunInfo written = info;
  if (resumed && std::filesystem::exists(path)) {
    const RunInfo first = RunInfo::from_json(read_json_file(path));
    written.command = first.command;
    written.started = first.started;
    written.resume_commands = first.resume_commands;
    written.resume_commands.push_back(info.command);
  }
  std::filesystem::create_directories(run_dir);
  write_file_atomically(path, [&](std::ostream& out) { out << written.to_json().dump(2) << "\n"; });
}

bool RunRecord::has_validation() const {
  if (info) return info->val_images > 0;
  return std::any_of(epochs.begin(), epochs.end(), [](const EpochRow& e) { return e.val_loss != 0; });
}

std::optional<size_t> RunRecord::best_epoch_index() const {
  if (epochs.empty()) return std::nullopt;
  if (!has_validation()) return epochs.size() - 1;
  const std::string monitor = config.value("monitor", std::string("val_accuracy"));
  auto value = [&](const EpochRow& e) {
    return monitor == "val_loss" ? -e.val_loss : (monitor == "val_f1" ? e.val_f1 : e.val_accuracy);
  };
  size_t best = 0;
  for (size_t i = 1; i < epochs.size(); ++i)
    if (value(epochs[i]) > value(epochs[best])) best = i;  // strict: the first epoch reaching the best wins
  return best;
}

double RunRecord::training_seconds() const {
  double total = 0;
  for (const EpochRow& e : epochs) total += e.seconds;
  return total;
}

double RunRecord::peak_memory_mb() const {
  double peak = 0;
  for (const EpochRow& e : epochs) peak = std::max(peak, e.peak_memory_mb);
  return peak;
}

RunRecord read_run_folder(const std::string& dir) {
  RunRecord run;
  run.dir = dir;
  run.name = std::filesystem::path(dir).lexically_normal().filename().string();
  if (run.name.empty() || run.name == ".")  // "runs/x/" ends in an empty component
    run.name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
  KILN_CHECK(std::filesystem::is_directory(dir), "report: '", dir, "' is not a folder (give a kiln train run folder)");
  run.config = read_json_file(dir + "/config.json");
  if (std::filesystem::exists(dir + "/run_info.json"))
    run.info = RunInfo::from_json(read_json_file(dir + "/run_info.json"));
  if (std::filesystem::exists(dir + "/test_metrics.json")) run.test_metrics = read_json_file(dir + "/test_metrics.json");

  const std::string log_path = dir + "/epochs.jsonl";
  std::ifstream log(log_path);
  KILN_CHECK(log.good(), "report: cannot read '", log_path, "' (the per-epoch log kiln train writes)");
  std::string line;
  int line_number = 0;
  while (std::getline(log, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      KILN_CHECK(false, "report: '", log_path, "' line ", line_number, " is not JSON: ", e.what());
    }
    EpochRow row;
    row.epoch = json_int_or(j, "epoch", 0, log_path);
    row.lr = number_or(j, "lr");
    row.train_loss = number_or(j, "train_loss");
    row.train_accuracy = number_or(j, "train_accuracy");
    row.val_loss = number_or(j, "val_loss");
    row.val_accuracy = number_or(j, "val_accuracy");
    row.val_f1 = number_or(j, "val_f1");
    row.seconds = number_or(j, "seconds");
    row.images_per_second = number_or(j, "images_per_second");
    row.peak_memory_mb = number_or(j, "peak_memory_mb");
    row.image_size = number_or(j, "size");
    row.batch_size = number_or(j, "batch_size");
    run.epochs.push_back(row);
  }
  return run;
}

std::string format_seconds(double seconds) {
  char buffer[48];
  if (seconds < 60) {
    std::snprintf(buffer, sizeof(buffer), "%.1f s", seconds);
    return buffer;
  }
  const long s = static_cast<long>(seconds + 0.5);
  if (s >= 3600)
    std::snprintf(buffer, sizeof(buffer), "%ldh %02ldm %02lds", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buffer, sizeof(buffer), "%ldm %02lds", s / 60, s % 60);
  return buffer;
}

std::string format_count(int64_t value) { return models::with_thousands(value); }

std::string shell_quote_command(int argc, const char* const* argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool plain = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_./:=,+@%") == std::string::npos;
    if (i > 0) out += ' ';
    if (plain) {
      out += arg;
    } else {  // single quotes keep everything literal; a ' inside becomes '\''
      out += '\'';
      for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

}  // namespace kiln::report
