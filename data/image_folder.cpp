#include "data/image_folder.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/tiny_imagenet.h"
#include "engine/tensor/factory.h"

namespace kiln::data {

namespace fs = std::filesystem;

namespace {

// File and class names go into JSON (split.json, pack metadata, checkpoints, reports),
// which holds UTF-8 only: a name that is not UTF-8 is refused here, naming it, rather
// than crashing the JSON writer later (found by the bad-input corpus, tests/bad_inputs).
bool is_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return false;
    i += length;
  }
  return true;
}


bool is_hidden(const fs::path& path) { return path.filename().string().rfind('.', 0) == 0; }

std::vector<fs::path> sorted_entries(const fs::path& folder, bool directories) {
  std::vector<fs::path> out;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    if (is_hidden(entry.path())) continue;  // .DS_Store, .ipynb_checkpoints
    if (directories ? entry.is_directory() : entry.is_regular_file()) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());  // directory order is the file system's whim
  return out;
}

// One level of root/<class>/<file>; `prefix` is prepended to the file names.
void list_class_folders(const fs::path& root, const std::string& prefix, FileListing& listing) {
  const std::vector<fs::path> class_folders = sorted_entries(root, true);
  KILN_CHECK(!class_folders.empty(), "image folder '", root.string(),
             "' has no class sub-folders (expected root/<class>/<image>.jpg)");
  std::vector<std::string> names;
  for (const fs::path& folder : class_folders) names.push_back(folder.filename().string());
  if (listing.class_names.empty()) listing.class_names = names;
  KILN_CHECK(names == listing.class_names, "image folder '", root.string(), "' has different classes from the ",
             "other splits (", names.size(), " vs ", listing.class_names.size(), " class folders)");
  for (size_t label = 0; label < class_folders.size(); ++label) {
    size_t found = 0;
    for (const fs::path& file : sorted_entries(class_folders[label], false)) {
      if (!has_image_extension(file.filename().string())) continue;
      require_utf8(file.string());
      listing.paths.push_back(file.string());
      listing.file_names.push_back(prefix + names[label] + "/" + file.filename().string());
      listing.labels.push_back({static_cast<int64_t>(label)});
      ++found;
    }
    KILN_CHECK(found > 0, "empty class folder '", class_folders[label].string(),
               "': no .jpg, .jpeg, .png or .bmp files");
  }
}

}  // namespace

void require_utf8(const std::string& path) {
  KILN_CHECK(is_utf8(path), "'", path, "': the path is not valid UTF-8; kiln records file and class names in JSON ",
             "(split.json, packs, checkpoints), which cannot hold it: rename it");
}

FileListing list_image_folder(const std::string& root) {
  KILN_CHECK(fs::is_directory(root), "image folder '", root, "' does not exist or is not a folder");
  FileListing listing;
  listing.source = root;
  const std::vector<fs::path> children = sorted_entries(root, true);
  static const std::set<std::string> split_names = {"train", "val", "valid", "test"};
  const bool split_layout = !children.empty() && std::all_of(children.begin(), children.end(), [](const fs::path& p) {
    return split_names.count(p.filename().string()) > 0;
  });
  if (!split_layout) {
    list_class_folders(root, "", listing);
    return listing;
  }
  for (const fs::path& split : children) list_class_folders(split, split.filename().string() + "/", listing);
  return listing;
}

FileListing list_images(const std::string& path, bool skip_bad, const CsvOptions& csv) {
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".csv") return list_csv(path, skip_bad, csv);
  KILN_CHECK(!csv.multi_label, "--multi-label: '", path, "' is an image folder, where every image has one class ",
             "(its sub-folder); multi-label data comes as a CSV of image,labels rows");
  KILN_CHECK(csv.image_column.empty() && csv.labels_column.empty() && csv.image_root.empty(),
             "--image-column, --labels-column and --image-root are for CSV data sets; '", path, "' is not a .csv");
  if (is_tiny_imagenet(path)) return list_tiny_imagenet(path);  // wnids.txt, train/, val/
  return list_image_folder(path);
}

Dataset load_listing(const FileListing& listing, const LoadConfig& config) {
  KILN_CHECK(config.size > 0, "load: size must be positive, got ", config.size);
  const int64_t count = static_cast<int64_t>(listing.paths.size());
  const int64_t image_bytes = config.channels * config.size * config.size;
  // Decode straight into the (N, C, H, W) tensor; bad files leave a hole that is
  // squeezed out below (a second copy only in the rare case that something was skipped).
  Tensor decoded = empty({count, config.channels, config.size, config.size}, {DType::u8});
  uint8_t* pixels = decoded.data<uint8_t>();
  std::vector<std::string> errors(static_cast<size_t>(count));
  // Exceptions must not leave an OpenMP region, so each file's error is kept as text.
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < count; ++i) {
    try {
      fit_image(decode_image(listing.paths[i], config.channels), config.size, config.fit,
                pixels + i * image_bytes);
    } catch (const Error& e) {
      errors[static_cast<size_t>(i)] = e.message();
    }
  }

  std::vector<int64_t> kept;
  for (int64_t i = 0; i < count; ++i) {
    const std::string& error = errors[static_cast<size_t>(i)];
    if (error.empty()) {
      kept.push_back(i);
      continue;
    }
    KILN_CHECK(config.skip_bad, error, " (pass --skip-bad to leave unreadable files out)");
    std::fprintf(stderr, "warning: skipping: %s\n", error.c_str());
  }
  KILN_CHECK(!kept.empty(), "no readable images in '", listing.source, "'");

  const int64_t n = static_cast<int64_t>(kept.size()), num_classes = static_cast<int64_t>(listing.class_names.size());
  Dataset dataset;
  dataset.source = listing.source;
  dataset.class_names = listing.class_names;
  dataset.skipped = listing.skipped + (count - n);
  dataset.labelled = listing.labelled;
  dataset.images = n == count ? decoded : empty({n, config.channels, config.size, config.size}, {DType::u8});
  dataset.labels = empty({n}, {DType::i64});
  if (listing.multi_label) dataset.targets = zeros({n, num_classes}, {DType::f32});
  for (int64_t row = 0; row < n; ++row) {
    const size_t i = static_cast<size_t>(kept[static_cast<size_t>(row)]);
    if (n != count)
      std::memcpy(dataset.images.data<uint8_t>() + row * image_bytes, pixels + i * image_bytes,
                  static_cast<size_t>(image_bytes));
    dataset.labels.data<int64_t>()[row] = listing.labels[i].empty() ? -1 : listing.labels[i].front();
    if (listing.multi_label)
      for (int64_t label : listing.labels[i]) dataset.targets.data<float>()[row * num_classes + label] = 1.0f;
    dataset.file_names.push_back(listing.file_names[i]);
  }
  return dataset;
}

Dataset load_images(const std::string& path, const LoadConfig& config) {
  return load_listing(list_images(path, config.skip_bad, config.csv), config);
}

}  // namespace kiln::data
