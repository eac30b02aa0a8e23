#include "engine/core/json_parse.h"

#include "engine/core/check.h"
#include "engine/core/checked_math.h"

#include <climits>
#include <cstdint>

namespace kiln {

namespace {
struct TooDeep {};
}  // namespace

nlohmann::json parse_json_limited(std::string_view text, const std::string& what) {
  // nlohmann's parser is iterative, but dump() and a few readers recurse: the callback
  // sees every value's depth while parsing and stops at the limit.
  const nlohmann::json::parser_callback_t limit_depth = [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit_depth);
  } catch (const TooDeep&) {
    KILN_FAIL(what, ": JSON nested deeper than ", kMaxJsonDepth, " levels (kiln's limit; no kiln file nests so deep)");
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL(what, ": not valid JSON: ", e.what());
  }
}

int64_t json_int64(const nlohmann::json& value, const std::string& what, const char* field) {
  if (value.is_number_float()) {
    const double x = value.get<double>();
    KILN_CHECK(x > -9223372036854775808.0 && x < 9223372036854775808.0, what, ": \"", field, "\" is ", value.dump(),
               ", outside the range of a 64-bit integer");
  }
  return value.get<int64_t>();  // in range, or not a number: nlohmann's type error
}

std::vector<int64_t> json_int64s(const nlohmann::json& value, const std::string& what, const char* field) {
  if (!value.is_array()) return value.get<std::vector<int64_t>>();  // nlohmann's type error
  std::vector<int64_t> out;
  out.reserve(value.size());
  for (const nlohmann::json& item : value) out.push_back(json_int64(item, what, field));
  return out;
}

int64_t json_int64_or(const nlohmann::json& object, const char* field, int64_t fallback, const std::string& what) {
  return object.is_object() && object.contains(field) ? json_int64(object.at(field), what, field) : fallback;
}

int json_int(const nlohmann::json& value, const std::string& what, const char* field) {
  const int64_t wide = json_int64(value, what, field);
  KILN_CHECK(wide >= INT32_MIN && wide <= INT32_MAX, what, ": \"", field, "\" is ", value.dump(),
             ", outside the range of a 32-bit integer");
  return static_cast<int>(wide);
}

std::vector<int> json_ints(const nlohmann::json& value, const std::string& what, const char* field) {
  if (!value.is_array()) return value.get<std::vector<int>>();  // nlohmann's type error
  std::vector<int> out;
  out.reserve(value.size());
  for (const nlohmann::json& item : value) out.push_back(json_int(item, what, field));
  return out;
}

int json_int_or(const nlohmann::json& object, const char* field, int fallback, const std::string& what) {
  return object.is_object() && object.contains(field) ? json_int(object.at(field), what, field) : fallback;
}

void throw_json_field_error(const std::string& what, const char* detail) {
  KILN_FAIL(what, ": a field is missing or has the wrong type: ", detail);
}

}  // namespace kiln
