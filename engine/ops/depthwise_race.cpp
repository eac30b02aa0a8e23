// The automatic depthwise policy's decision logic (see depthwise_race.h).
#include "engine/ops/depthwise_race.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace kiln {

namespace {

std::mutex race_mutex;
std::unordered_map<std::string, DepthwiseRaceResult>& race_cache() {
  static std::unordered_map<std::string, DepthwiseRaceResult> cache;
  return cache;
}

// Runs one path; "" when it ran, else the reason it could not (its error message).
std::string try_run(const std::function<void()>& path) {
  try {
    path();
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace

DepthwiseRaceResult run_depthwise_race(const std::string& key, const std::function<void()>& custom,
                                       const std::function<void()>& library, const DepthwiseRaceTiming& timing) {
  {
    std::lock_guard<std::mutex> lock(race_mutex);
    if (auto found = race_cache().find(key); found != race_cache().end()) {
      const DepthwiseRaceResult cached = found->second;
      (cached.custom ? custom : library)();
      return cached;
    }
  }
  // Warm-up (first launches, the library's algorithm choice, workspace growth), and
  // the test of whether each path can run this problem at all.
  DepthwiseRaceResult result;
  result.custom_error = try_run(custom);
  result.library_error = try_run(library);
  KILN_CHECK(result.custom_error.empty() || result.library_error.empty(), "conv2d: neither kiln's depthwise kernel nor ",
             "the library can run ", key, ". kiln's kernel: ", result.custom_error, " The library: ",
             result.library_error);
  constexpr double kFailed = std::numeric_limits<double>::infinity();
  if (result.custom_error.empty() && result.library_error.empty()) {
    const std::vector<double> best_ms = timing({custom, library}, kDepthwiseRaceRepeats);
    KILN_CHECK(best_ms.size() == 2, "depthwise race: the timing returned ", best_ms.size(), " times for 2 paths");
    result.custom_ms = best_ms[0];
    result.library_ms = best_ms[1];
    result.custom = result.custom_ms < result.library_ms;
  } else {
    result.custom = result.custom_error.empty();  // exactly one path failed: the other wins
    result.custom_ms = result.custom_error.empty() ? 0 : kFailed;
    result.library_ms = result.library_error.empty() ? 0 : kFailed;
  }
  {
    std::lock_guard<std::mutex> lock(race_mutex);
    race_cache().emplace(key, result);  // a second racer of the same key keeps the first result
  }
  // The output already holds a result (each run overwrites it), but a failed path may
  // have written part of it, and running the winner last keeps the first call's bits
  // the same as the later calls'.
  (result.custom ? custom : library)();
  return result;
}

std::vector<std::string> depthwise_race_choices() {
  std::lock_guard<std::mutex> lock(race_mutex);
  std::vector<std::string> lines;
  auto describe = [](double ms, const std::string& error) {
    return error.empty() ? str(ms, " ms") : str("failed (", error, ")");
  };
  for (const auto& [key, choice] : race_cache())
    lines.push_back(str(key, ": custom ", describe(choice.custom_ms, choice.custom_error), ", cudnn ",
                        describe(choice.library_ms, choice.library_error), " -> ",
                        choice.custom ? "custom" : "cudnn"));
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::optional<DepthwiseRaceResult> depthwise_race_choice(const std::string& key) {
  std::lock_guard<std::mutex> lock(race_mutex);
  if (auto found = race_cache().find(key); found != race_cache().end()) return found->second;
  return std::nullopt;
}

}  // namespace kiln
