// The safetensors format (github.com/huggingface/safetensors), read and written
// without the Python package: an 8-byte little-endian header length, a JSON header
//   {"name": {"dtype": "F32", "shape": [64, 3, 7, 7], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// and then the raw little-endian tensor bytes, row-major. kiln uses it for
// checkpoints and for the test fixtures written by tests/fixtures/make_fixtures.py.
#pragma once
#include <map>
#include <string>

#include "engine/tensor/tensor.h"

namespace kiln {

struct SafeTensors {
  std::map<std::string, Tensor> tensors;          // CPU, row-major
  std::map<std::string, std::string> metadata;    // "__metadata__"

  const Tensor& at(const std::string& name) const;  // throws naming the file's known keys
};

// Throws kiln::Error naming the file and what is wrong (truncated, bad JSON, offsets
// outside the data, unknown dtype).
SafeTensors load_safetensors(const std::string& path);
// Writes atomically (weights/atomic_file.h); tensors on any device/layout are
// written row-major from a host copy.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace kiln
