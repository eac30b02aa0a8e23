// The runner's pure parts (sweep/runner.h) and trial processes (sweep/trial_process.h):
// the trials a journal creates, the kiln train arguments of a trial, and a child
// process's exit code, signal and log.
#include <doctest/doctest.h>

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "sweep/runner.h"
#include "sweep/trial_process.h"

using namespace kiln::sweep;

namespace {

SweepConfig grid_config(const std::string& method) {
  return parse_sweep_config(yaml_to_json("method: " + method +
                                             "\nepochs: 3\nparameters:\n  activation: {values: [relu, gelu, silu]}\n"
                                             "  filters: {values: [4, 8]}\n  dense: {value: 16}\n",
                                         "g.yaml"),
                            "g.yaml");
}

}  // namespace

TEST_CASE("sweep runner: a grid makes one trial per point, --max-runs a seeded sample without repeats") {
  const SweepConfig config = grid_config("grid");
  Journal all = new_journal(config, 0);
  CHECK(all.run_cap == 6);
  for (int i = 0; i < 6; ++i) create_trial(all, config.parameters, "sweeps/g");
  CHECK(all.trials[0].params == nlohmann::json({{"activation", "relu"}, {"dense", 16}, {"filters", 4}}));
  CHECK(all.trials[5].params == nlohmann::json({{"activation", "silu"}, {"dense", 16}, {"filters", 8}}));
  Journal some = new_journal(config, 4), again = new_journal(config, 4);
  CHECK(some.run_cap == 4);
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    const Trial& t = create_trial(some, config.parameters, "sweeps/g");
    CHECK(t.params == create_trial(again, config.parameters, "sweeps/g").params);
    seen.insert(t.params.dump());
  }
  CHECK(seen.size() == 4);
  // halving over values: lists races the grid.
  CHECK(new_journal(grid_config("halving"), 0).run_cap == 6);
}

TEST_CASE("sweep runner: a trial's kiln train arguments and its ready command") {
  const SweepConfig config = grid_config("grid");
  Journal j = new_journal(config, 0);
  const Trial& t = create_trial(j, config.parameters, "sweeps/g");
  CHECK(t.name == "trial-000");
  CHECK(t.status == "pending");
  CHECK(trial_arguments(j, t, "sweeps/g") ==
        std::vector<std::string>{"fashion-mnist", "--epochs=3", "--monitor=val_accuracy",
                                 "--split-file=sweeps/g/split.json", "--run-dir=sweeps/g/trial-000", "--quiet",
                                 "--activation=relu", "--dense=16", "--filters=4"});
  CHECK(t.command ==
        "kiln train fashion-mnist --epochs=3 --monitor=val_accuracy --split-file=sweeps/g/split.json "
        "--run-dir=sweeps/g/trial-000 --quiet --activation=relu --dense=16 --filters=4");
  CHECK(parameter_arguments({{"augment", "crop:0.6-1,hflip:0.5"}, {"nesterov", true}}) ==
        std::vector<std::string>{"--augment=crop:0.6-1,hflip:0.5", "--nesterov=true"});
}

TEST_CASE("sweep trial process: exit code, signal and the log's last error line") {
  const std::string log = std::filesystem::temp_directory_path() / ("kiln_sweep_trial_" + std::to_string(getpid()) + ".log");
  std::filesystem::remove(log);
  {
    TrialProcess p("/bin/sh", {"-c", "echo step 1; echo 'kiln: error: out of memory' >&2; echo bye; exit 3"}, log);
    p.wait();
    CHECK(p.exit_code() == 3);
    CHECK(p.term_signal() == 0);
  }
  CHECK(last_error_line(log) == "kiln: error: out of memory");
  {
    TrialProcess p("/bin/sh", {"-c", "exec sleep 30"}, log);
    CHECK_FALSE(p.poll());
    p.signal(SIGTERM);
    p.wait();
    CHECK(p.term_signal() == SIGTERM);
    CHECK(p.exit_code() == -1);
  }
  {
    TrialProcess p("/nonexistent/kiln", {}, log);
    p.wait();
    CHECK(p.exit_code() == 127);
  }
  CHECK(last_error_line(log) == "kiln: error: the trial could not be started (exec failed)");
  std::filesystem::remove(log);
}

namespace {
// For the length of a test: this thread's signal mask and some signals' handlers as
// the caller of TrialProcess might have them, then back as they were.
class CallerSignalState {
 public:
  CallerSignalState(const sigset_t& blocked, void (*term_handler)(int)) {
    pthread_sigmask(SIG_BLOCK, &blocked, &mask_);
    struct sigaction ignore {}, handle {};
    ignore.sa_handler = SIG_IGN;
    handle.sa_handler = term_handler;
    sigaction(SIGINT, &ignore, &int_);
    sigaction(SIGTERM, &handle, &term_);
  }
  ~CallerSignalState() {
    sigaction(SIGINT, &int_, nullptr);
    sigaction(SIGTERM, &term_, nullptr);
    pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
  }

