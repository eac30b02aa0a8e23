// EnvSetting (engine/core/env_setting.h), the process-wide choices such as KILN_CPU_CONV:
// the variable's value on first use, the fallback when it is unset or empty, a set()
// that wins afterwards, and a bad value refused with an error naming the variable.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "engine/core/env_setting.h"
#include "engine/core/check.h"
#include "test_util.h"

using namespace kiln;

namespace {
enum class Flavour { plain, spiced };

Flavour parse_flavour(const std::string& text, const char* where) {
  if (text == "plain") return Flavour::plain;
  if (text == "spiced") return Flavour::spiced;
  KILN_FAIL(where, ": expected plain or spiced, got '", text, "'");
}
}  // namespace

TEST_CASE("EnvSetting starts from its environment variable, falls back when unset or empty, and set() wins") {
  const char* variable = "KILN_TEST_ENV_SETTING_FLAVOUR";
  ::unsetenv(variable);
  CHECK(EnvSetting<Flavour>(variable, Flavour::plain, parse_flavour).get() == Flavour::plain);
  ::setenv(variable, "", 1);
  CHECK(EnvSetting<Flavour>(variable, Flavour::plain, parse_flavour).get() == Flavour::plain);
  ::setenv(variable, "spiced", 1);
  EnvSetting<Flavour> setting(variable, Flavour::plain, parse_flavour);
  CHECK(setting.get() == Flavour::spiced);
  ::setenv(variable, "plain", 1);  // read once, when the setting is made
  CHECK(setting.get() == Flavour::spiced);
  setting.set(Flavour::plain);
  CHECK(setting.get() == Flavour::plain);

  ::setenv(variable, "salty", 1);
  test::expect_error_containing([&] { EnvSetting<Flavour>(variable, Flavour::plain, parse_flavour); },
                                {"environment variable KILN_TEST_ENV_SETTING_FLAVOUR", "expected plain or spiced",
                                 "got 'salty'"});
  ::unsetenv(variable);
}
