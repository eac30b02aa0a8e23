// The IDX format of MNIST and Fashion-MNIST (yann.lecun.com/exdb/mnist): a
// big-endian header (magic 0x00000803 for images with 3 dims, 0x00000801 for labels)
// and raw uint8 data, usually gzip-compressed. Debian's dataset-fashion-mnist
// installs the four files under /usr/share/datasets/fashion-mnist.
#pragma once
#include <string>

#include "data/dataset.h"

namespace kiln::data {

extern const char* const kFashionMnistDir;  // /usr/share/datasets/fashion-mnist

// split = "train" (60,000 images) or "test" (10,000); images come out as (N, 1, 28, 28).
Dataset load_fashion_mnist(const std::string& directory, const std::string& split);

// One IDX file (gzip or plain); throws naming the file when the magic or sizes are wrong.
Tensor read_idx(const std::string& path);

}  // namespace kiln::data
