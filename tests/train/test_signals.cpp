// StopOnSignal (engine/train/signals.h): while one lives, SIGTERM sets the stop flag
// instead of ending the process, and each one puts back the handlers it found, so
// nested ones leave the process as it was.
#include <doctest/doctest.h>

#include <csignal>

#include "engine/train/signals.h"

namespace {
void (*term_handler())(int) {
  struct sigaction current {};
  sigaction(SIGTERM, nullptr, &current);
  return current.sa_handler;
}
}  // namespace

TEST_CASE("stop on signal: SIGTERM sets the flag, and nested guards put back the handlers each found") {
  void (*const before)(int) = term_handler();
  {
    const kiln::train::StopOnSignal outer;
    void (*const installed)(int) = term_handler();
    CHECK((installed != before));
    {
      const kiln::train::StopOnSignal inner;  // a run inside a command that holds one
      CHECK((term_handler() == installed));
    }
    CHECK((term_handler() == installed));
    std::raise(SIGTERM);  // the handler only records it
    CHECK(kiln::train::stop_requested() == SIGTERM);
    kiln::train::request_stop(0);
  }
  CHECK((term_handler() == before));  // the first guard's copy of the handlers it found, not the second's
}
