#include "data/pack.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>

#include "engine/core/checked_math.h"
#include "engine/core/json_parse.h"
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
  // The tensors view the mapping in place: each block must start where its dtype may be
  // read (the writer puts every block on a 64-byte boundary).
  for (auto [name, offset] : {std::pair{"pixels", header.pixels_offset}, std::pair{"labels", header.labels_offset},
                              std::pair{"targets", header.targets_offset}})
    KILN_CHECK(offset % kAlignment == 0, "pack '", path, "': header field ", name, "_offset (", offset,
               ") is not a multiple of ", kAlignment, " as kpack's writer makes it: the file is corrupt");
  const int64_t count = header.count, num_classes = header.num_classes;
  // Checked arithmetic (engine/core/checked_math.h): N * C * H * W from a corrupt header
  // may be negative or wrap around to the size of the block that is there.
  int64_t pixel_bytes = 0, label_bytes = 0, target_bytes = 0;
  KILN_CHECK(checked_numel({count, header.channels, header.height, header.width}, pixel_bytes) &&
                 checked_mul(count, sizeof(int64_t), label_bytes) &&
                 checked_bytes({count, num_classes}, sizeof(float), target_bytes),
             "pack '", path, "': header fields (N, C, H, W, K) = (", count, ", ", header.channels, ", ", header.height,
             ", ", header.width, ", ", num_classes, ") at bytes 16-55 are negative or their product overflows");
  KILN_CHECK(header.pixels_bytes == static_cast<uint64_t>(pixel_bytes) &&
                 header.labels_bytes == static_cast<uint64_t>(label_bytes) &&
                 (header.targets_bytes == 0 || header.targets_bytes == static_cast<uint64_t>(target_bytes)),
             "pack '", path, "': block sizes do not match its (N, C, H, W) = (", count, ", ", header.channels, ", ",
             header.height, ", ", header.width, ")");

  const char* metadata_begin = static_cast<const char*>(mapped) + header.metadata_offset;
  const std::string where = "pack '" + path + "': metadata (bytes " + std::to_string(header.metadata_offset) + "-" +
                            std::to_string(header.metadata_offset + header.metadata_bytes) + ")";
  const nlohmann::json metadata =
      parse_json_limited(std::string_view(metadata_begin, header.metadata_bytes), where);
  Dataset dataset;
  read_json_fields(where, [&] {
    dataset.class_names = metadata.at("class_names").get<std::vector<std::string>>();
    dataset.file_names = metadata.at("file_names").get<std::vector<std::string>>();
    dataset.skipped = json_int64_or(metadata, "skipped", 0, where);
    dataset.source = path + " (packed from " + metadata.value("source", std::string("?")) + ")";
  });
  KILN_CHECK(static_cast<int64_t>(dataset.class_names.size()) == num_classes &&
                 (dataset.file_names.empty() || static_cast<int64_t>(dataset.file_names.size()) == count),
             "pack '", path, "': metadata lists ", dataset.class_names.size(), " classes and ",
             dataset.file_names.size(), " files, the header says ", num_classes, " and ", count);
  dataset.images = view_storage(storage, header.pixels_offset, {count, header.channels, header.height, header.width},
                                DType::u8);
  dataset.labels = view_storage(storage, header.labels_offset, {count}, DType::i64);
  // Labels index the classes everywhere downstream (losses, confusion matrices): one
  // out of range would read or write past a buffer there, so it is refused here.
  const int64_t* labels = dataset.labels.data<int64_t>();
  for (int64_t i = 0; i < count; ++i)
    KILN_CHECK(labels[i] >= 0 && labels[i] < num_classes, "pack '", path, "': label ", i, " (byte ",
               header.labels_offset + 8 * i, ") is ", labels[i], ", outside the ", num_classes, " classes");
  if (header.targets_bytes)
    dataset.targets = view_storage(storage, header.targets_offset, {count, num_classes}, DType::f32);
  return dataset;
}

}  // namespace kiln::data
