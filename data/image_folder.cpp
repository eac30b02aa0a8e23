#include "data/image_folder.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "data/tiny_imagenet.h"
#include "engine/train/progress.h"
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

std::vector<Dataset> load_listing_at_sizes(const FileListing& listing, const LoadConfig& config,
                                          const std::vector<int64_t>& sizes, const std::string& progress_label) {
  KILN_CHECK(!sizes.empty(), "load: no size given");
  for (int64_t size : sizes) KILN_CHECK(size > 0, "load: size must be positive, got ", size);
  const int64_t count = static_cast<int64_t>(listing.paths.size());
  // Decode straight into one (N, C, S, S) tensor per size; bad files leave a hole that is
  // squeezed out below (a second copy only in the rare case that something was skipped).
  std::vector<Tensor> decoded;
  for (int64_t size : sizes) decoded.push_back(empty({count, config.channels, size, size}, {DType::u8}));
  std::vector<std::string> errors(static_cast<size_t>(count));
  std::unique_ptr<ProgressBar> bar;
  if (!progress_label.empty()) bar = std::make_unique<ProgressBar>(progress_label, count);
  std::atomic<int64_t> done{0};
  int64_t drawn = 0;  // the count thread 0 drew last (only thread 0 reads or writes it)
  // Exceptions must not leave an OpenMP region, so each file's error is kept as text.
  // Each file is decoded once and every size is fitted from that decoded original (never
  // from a smaller fit), so a size's pixels do not depend on which other sizes were asked.
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < count; ++i) {
    try {
      const DecodedImage image = decode_image(listing.paths[i], config.channels);
      for (size_t k = 0; k < sizes.size(); ++k)
        fit_image(image, sizes[k], config.fit,
                  decoded[k].data<uint8_t>() + i * config.channels * sizes[k] * sizes[k]);
    } catch (const Error& e) {
      errors[static_cast<size_t>(i)] = e.message();
    }
    const int64_t finished = ++done;
    // One thread draws (the bar is not thread-safe), after every 64 files or more.
    if (bar && omp_get_thread_num() == 0 && finished - drawn >= 64) {
      bar->update(finished);
      drawn = finished;
    }
  }
  if (bar) bar->finish();

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
  Dataset first;
  first.source = listing.source;
  first.class_names = listing.class_names;
  first.skipped = listing.skipped + (count - n);
  first.labelled = listing.labelled;
  first.labels = empty({n}, {DType::i64});
  if (listing.multi_label) first.targets = zeros({n, num_classes}, {DType::f32});
  for (int64_t row = 0; row < n; ++row) {
    const size_t i = static_cast<size_t>(kept[static_cast<size_t>(row)]);
    first.labels.data<int64_t>()[row] = listing.labels[i].empty() ? -1 : listing.labels[i].front();
    if (listing.multi_label)
      for (int64_t label : listing.labels[i]) first.targets.data<float>()[row * num_classes + label] = 1.0f;
    first.file_names.push_back(listing.file_names[i]);
  }
  // Every size shares the labels, targets and names; only the pixels differ.
  std::vector<Dataset> out;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Dataset dataset = first;
    const int64_t size = sizes[k], image_bytes = config.channels * size * size;
    dataset.images = n == count ? decoded[k] : empty({n, config.channels, size, size}, {DType::u8});
    if (n != count)
      for (int64_t row = 0; row < n; ++row)
        std::memcpy(dataset.images.data<uint8_t>() + row * image_bytes,
                    decoded[k].data<uint8_t>() + kept[static_cast<size_t>(row)] * image_bytes,
                    static_cast<size_t>(image_bytes));
    out.push_back(std::move(dataset));
  }
  return out;
}

Dataset load_listing(const FileListing& listing, const LoadConfig& config) {
  return load_listing_at_sizes(listing, config, {config.size}).front();
}

Dataset load_images(const std::string& path, const LoadConfig& config) {
  return load_listing(list_images(path, config.skip_bad, config.csv), config);
}

}  // namespace kiln::data
