#include "engine/train/run_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/check.h"
#include "weights/atomic_file.h"

namespace kiln::train {

namespace {

// The epoch number a row starts with, or -1 when the line is not a row.
double leading_number(const std::string& line) {
  try {
    return std::stod(line);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

RunLog::RunLog(std::string directory, std::vector<std::string> columns, int first_epoch)
    : csv_path_(directory + "/epochs.csv"), jsonl_path_(directory + "/epochs.jsonl"), columns_(std::move(columns)) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  KILN_CHECK(!error, "cannot create the run folder '", directory, "': ", error.message());
  if (first_epoch > 1 && columns_.front() == "epoch") {
    std::ifstream csv(csv_path_), jsonl(jsonl_path_);
    std::string line;
    for (bool header = true; std::getline(csv, line); header = false)
      if (!header && leading_number(line) >= 1 && leading_number(line) < first_epoch) csv_rows_.push_back(line);
    while (std::getline(jsonl, line)) {
      const nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (row.is_object() && row.contains("epoch") && row["epoch"].is_number() && row["epoch"].get<double>() >= 1 &&
          row["epoch"].get<double>() < first_epoch)
        jsonl_rows_.push_back(line);
    }
  }
  write();
}

void RunLog::add(const std::map<std::string, double>& row) {
  KILN_CHECK(row.size() == columns_.size(), "run log: a row has ", row.size(), " values for ", columns_.size(),
             " columns");
  std::ostringstream csv;
  nlohmann::json object = nlohmann::json::object();
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto found = row.find(columns_[i]);
    KILN_CHECK(found != row.end(), "run log: the row has no value for column '", columns_[i], "'");
    csv << (i ? "," : "") << found->second;
    object[columns_[i]] = std::isfinite(found->second) ? nlohmann::json(found->second) : nlohmann::json(nullptr);
  }
  csv_rows_.push_back(csv.str());
  jsonl_rows_.push_back(object.dump());
  write();
}

void RunLog::write() const {
  write_file_atomically(csv_path_, [&](std::ostream& out) {
    for (size_t i = 0; i < columns_.size(); ++i) out << (i ? "," : "") << columns_[i];
    out << "\n";
    for (const std::string& row : csv_rows_) out << row << "\n";
  });
  write_file_atomically(jsonl_path_, [&](std::ostream& out) {
    for (const std::string& row : jsonl_rows_) out << row << "\n";
  });
}

}  // namespace kiln::train
