// One writer per run folder. Two `kiln train` processes on the same folder would
// interleave their epochs.csv rows and overwrite each other's checkpoints; the
// second one now stops with an error naming the process that holds the folder.
//
// The lock is flock(2) on RUN/.kiln.lock, which also holds the holder's pid and
// command for the message. flock belongs to the open file, and the kernel drops it
// when the process ends however it ends (kill -9, a power cut on a local disk), so a
// lock file left by a dead process is simply taken over: there is no pid liveness
// guess and no window where two processes both believe they hold it.
#pragma once
#include <string>

namespace kiln::train {

class RunLock {
 public:
  // Creates the folder if needed and takes its lock, or throws kiln::Error naming the
  // folder and the pid (and command) of the process that holds it.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }
  // The pid the lock file named when it was taken over from a process that had
  // ended without removing it; 0 when the file was new or empty.
  long previous_pid() const { return previous_pid_; }
  // Half-written temporaries of the atomic writer ("*.tmp.<pid>") that an ended
  // process left in the folder and that were removed when the lock was taken.
  int removed_temporaries() const { return removed_temporaries_; }

 private:
  std::string path_;
  int fd_ = -1;
  long previous_pid_ = 0;
  int removed_temporaries_ = 0;
};

}  // namespace kiln::train
