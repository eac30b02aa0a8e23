// The per-epoch log of a training run, in two forms side by side in the run
// folder: epochs.csv (for spreadsheets and plots) and epochs.jsonl (one JSON object
// per line, for programs). Each epoch's row is written as soon as the epoch ends,
// so a crashed run keeps the epochs it finished.
//
// Both files are rewritten whole through the atomic writer (weights/atomic_file.h)
// for every row, never appended to: a crash or a full disk mid-write leaves the
// previous version, not a torn last line. They are a few hundred bytes per epoch.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace kiln::train {

class RunLog {
 public:
  // Starts the files in `directory` (created if needed). A resumed run passes the
  // epoch it starts at: the rows of earlier epochs are kept and any row of that
  // epoch or later (written before a crash, by a run that then lost the checkpoint
  // that followed it) is dropped, so each epoch appears once.
  RunLog(std::string directory, std::vector<std::string> columns, int first_epoch = 1);
  // One row: every column must be given (missing or unknown names are errors).
  void add(const std::map<std::string, double>& row);
  const std::string& csv_path() const { return csv_path_; }
  const std::string& jsonl_path() const { return jsonl_path_; }

 private:
  void write() const;

  std::string csv_path_, jsonl_path_;
  std::vector<std::string> columns_;
  std::vector<std::string> csv_rows_, jsonl_rows_;  // without the header, without newlines
};

}  // namespace kiln::train
