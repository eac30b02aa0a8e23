// kiln::Error — the one exception type the library throws.
//
// Library code never calls exit(): it throws kiln::Error with a message that names
// the op, the tensor and what was expected ("conv2d: weight must be (K, C/groups, R, S)
// = (64, 3, 7, 7), got (64, 1, 7, 7)"), plus the file:line of the check. Only
// tools/kiln.cpp turns an Error into an exit code.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file, int line);
  const std::string& message() const { return message_; }  // without the file:line suffix

 private:
  std::string message_;
};

// Concatenate any streamable values into one string: str("got ", 3, " dims").
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void throw_error(const std::string& message, const char* file, int line);

}  // namespace kiln
