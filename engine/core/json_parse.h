// Parsing JSON that came from a file (safetensors headers, kpack metadata, checkpoint
// metadata, run folders) with kiln's limits: a syntax error or a nesting deeper than
// kMaxJsonDepth becomes a kiln::Error naming `what` (the file and the field) and the
// byte offset, instead of an nlohmann exception or a stack overflow.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

nlohmann::json parse_json_limited(std::string_view text, const std::string& what);

// Integer fields of JSON read from a file. nlohmann's get<int64_t>() or get<int>() of a
// float casts it, which is undefined behaviour beyond the integer's range (found by
// tests/fuzz/fuzz_pack_set.cpp: a pack set "version" of 1.8e35 through get<int>()).
// These read a value as get<> does (a float in range is truncated, as before), refuse
// one out of range with an error naming `what` and `field`, and leave a wrong type (a
// string, say) to nlohmann's type error, which read_json_fields turns into a kiln::Error.
int64_t json_int64(const nlohmann::json& value, const std::string& what, const char* field);
std::vector<int64_t> json_int64s(const nlohmann::json& value, const std::string& what, const char* field);
int json_int(const nlohmann::json& value, const std::string& what, const char* field);
std::vector<int> json_ints(const nlohmann::json& value, const std::string& what, const char* field);
// object[field], or `fallback` where the object has no such field (json::value's rule).
int64_t json_int64_or(const nlohmann::json& object, const char* field, int64_t fallback, const std::string& what);
int json_int_or(const nlohmann::json& object, const char* field, int fallback, const std::string& what);

[[noreturn]] void throw_json_field_error(const std::string& what, const char* detail);

// Runs `read` (which reads fields of parsed JSON with .at() / .get<T>()) and turns
// nlohmann's type and missing-key exceptions into a kiln::Error naming `what`.
template <class Read>
auto read_json_fields(const std::string& what, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const nlohmann::json::exception& e) {
    throw_json_field_error(what, e.what());
  }
}

}  // namespace kiln
