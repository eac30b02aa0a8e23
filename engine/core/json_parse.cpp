#include "engine/core/json_parse.h"

#include "engine/core/check.h"
#include "engine/core/checked_math.h"

#include <climits>
#include <cstdint>

namespace kiln {

namespace {
struct TooDeep {};
struct FloatOutOfRange {
  double value;
};
}  // namespace

nlohmann::json parse_json_limited(std::string_view text, const std::string& what) {
  // nlohmann's parser is iterative, but dump() and a few readers recurse: the callback
  // sees every value's depth while parsing and stops at the limit.
  // It also refuses a non-integer number beyond int64's range: a reader's
  // get<int64_t>() of one would be a float-to-integer cast out of range, undefined
  // behaviour (1.8e35 as a pack set's "version", found by tests/fuzz/fuzz_pack_set.cpp);
  // no number in a kiln file comes near 2^63. Readers of 32-bit fields go through
  // json_int() below for the same reason.
  const nlohmann::json::parser_callback_t limits = [](int depth, nlohmann::json::parse_event_t event,
                                                      nlohmann::json& parsed) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    if (event == nlohmann::json::parse_event_t::value && parsed.is_number_float()) {
      const double x = parsed.get<double>();
      if (!(x > -9223372036854775808.0 && x < 9223372036854775808.0)) throw FloatOutOfRange{x};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limits);
  } catch (const TooDeep&) {
    KILN_FAIL(what, ": JSON nested deeper than ", kMaxJsonDepth, " levels (kiln's limit; no kiln file nests so deep)");
  } catch (const FloatOutOfRange& e) {
    KILN_FAIL(what, ": the number ", e.value, " is beyond kiln's range for a file (magnitude below 2^63)");
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL(what, ": not valid JSON: ", e.what());
  }
}

int json_int(const nlohmann::json& value, const std::string& what, const char* field) {
  const int64_t wide = value.get<int64_t>();  // a float is in int64's range (above)
  KILN_CHECK(wide >= INT32_MIN && wide <= INT32_MAX, what, ": \"", field, "\" is ", value.dump(),
             ", beyond the 32-bit range this field has");
  return static_cast<int>(wide);
}

std::vector<int> json_ints(const nlohmann::json& value, const std::string& what, const char* field) {
  std::vector<int> out;
  for (const int64_t wide : value.get<std::vector<int64_t>>()) {
    KILN_CHECK(wide >= INT32_MIN && wide <= INT32_MAX, what, ": \"", field, "\" holds ", wide,
               ", beyond the 32-bit range this field has");
    out.push_back(static_cast<int>(wide));
  }
  return out;
}

void throw_json_field_error(const std::string& what, const char* detail) {
  KILN_FAIL(what, ": a field is missing or has the wrong type: ", detail);
}

}  // namespace kiln
