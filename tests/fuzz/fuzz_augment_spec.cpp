// The --augment spec parser (engine/augment/augment.cpp) on arbitrary text; what it
// accepts must print back to a spec that parses to the same canonical text.
#include <string>

#include "engine/augment/augment.h"
#include "engine/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const kiln::augment::AugmentSpec spec = kiln::augment::parse_augment_spec(text);
    const std::string canonical = kiln::augment::augment_spec_to_string(spec);
    const std::string again = kiln::augment::augment_spec_to_string(kiln::augment::parse_augment_spec(canonical));
    if (again != canonical) __builtin_trap();  // the canonical form must be a fixed point
  } catch (const kiln::Error&) {
  }
  return 0;
}
