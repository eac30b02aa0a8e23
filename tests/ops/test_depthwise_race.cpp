// The automatic depthwise policy's decision logic (engine/ops/depthwise_race.h) with
// injected paths and timing, so it runs on any machine: a path that throws on a
// problem (cuDNN refusing it) loses without being timed, the faster path wins
// otherwise, the winner runs last and is cached, and both failing is one error with
// both reasons. Also DepthwiseConvPathGuard, which conv2d's dispatch runs each side
// of the race under. (On the GPU: tests/cuda/test_depthwise_conv_cuda.cpp.)
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "engine/ops/depthwise_race.h"
#include "test_util.h"

using namespace kiln;

namespace {

// Two fake paths that log their runs, and a timing that logs its call and returns
// fixed times (the real one records CUDA events).
struct FakePaths {
  std::vector<std::string> runs;
  int timings = 0;
  bool custom_fails = false, library_fails = false;
  double custom_ms = 1, library_ms = 2;

  std::function<void()> custom() {
    return [this] {
      runs.push_back("custom");
      if (custom_fails) KILN_FAIL("depthwise_conv2d_forward (cuda): 99999 taps exceed the grid limits");
    };
  }
  std::function<void()> library() {
    return [this] {
      runs.push_back("library");
      if (library_fails)
        KILN_FAIL("cudnnConvolutionForward(...) failed: CUDNN_STATUS_NOT_SUPPORTED");
    };
  }
  DepthwiseRaceTiming timing() {
    return [this](const std::vector<std::function<void()>>& paths, int repeats) {
      ++timings;
      CHECK(paths.size() == 2);
      CHECK(repeats == kDepthwiseRaceRepeats);
      for (int r = 0; r < repeats; ++r)
        for (const auto& path : paths) path();
      return std::vector<double>{custom_ms, library_ms};
    };
  }
};

bool has_line(const std::string& prefix, const std::string& fragment) {
  for (const std::string& line : depthwise_race_choices())
    if (line.rfind(prefix, 0) == 0 && line.find(fragment) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("depthwise race: a library that refuses the problem loses, untimed, and the custom kernel is cached") {
  FakePaths paths;
  paths.library_fails = true;
  const std::string key = "test race: library refuses";
  const DepthwiseRaceResult first = run_depthwise_race(key, paths.custom(), paths.library(), paths.timing());
  CHECK(first.custom);
  CHECK(first.custom_error.empty());
  CHECK(first.library_error.find("CUDNN_STATUS_NOT_SUPPORTED") != std::string::npos);
  CHECK(paths.timings == 0);  // nothing to time against
  // Warm-up of each, then the winner last (a failed path may have written part of the output).
  CHECK(paths.runs == std::vector<std::string>{"custom", "library", "custom"});
  // Later calls run the cached winner only: the library is not asked again.
  paths.runs.clear();
  const DepthwiseRaceResult second = run_depthwise_race(key, paths.custom(), paths.library(), paths.timing());
  CHECK(second.custom);
  CHECK(paths.runs == std::vector<std::string>{"custom"});
  REQUIRE(depthwise_race_choice(key).has_value());
  CHECK(depthwise_race_choice(key)->custom);
  CHECK(has_line(key + ":", "cudnn failed ("));
  CHECK(has_line(key + ":", "-> custom"));
}

TEST_CASE("depthwise race: a custom kernel that refuses the problem loses to the library") {
  FakePaths paths;
  paths.custom_fails = true;
  const std::string key = "test race: custom refuses";
  const DepthwiseRaceResult result = run_depthwise_race(key, paths.custom(), paths.library(), paths.timing());
  CHECK_FALSE(result.custom);
  CHECK(result.custom_error.find("grid limits") != std::string::npos);
  CHECK(paths.timings == 0);
  CHECK(paths.runs.back() == "library");
  CHECK(has_line(key + ":", "-> cudnn"));
}

TEST_CASE("depthwise race: when both paths run, the faster wins and runs last") {
  for (bool custom_faster : {true, false}) {
    CAPTURE(custom_faster);
    FakePaths paths;
    paths.custom_ms = custom_faster ? 0.5 : 3.0;
    paths.library_ms = 1.0;
    const std::string key = std::string("test race: both run, custom faster = ") + (custom_faster ? "yes" : "no");
    const DepthwiseRaceResult result = run_depthwise_race(key, paths.custom(), paths.library(), paths.timing());
    CHECK(result.custom == custom_faster);
    CHECK(result.custom_ms == paths.custom_ms);
    CHECK(result.library_ms == paths.library_ms);
    CHECK(paths.timings == 1);
    // 2 warm-up runs + 2 * kDepthwiseRaceRepeats timed runs + the winner.
    REQUIRE(paths.runs.size() == 2 + 2 * kDepthwiseRaceRepeats + 1);
    CHECK(paths.runs.back() == (custom_faster ? "custom" : "library"));
  }
}

TEST_CASE("depthwise race: when neither path can run the problem, one error gives both reasons") {
  FakePaths paths;
  paths.custom_fails = paths.library_fails = true;
  const std::string key = "test race: both refuse";
  test::expect_error_containing([&] { run_depthwise_race(key, paths.custom(), paths.library(), paths.timing()); },
                                {key, "grid limits", "CUDNN_STATUS_NOT_SUPPORTED"});
  CHECK_FALSE(depthwise_race_choice(key).has_value());  // nothing cached: the next call tries again
}

TEST_CASE("depthwise path guard: overrides the setting on its own thread only, and nests") {
  struct Restore {
    DepthwiseConvPath saved = depthwise_conv_path();
    ~Restore() { set_depthwise_conv_path(saved); }
  } restore;
  set_depthwise_conv_path(DepthwiseConvPath::automatic);
  {
    const DepthwiseConvPathGuard outer(DepthwiseConvPath::library);
    CHECK(depthwise_conv_path() == DepthwiseConvPath::library);
    {
      const DepthwiseConvPathGuard inner(DepthwiseConvPath::custom);
      CHECK(depthwise_conv_path() == DepthwiseConvPath::custom);
    }
    CHECK(depthwise_conv_path() == DepthwiseConvPath::library);
    DepthwiseConvPath other_thread = DepthwiseConvPath::custom;
    std::thread([&] { other_thread = depthwise_conv_path(); }).join();
    CHECK(other_thread == DepthwiseConvPath::automatic);
  }
  CHECK(depthwise_conv_path() == DepthwiseConvPath::automatic);
}
