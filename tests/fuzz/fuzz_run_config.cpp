// Run configs as `kiln eval` / `kiln predict` read them from a checkpoint's
// kiln.config metadata: JSON with kiln's limits, then build_model_from_config
// (tools/model_options.cpp) builds the model it describes.
#include <string>

#include "engine/core/error.h"
#include "engine/core/json_parse.h"
#include "tools/model_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json config = kiln::parse_json_limited(text, "fuzz config");
    kiln::tools::build_model_from_config(config);
  } catch (const kiln::Error&) {
  }
  return 0;
}
