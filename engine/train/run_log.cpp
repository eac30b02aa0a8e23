#include "engine/train/run_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/check.h"

namespace kiln::train {

RunLog::RunLog(std::string directory, std::vector<std::string> columns, bool append)
    : csv_path_(directory + "/epochs.csv"), jsonl_path_(directory + "/epochs.jsonl"), columns_(std::move(columns)) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  KILN_CHECK(!error, "cannot create the run folder '", directory, "': ", error.message());
  if (append && std::filesystem::exists(csv_path_)) return;
  std::ofstream csv(csv_path_, std::ios::trunc);
  KILN_CHECK(csv.good(), "cannot write '", csv_path_, "'");
  for (size_t i = 0; i < columns_.size(); ++i) csv << (i ? "," : "") << columns_[i];
  csv << "\n";
  std::ofstream jsonl(jsonl_path_, std::ios::trunc);
  KILN_CHECK(jsonl.good(), "cannot write '", jsonl_path_, "'");
}

void RunLog::add(const std::map<std::string, double>& row) {
  KILN_CHECK(row.size() == columns_.size(), "run log: a row has ", row.size(), " values for ", columns_.size(),
             " columns");
  std::ofstream csv(csv_path_, std::ios::app);
  std::ofstream jsonl(jsonl_path_, std::ios::app);
  KILN_CHECK(csv.good() && jsonl.good(), "cannot append to the run log in '", csv_path_, "'");
  nlohmann::json object = nlohmann::json::object();
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto found = row.find(columns_[i]);
    KILN_CHECK(found != row.end(), "run log: the row has no value for column '", columns_[i], "'");
    csv << (i ? "," : "") << found->second;
    object[columns_[i]] = std::isfinite(found->second) ? nlohmann::json(found->second) : nlohmann::json(nullptr);
  }
  csv << "\n";
  jsonl << object.dump() << "\n";
}

}  // namespace kiln::train
