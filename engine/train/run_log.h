// The per-epoch log of a training run, in two forms side by side in the run
// folder: epochs.csv (for spreadsheets and plots) and epochs.jsonl (one JSON object
// per line, for programs). Each epoch is appended and flushed as soon as it ends,
// so a crashed run keeps the epochs it finished.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace kiln::train {

class RunLog {
 public:
  // Starts the files in `directory` (created if needed). With `append`, a resumed
  // run adds to the existing files instead of starting new ones.
  RunLog(std::string directory, std::vector<std::string> columns, bool append = false);
  // One row: every column must be given (missing or unknown names are errors).
  void add(const std::map<std::string, double>& row);
  const std::string& csv_path() const { return csv_path_; }
  const std::string& jsonl_path() const { return jsonl_path_; }

 private:
  std::string csv_path_, jsonl_path_;
  std::vector<std::string> columns_;
};

}  // namespace kiln::train
