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

}  // namespace kiln
