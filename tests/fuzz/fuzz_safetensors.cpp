// safetensors and checkpoints: load_safetensors and load_checkpoint on arbitrary
// bytes, through their file-reading code (weights/safetensors.cpp, checkpoint.cpp).
#include "engine/core/error.h"
#include "tests/fuzz/fuzz_util.h"
#include "weights/checkpoint.h"
#include "weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = kiln::fuzz::write_input("input.safetensors", data, size);
  try {
    kiln::load_safetensors(path);
  } catch (const kiln::Error&) {
  }
  try {
    kiln::load_checkpoint(path);
  } catch (const kiln::Error&) {
  }
  return 0;
}
