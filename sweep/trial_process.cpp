#include "sweep/trial_process.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "engine/core/check.h"

namespace kiln::sweep {

TrialProcess::TrialProcess(const std::string& program, const std::vector<std::string>& args,
                           const std::string& log_path) {
  // Everything the child needs is prepared before fork: after fork, in a process
  // with threads, only async-signal-safe calls are allowed until exec.
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  KILN_CHECK(log >= 0, "trial log ", log_path, ": cannot be opened: ", std::strerror(errno));
  const pid_t parent = ::getpid();
  // The child starts as a copy of this process: its signal handlers and this
  // thread's signal mask. A signal sent to the child before it reaches execv (the
  // sweep forwards SIGTERM to a trial it has just started) would run one of our
  // handlers in the child: a test runner's crash handler prints a crash of the
  // parent's test and ends the child; StopOnSignal's sets a flag in the child and
  // the SIGTERM is lost, so the trial runs to the end. So every signal is blocked
  // across fork; the child sets every handler back to the default and unblocks all
  // signals (a trial starts with a clean mask and no ignored signals, as from a
  // shell), and only then can a pending signal arrive, with its default action.
  // glibc keeps signals 32 and 33 (below SIGRTMIN) for its threads and its sigaction
  // refuses them, so the child resets those in the kernel directly (CI's runner had
  // them ignored, and that passed to the trial).
  sigset_t all_signals, caller_mask;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &caller_mask);
  pid_ = ::fork();
  if (pid_ == 0) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &default_action, nullptr);  // EINVAL for SIGKILL, SIGSTOP, 32, 33: fine
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
    // The kernel's struct sigaction on x86-64 and arm64: handler, flags, restorer, mask.
    struct {
      void (*handler)(int);
      unsigned long flags;
      void (*restorer)();
      uint64_t mask;
    } kernel_default{};
    kernel_default.handler = SIG_DFL;
    for (int s = 32; s < SIGRTMIN; ++s) ::syscall(SYS_rt_sigaction, s, &kernel_default, nullptr, sizeof(uint64_t));
#endif
    sigset_t no_signals;
    sigemptyset(&no_signals);
    ::sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the sweep ended between fork and prctl
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execv(program.c_str(), argv.data());
    static const char message[] = "kiln: error: the trial could not be started (exec failed)\n";
    (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &caller_mask, nullptr);
  ::close(log);
  KILN_CHECK(pid_ > 0, "cannot start a trial process (", program, "): ", std::strerror(fork_errno));
}

TrialProcess::~TrialProcess() {
  if (pid_ > 0 && !ended_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void TrialProcess::signal(int signal_number) {
  if (pid_ > 0 && !ended_) ::kill(pid_, signal_number);
}

void TrialProcess::reaped(int status) {
  ended_ = true;
  if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
}

bool TrialProcess::poll() {
  if (ended_) return true;
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) reaped(status);
  return ended_;
}

void TrialProcess::wait() {
  if (ended_) return;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped(status);
}

std::string last_error_line(const std::string& log_path) {
  std::ifstream file(log_path);
  std::string line, last, error;
  while (std::getline(file, line)) {
    // Progress bars redraw with \r: keep what the line shows last.
    const size_t cr = line.find_last_of('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (line.empty()) continue;
    last = line;
    if (line.rfind("kiln: error:", 0) == 0) error = line;
  }
  return error.empty() ? last : error;
}

}  // namespace kiln::sweep
