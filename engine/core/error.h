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

// Out of memory, on the host or on a device. The caching allocator throws it
// (engine/memory/caching_allocator.cpp) with the request and the memory in use; the
// layers it travels through say where it happened, because "could not allocate
// 400 MB" alone does not tell a user which layer or which batch size to change:
//   - nn::Module::forward names the innermost module and its input shape, and each
//     parent prepends the child's name, giving the path "layer3.0.conv1";
//   - the autograd tape names the op whose backward was running.
// Each step rethrows a new error (what() of a std::exception cannot change).
class OutOfMemoryError : public Error {
 public:
  OutOfMemoryError(std::string request, const char* file, int line);

  const std::string& request() const { return request_; }  // "out of memory on cuda:0: could not allocate ..."
  const std::string& module_path() const { return module_path_; }
  const void* innermost_module() const { return innermost_module_; }  // identity only, never dereferenced

  // Innermost module: "(Conv2d, input (64, 128, 24, 24))" for `module`.
  OutOfMemoryError in_module(const void* module, const std::string& description) const;
  // A parent module: prepends the child's name to the path and becomes the innermost.
  OutOfMemoryError in_parent(const void* parent, const std::string& child_name) const;
  // The backward of an op: "the backward of conv2d (gradient (64, 128, 24, 24))".
  OutOfMemoryError in_backward(const std::string& description) const;

 private:
  OutOfMemoryError(std::string request, std::string module_path, std::string module_description,
                   std::string backward, const void* innermost_module, const char* file, int line);
  std::string request_, module_path_, module_description_, backward_;
  const void* innermost_module_ = nullptr;
  const char* file_;
  int line_;
};

}  // namespace kiln
