#include "data/pack.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>

#include "engine/tensor/external_storage.h"
#include "weights/atomic_file.h"

namespace kiln::data {
namespace {

constexpr char kMagic[8] = {'K', 'P', 'A', 'C', 'K', 0, 0, 0};
constexpr uint64_t kAlignment = 64;  // a cache line, and what AVX-512 loads like

struct PackHeader {
  char magic[8];          // "KPACK\0\0\0"
  uint32_t version;       // kPackVersion
  uint32_t header_bytes;  // sizeof(PackHeader)
  int64_t count, channels, height, width, num_classes;  // N, C, H, W, K
  uint64_t metadata_offset, metadata_bytes;
  uint64_t pixels_offset, pixels_bytes;
  uint64_t labels_offset, labels_bytes;
  uint64_t targets_offset, targets_bytes;
  uint8_t reserved[8];  // room to grow without moving the blocks
};
static_assert(sizeof(PackHeader) == 128, "the kpack header is 128 bytes");

uint64_t align_up(uint64_t offset) { return (offset + kAlignment - 1) / kAlignment * kAlignment; }

void write_padding(std::ostream& out, uint64_t& at, uint64_t to) {
  static const char zeros[kAlignment] = {};
  out.write(zeros, static_cast<std::streamsize>(to - at));
  at = to;
}

}  // namespace

void write_pack(const std::string& path, const Dataset& dataset) {
  const Tensor& images = dataset.images;
  KILN_CHECK(images.defined() && images.dim() == 4 && images.dtype() == DType::u8 && images.device().is_cpu(),
             "write_pack '", path, "': images must be u8 (N, C, H, W) on the cpu, got ",
             images.defined() ? images.describe() : std::string("none"));
  KILN_CHECK(dataset.labelled, "write_pack '", path, "': '", dataset.source, "' has no labels (a CSV of images to ",
             "predict); a pack holds a labelled data set");
  const Tensor pixels = images.contiguous();  // an nhwc dataset is stored row-major like any other
  const int64_t count = images.shape()[0], num_classes = dataset.num_classes();
  const nlohmann::json metadata = {{"class_names", dataset.class_names},
                                   {"file_names", dataset.file_names},
                                   {"source", dataset.source},
                                   {"skipped", dataset.skipped}};
  const std::string metadata_text = metadata.dump();

  PackHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kPackVersion;
  header.header_bytes = sizeof(PackHeader);
  header.count = count;
  header.channels = images.shape()[1];
  header.height = images.shape()[2];
  header.width = images.shape()[3];
  header.num_classes = num_classes;
  header.metadata_offset = sizeof(PackHeader);
  header.metadata_bytes = metadata_text.size();
  header.pixels_offset = align_up(header.metadata_offset + header.metadata_bytes);
  header.pixels_bytes = static_cast<uint64_t>(pixels.nbytes());
  header.labels_offset = align_up(header.pixels_offset + header.pixels_bytes);
  header.labels_bytes = static_cast<uint64_t>(count) * sizeof(int64_t);
  header.targets_offset = align_up(header.labels_offset + header.labels_bytes);
  header.targets_bytes = dataset.targets.defined() ? static_cast<uint64_t>(count * num_classes) * sizeof(float) : 0;
  if (dataset.targets.defined())
    KILN_CHECK(dataset.targets.shape() == Shape({count, num_classes}), "write_pack '", path,
               "': targets must be f32 (N, K) = (", count, ", ", num_classes, "), got ", dataset.targets.describe());

  write_file_atomically(path, [&](std::ostream& out) {
    uint64_t at = 0;
    auto write = [&](const void* data, uint64_t bytes) {
      out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
      at += bytes;
    };
    write(&header, sizeof(header));
    write(metadata_text.data(), metadata_text.size());
    write_padding(out, at, header.pixels_offset);
    write(pixels.raw_data(), header.pixels_bytes);
    write_padding(out, at, header.labels_offset);
    write(dataset.labels.data<int64_t>(), header.labels_bytes);
    write_padding(out, at, header.targets_offset);
    if (header.targets_bytes) write(dataset.targets.data<float>(), header.targets_bytes);
  });
}

Dataset open_pack(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  KILN_CHECK(fd >= 0, "cannot open pack '", path, "': ", std::strerror(errno));
  struct stat info {};
  const bool stat_ok = ::fstat(fd, &info) == 0;
  const uint64_t file_bytes = stat_ok ? static_cast<uint64_t>(info.st_size) : 0;
  if (!stat_ok || file_bytes < sizeof(PackHeader)) {
    ::close(fd);
    KILN_FAIL("pack '", path, "' is too short for a kpack header (", file_bytes, " bytes)");
  }
  // MAP_PRIVATE with write permission: tensors are writable views (as every kiln
  // tensor is) and a write only copies that page in memory; the file never changes.
  void* mapped = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file open
  KILN_CHECK(mapped != MAP_FAILED, "cannot mmap pack '", path, "': ", std::strerror(errno));
  std::shared_ptr<Storage> storage =
      make_external_storage(mapped, file_bytes, [mapped, file_bytes] { ::munmap(mapped, file_bytes); });

  PackHeader header{};
  std::memcpy(&header, mapped, sizeof(header));
  KILN_CHECK(std::memcmp(header.magic, kMagic, sizeof(kMagic)) == 0, "'", path,
             "' is not a kpack file (no KPACK magic); make one with `kiln pack`");
  KILN_CHECK(header.version == kPackVersion, "pack '", path, "' has version ", header.version, ", this kiln reads ",
             kPackVersion, "; re-create it with `kiln pack`");
  for (auto [name, offset, bytes] : {std::tuple{"metadata", header.metadata_offset, header.metadata_bytes},
                                     std::tuple{"pixels", header.pixels_offset, header.pixels_bytes},
                                     std::tuple{"labels", header.labels_offset, header.labels_bytes},
                                     std::tuple{"targets", header.targets_offset, header.targets_bytes}})
    KILN_CHECK(offset <= file_bytes && bytes <= file_bytes - offset, "pack '", path, "' is truncated: its ", name,
               " block ends at byte ", offset + bytes, ", the file has ", file_bytes, " bytes");
  const int64_t count = header.count, num_classes = header.num_classes;
  KILN_CHECK(header.pixels_bytes == static_cast<uint64_t>(count * header.channels * header.height * header.width) &&
                 header.labels_bytes == static_cast<uint64_t>(count) * sizeof(int64_t) &&
                 (header.targets_bytes == 0 ||
                  header.targets_bytes == static_cast<uint64_t>(count * num_classes) * sizeof(float)),
             "pack '", path, "': block sizes do not match its (N, C, H, W) = (", count, ", ", header.channels, ", ",
             header.height, ", ", header.width, ")");

  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(static_cast<const char*>(mapped) + header.metadata_offset,
                                     static_cast<const char*>(mapped) + header.metadata_offset + header.metadata_bytes);
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("pack '", path, "': metadata is not valid JSON: ", e.what());
  }
  Dataset dataset;
  dataset.class_names = metadata.at("class_names").get<std::vector<std::string>>();
  dataset.file_names = metadata.at("file_names").get<std::vector<std::string>>();
  dataset.skipped = metadata.value("skipped", int64_t{0});
  dataset.source = path + " (packed from " + metadata.value("source", std::string("?")) + ")";
  KILN_CHECK(static_cast<int64_t>(dataset.class_names.size()) == num_classes &&
                 (dataset.file_names.empty() || static_cast<int64_t>(dataset.file_names.size()) == count),
             "pack '", path, "': metadata lists ", dataset.class_names.size(), " classes and ",
             dataset.file_names.size(), " files, the header says ", num_classes, " and ", count);
  dataset.images = view_storage(storage, header.pixels_offset, {count, header.channels, header.height, header.width},
                                DType::u8);
  dataset.labels = view_storage(storage, header.labels_offset, {count}, DType::i64);
  if (header.targets_bytes)
    dataset.targets = view_storage(storage, header.targets_offset, {count, num_classes}, DType::f32);
  return dataset;
}

}  // namespace kiln::data
