// Helpers shared by the tests.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/core/backend_info.h"
#include "engine/tensor/tensor.h"
#include "weights/safetensors.h"

namespace kiln::test {

// True (and prints why once per test) when the GPU part of a test must be skipped.
inline bool skip_without_gpu(const char* what) {
  const std::string reason = gpu_unavailable_reason();
  if (reason.empty()) return false;
  MESSAGE("SKIPPED (GPU): " << std::string(what) << ": " << reason);
  return true;
}

// ||got - want|| / max(||want||, tiny): a relative error that is stable near zero.
inline double relative_l2(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) != std::isnan(want[i])) return INFINITY;
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

inline double max_abs_diff(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  return worst;
}

// Checks that fn throws a kiln::Error whose message contains every fragment.
template <class Fn>
void expect_error_containing(Fn&& fn, const std::vector<std::string>& fragments) {
  bool threw = false;
  try {
    fn();
  } catch (const kiln::Error& e) {
    threw = true;
    for (const std::string& fragment : fragments) {
      INFO("message: " << std::string(e.what()));
      CHECK(std::string(e.what()).find(fragment) != std::string::npos);
    }
  }
  CHECK_MESSAGE(threw, "expected a kiln::Error");
}

inline std::string shared_assets_dir() { return KILN_SHARED_ASSETS_DIR; }
inline std::string fixture_dir() { return KILN_FIXTURE_DIR; }

// A fixture written by tests/fixtures/make_fixtures.py, after checking its magic and
// version; a mismatch fails the test with the fixture's hint on how to regenerate it.
inline SafeTensors load_fixture(const std::string& file_name, const std::string& version = "1") {
  SafeTensors f = load_safetensors(fixture_dir() + "/" + file_name);
  const std::string hint = f.metadata.count("hint") ? f.metadata.at("hint") : "";
  REQUIRE_MESSAGE(f.metadata["magic"] == "kiln-fixture", file_name, " is not a kiln fixture; ", hint);
  REQUIRE_MESSAGE(f.metadata["version"] == version, file_name, ": fixture version differs; ", hint);
  return f;
}

}  // namespace kiln::test
