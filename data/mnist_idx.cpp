#include "data/mnist_idx.h"

#include <zlib.h>

#include <cstring>

#include "engine/tensor/factory.h"

namespace kiln::data {

const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

namespace {

// The whole (decompressed) file; gzopen reads plain files too.
std::string read_all(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  KILN_CHECK(file, "cannot open IDX file '", path, "': ", std::strerror(errno),
             " (Fashion-MNIST comes from Debian's dataset-fashion-mnist package: apt-get install dataset-fashion-mnist)");
  std::string bytes;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) bytes.append(buffer, static_cast<size_t>(n));
  const bool failed = n < 0;
  gzclose(file);
  KILN_CHECK(!failed, "IDX file '", path, "' is corrupt (gzip error)");
  return bytes;
}

uint32_t big_endian(const std::string& bytes, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

Tensor read_idx(const std::string& path) {
  const std::string bytes = read_all(path);
  KILN_CHECK(bytes.size() >= 8, "IDX file '", path, "' is too short for a header (", bytes.size(), " bytes)");
  const uint32_t magic = big_endian(bytes, 0);
  KILN_CHECK((magic >> 8) == 0x08, "IDX file '", path, "': element type 0x", std::hex, (magic >> 8),
             " is not unsigned byte (0x08)");
  const int rank = static_cast<int>(magic & 0xff);
  KILN_CHECK(rank >= 1 && rank <= 4 && bytes.size() >= static_cast<size_t>(4 + 4 * rank), "IDX file '", path,
             "': bad rank ", rank);
  std::vector<int64_t> dims;
  for (int d = 0; d < rank; ++d) dims.push_back(big_endian(bytes, 4 + 4 * static_cast<size_t>(d)));
  const Shape shape(dims);
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  KILN_CHECK(bytes.size() - header == static_cast<size_t>(shape.numel()), "IDX file '", path, "': header says ",
             shape, " (", shape.numel(), " bytes) but the file holds ", bytes.size() - header, " data bytes");
  Tensor out = empty(shape, {DType::u8});
  std::memcpy(out.raw_data(), bytes.data() + header, static_cast<size_t>(shape.numel()));
  return out;
}

Dataset load_fashion_mnist(const std::string& directory, const std::string& split) {
  KILN_CHECK(split == "train" || split == "test", "fashion-mnist: split must be train or test, got '", split, "'");
  const std::string prefix = directory + "/" + (split == "train" ? "train" : "t10k");
  Tensor images = read_idx(prefix + "-images-idx3-ubyte.gz");
  Tensor labels = read_idx(prefix + "-labels-idx1-ubyte.gz");
  KILN_CHECK(images.dim() == 3 && labels.dim() == 1 && images.shape()[0] == labels.shape()[0], "fashion-mnist: ",
             prefix, " images ", images.shape(), " and labels ", labels.shape(), " do not match");
  Dataset d;
  const int64_t n = images.shape()[0];
  auto impl = std::make_shared<TensorImpl>(images.impl());
  impl->shape = Shape{n, 1, images.shape()[1], images.shape()[2]};  // add the channel dim: a view
  d.images = Tensor(impl);
  d.labels = labels.to(DType::i64);
  d.class_names = {"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"};
  d.source = prefix;
  // Names for splits and reports: "train/000123" (the IDX files have no file names).
  for (int64_t i = 0; i < n; ++i) {
    std::string number = std::to_string(i);
    d.file_names.push_back(split + "/" + std::string(6 - std::min<size_t>(6, number.size()), '0') + number);
  }
  for (int64_t i = 0; i < n; ++i)
    KILN_CHECK(d.labels.data<int64_t>()[i] >= 0 && d.labels.data<int64_t>()[i] < 10, "fashion-mnist: label ",
               d.labels.data<int64_t>()[i], " of sample ", i, " is outside 0..9");
  return d;
}

}  // namespace kiln::data