 private:
  sigset_t mask_;
  struct sigaction int_ {}, term_ {};
};

volatile sig_atomic_t g_terms_caught = 0;
extern "C" void count_term(int) { g_terms_caught = g_terms_caught + 1; }

std::string log_line_starting(const std::string& log, const std::string& prefix) {
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line;
  return "(no line starting " + prefix + " in " + log + ")";
}

// The signals of a /proc/PID/status mask line ("SigIgn:\t0000000180000000": bit s-1
// for signal s).
std::set<int> signals_in(const std::string& status_line) {
  const std::size_t tab = status_line.find('\t');
  REQUIRE_MESSAGE(tab != std::string::npos, status_line);
  const unsigned long long bits = std::stoull(status_line.substr(tab + 1), nullptr, 16);
  std::set<int> signals;
  for (int s = 1; s <= 64; ++s)
    if ((bits >> (s - 1)) & 1ULL) signals.insert(s);
  return signals;
}

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
// For the length of a test: glibc's own signals 32 and 33 ignored, as CI's runner has
// them (its SigIgn read 0000000180000000). glibc's sigaction refuses them, so this
// goes to the kernel directly, with the kernel's struct (the same on x86-64 and arm64).
class GlibcSignalsIgnored {
 public:
  GlibcSignalsIgnored() {
    for (int i = 0; i < 2; ++i) {
      KernelSigaction ignore{};
      ignore.handler = SIG_IGN;
      REQUIRE(::syscall(SYS_rt_sigaction, 32 + i, &ignore, &previous_[i], sizeof(uint64_t)) == 0);
    }
  }
  ~GlibcSignalsIgnored() {
    for (int i = 0; i < 2; ++i) ::syscall(SYS_rt_sigaction, 32 + i, &previous_[i], nullptr, sizeof(uint64_t));
  }

 private:
  struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  };
  KernelSigaction previous_[2]{};
};
#endif
}  // namespace

TEST_CASE("sweep trial process: a trial starts with no blocked signals and default handlers, whatever its caller has") {
  // The sweep forwards SIGTERM to a trial, maybe just after starting it. Before the
  // child's execv it is a copy of the caller: a caller's handler that ran there (a
  // test runner's crash handler, StopOnSignal) swallowed the signal or reported a
  // crash of the parent's test, and a blocked or ignored signal stayed so in the trial.
  const std::string log = std::filesystem::temp_directory_path() / ("kiln_sweep_signals_" + std::to_string(getpid()) + ".log");
  std::filesystem::remove(log);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  {
    const CallerSignalState caller(term, count_term);  // SIGTERM blocked and handled, SIGINT ignored
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
    const GlibcSignalsIgnored as_on_ci;  // the trial must start with them at their default too
#endif
    TrialProcess p("/bin/grep", {"-E", "^Sig(Blk|Ign):", "/proc/self/status"}, log);
    p.wait();
    CHECK(p.exit_code() == 0);
    // A SIGTERM sent at once is pending in the child until it has dropped our handler:
    // the trial ends by SIGTERM's default action, at once.
    TrialProcess sleeper("/bin/sleep", {"10"}, log);
    sleeper.signal(SIGTERM);
    sleeper.wait();
    CHECK(sleeper.term_signal() == SIGTERM);
  }
  for (const char* mask : {"SigBlk:", "SigIgn:"}) {
    const std::string line = log_line_starting(log, mask);
    std::set<int> left = signals_in(line);
#if !(defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)))
    // Elsewhere the child cannot reset glibc's own signals (32 up to SIGRTMIN).
    for (int s = 32; s < SIGRTMIN; ++s) left.erase(s);
#endif
    CHECK_MESSAGE(left.empty(), line);
  }
  {
    // Not blocked in the caller: the race between fork and execv, many times.
    const sigset_t nothing = [] {
      sigset_t s;
      sigemptyset(&s);
      return s;
    }();
    const CallerSignalState caller(nothing, count_term);
    for (int i = 0; i < 20; ++i) {
      TrialProcess sleeper("/bin/sleep", {"10"}, log);
      sleeper.signal(SIGTERM);
      sleeper.wait();
      CAPTURE(i);
      CHECK(sleeper.term_signal() == SIGTERM);
    }
  }
  CHECK(g_terms_caught == 0);  // and none reached this process
  std::filesystem::remove(log);
}
