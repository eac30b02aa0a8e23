// SIGINT and SIGTERM during training: the first one asks the trainer to finish the
// step it is in, write a checkpoint and stop with a message saying how to resume
// (Ctrl-C, or a preemption notice from a scheduler, loses no work). A second signal
// while the checkpoint is being written is the way out: the default action ends
// the process at once, and the atomic writer leaves the previous checkpoint intact.
#pragma once
#include <csignal>

namespace kiln::train {

// While one of these lives, SIGINT and SIGTERM set a flag instead of ending the
// process; the handlers it found come back when it is destroyed. Each one keeps
// what it replaced, so nested ones (a run inside a command that already holds one)
// unwind in order and leave the process as it was.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

 private:
  struct sigaction previous_int_ {}, previous_term_ {};
};

// The signal number that asked to stop (SIGINT or SIGTERM), or 0.
int stop_requested();
// For tests: as if `signal` had arrived (0 clears it).
void request_stop(int signal);

}  // namespace kiln::train
