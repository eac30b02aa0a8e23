// Parsing JSON that came from a file (safetensors headers, kpack metadata, checkpoint
// metadata, run folders) with kiln's limits: a syntax error or a nesting deeper than
// kMaxJsonDepth becomes a kiln::Error naming `what` (the file and the field) and the
// byte offset, instead of an nlohmann exception or a stack overflow.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// Also refuses a non-integer number of magnitude 2^63 or more (see the .cpp).
nlohmann::json parse_json_limited(std::string_view text, const std::string& what);

// A 32-bit integer field of JSON from parse_json_limited: get<int>() of a float
// beyond int's range is undefined behaviour, so it is read as int64 and checked;
// the error names `what` and `field`.
int json_int(const nlohmann::json& value, const std::string& what, const char* field);
std::vector<int> json_ints(const nlohmann::json& value, const std::string& what, const char* field);

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
