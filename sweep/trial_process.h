// A trial as a child process: `kiln train ...` started from the sweep's own binary,
// so a trial that crashes (or runs out of memory) ends only itself.
//
// The child gets its own process group (a Ctrl-C in the terminal reaches only the
// sweep, which then forwards one SIGINT/SIGTERM, so the trial checkpoints once instead
// of being hit twice), and PR_SET_PDEATHSIG: if the sweep itself is killed (kill -9),
// the kernel kills its trials too, so no orphan keeps training into a run folder that
// `kiln sweep --resume` is about to reuse. stdout and stderr are appended to a log.
#pragma once
#include <string>
#include <sys/types.h>
#include <vector>

namespace kiln::sweep {

class TrialProcess {
 public:
  // Starts `program args...` with stdout/stderr appended to log_path. Throws
  // kiln::Error naming the program when it cannot be started.
  TrialProcess(const std::string& program, const std::vector<std::string>& args, const std::string& log_path);
  ~TrialProcess();  // kills (SIGKILL) and reaps a child still running
  TrialProcess(const TrialProcess&) = delete;
  TrialProcess& operator=(const TrialProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signal_number);  // no-op once it has ended
  // Reaps without blocking; true once it has ended (then exit_code/term_signal are set).
  bool poll();
  void wait();  // blocks until it ends
  bool ended() const { return ended_; }
  int exit_code() const { return exit_code_; }      // -1 when killed by a signal
  int term_signal() const { return term_signal_; }  // 0 when it exited

 private:
  void reaped(int status);
  pid_t pid_ = -1;
  bool ended_ = false;
  int exit_code_ = -1, term_signal_ = 0;
};

// The last non-empty line of a log that starts with "kiln: error:" (or the last line).
std::string last_error_line(const std::string& log_path);

}  // namespace kiln::sweep
