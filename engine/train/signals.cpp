#include "engine/train/signals.h"

#include <csignal>

namespace kiln::train {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;  // written by the handler, read between steps

extern "C" void on_stop_signal(int signal) {
  g_stop_signal = signal;
  // One request is enough: the next SIGINT/SIGTERM takes the default action and ends
  // the process (async-signal-safe: only sigaction and a flag).
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
}

}  // namespace

StopOnSignal::StopOnSignal() {
  g_stop_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

int stop_requested() { return g_stop_signal; }

void request_stop(int signal) { g_stop_signal = signal; }

}  // namespace kiln::train
