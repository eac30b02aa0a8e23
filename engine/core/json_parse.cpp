#include "engine/core/json_parse.h"

#include "engine/core/check.h"
#include "engine/core/checked_math.h"

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

void throw_json_field_error(const std::string& what, const char* detail) {
  KILN_FAIL(what, ": a field is missing or has the wrong type: ", detail);
}

}  // namespace kiln
