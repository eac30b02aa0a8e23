#include "engine/core/error.h"

#include <cstring>

namespace kiln {

static std::string with_location(const std::string& message, const char* file, int line) {
  // Keep only the path from the repository's top folder on ("engine/ops/conv.cpp").
  const char* shown = file;
  for (const char* top : {"engine/", "kernels/", "models/", "data/", "weights/", "tools/", "tests/"}) {
    if (const char* hit = std::strstr(file, top)) { shown = hit; break; }
  }
  return message + " [" + shown + ":" + std::to_string(line) + "]";
}

Error::Error(const std::string& message, const char* file, int line)
    : std::runtime_error(with_location(message, file, line)), message_(message) {}

void throw_error(const std::string& message, const char* file, int line) {
  throw Error(message, file, line);
}

namespace {

std::string out_of_memory_message(const std::string& request, const std::string& module_path,
                                  const std::string& module_description, const std::string& backward) {
  std::string message = request;
  if (!backward.empty()) message += " in " + backward;
  if (!module_description.empty())
    message += std::string(backward.empty() ? " in the forward of " : ", ") +
               (module_path.empty() ? "the model" : module_path) + " " + module_description;
  return message;
}

}  // namespace

OutOfMemoryError::OutOfMemoryError(std::string request, const char* file, int line)
    : OutOfMemoryError(std::move(request), "", "", "", nullptr, file, line) {}

OutOfMemoryError::OutOfMemoryError(std::string request, std::string module_path, std::string module_description,
                                   std::string backward, const void* innermost_module, const char* file, int line)
    : Error(out_of_memory_message(request, module_path, module_description, backward), file, line),
      request_(std::move(request)),
      module_path_(std::move(module_path)),
      module_description_(std::move(module_description)),
      backward_(std::move(backward)),
      innermost_module_(innermost_module),
      file_(file),
      line_(line) {}

OutOfMemoryError OutOfMemoryError::in_module(const void* module, const std::string& description) const {
  return OutOfMemoryError(request_, module_path_, description, backward_, module, file_, line_);
}

OutOfMemoryError OutOfMemoryError::in_parent(const void* parent, const std::string& child_name) const {
  const std::string path = module_path_.empty() ? child_name : child_name + "." + module_path_;
  return OutOfMemoryError(request_, path, module_description_, backward_, parent, file_, line_);
}

OutOfMemoryError OutOfMemoryError::in_backward(const std::string& description) const {
  return OutOfMemoryError(request_, module_path_, module_description_, description, innermost_module_, file_,
                          line_);
}

}  // namespace kiln
