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
      listing.paths.push_back(file.string());
      listing.file_names.push_back(prefix + names[label] + "/" + file.filename().string());
      listing.labels.push_back({static_cast<int64_t>(label)});
      ++found;
    }
    KILN_CHECK(found > 0, "empty class folder '", class_folders[label].string(),
               "': no .jpg, .jpeg, .png or .bmp files");
  }
}

// Splits one CSV line into cells; a cell in double quotes may hold commas and "" for ".
std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted && ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      cells.emplace_back();
    } else if (ch != '\r') {
      cells.back() += ch;
    }
  }
  return cells;
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = text.find_first_not_of(" \t", at)) != std::string::npos) {
    const size_t end = std::min(text.find_first_of(" \t", at), text.size());
    out.push_back(text.substr(at, end - at));
    at = end;
  }
  return out;
}

bool is_integer(const std::string& text) {
  return !text.empty() && text.size() < 18 && std::all_of(text.begin(), text.end(), ::isdigit);
}

}  // namespace

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

FileListing list_csv(const std::string& csv_path, bool skip_bad) {
  std::ifstream in(csv_path);
  KILN_CHECK(in.good(), "cannot open CSV '", csv_path, "': ", std::strerror(errno));
  FileListing listing;
  listing.source = csv_path;
  const fs::path folder = fs::path(csv_path).parent_path();
  std::vector<std::vector<std::string>> row_labels;
  std::string line;
  for (int64_t line_number = 1; std::getline(in, line); ++line_number) {
    if (words(line).empty()) continue;
    const std::vector<std::string> cells = csv_cells(line);
    if (line_number == 1 && cells[0] == "image") continue;  // the header
    KILN_CHECK(cells.size() == 2 && !words(cells[1]).empty(), "CSV '", csv_path, "' line ", line_number,
               ": expected `image,label` or `image,\"label1 label2\"`, got '", line, "'");
    const fs::path path = folder / cells[0];
    if (!fs::is_regular_file(path)) {
      const std::string message = str("CSV '", csv_path, "' line ", line_number, ": image file '", path.string(),
                                      "' does not exist");
      KILN_CHECK(skip_bad, message);
      std::fprintf(stderr, "warning: skipping: %s\n", message.c_str());
      ++listing.skipped;
      continue;
    }
    listing.paths.push_back(path.string());
    listing.file_names.push_back(cells[0]);
    row_labels.push_back(words(cells[1]));
    listing.multi_label = listing.multi_label || row_labels.back().size() != 1;
  }
  KILN_CHECK(!listing.paths.empty(), "CSV '", csv_path, "' lists no images");

  // Class order: sorted names, numerically when every name is an integer ("2" < "10").
  std::set<std::string> unique;
  for (const auto& labels : row_labels) unique.insert(labels.begin(), labels.end());
  listing.class_names.assign(unique.begin(), unique.end());
  if (std::all_of(unique.begin(), unique.end(), is_integer))
    std::sort(listing.class_names.begin(), listing.class_names.end(),
              [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  std::map<std::string, int64_t> index;
  for (size_t k = 0; k < listing.class_names.size(); ++k) index[listing.class_names[k]] = static_cast<int64_t>(k);
  for (const auto& labels : row_labels) {
    listing.labels.emplace_back();
    for (const std::string& name : labels) listing.labels.back().push_back(index[name]);
  }
  return listing;
}

FileListing list_images(const std::string& path, bool skip_bad) {
  if (fs::is_regular_file(path) && fs::path(path).extension() == ".csv") return list_csv(path, skip_bad);
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
  dataset.images = n == count ? decoded : empty({n, config.channels, config.size, config.size}, {DType::u8});
  dataset.labels = empty({n}, {DType::i64});
  if (listing.multi_label) dataset.targets = zeros({n, num_classes}, {DType::f32});
  for (int64_t row = 0; row < n; ++row) {
    const size_t i = static_cast<size_t>(kept[static_cast<size_t>(row)]);
    if (n != count)
      std::memcpy(dataset.images.data<uint8_t>() + row * image_bytes, pixels + i * image_bytes,
                  static_cast<size_t>(image_bytes));
    dataset.labels.data<int64_t>()[row] = listing.labels[i].front();
    if (listing.multi_label)
      for (int64_t label : listing.labels[i]) dataset.targets.data<float>()[row * num_classes + label] = 1.0f;
    dataset.file_names.push_back(listing.file_names[i]);
  }
  return dataset;
}

Dataset load_images(const std::string& path, const LoadConfig& config) {
  return load_listing(list_images(path, config.skip_bad), config);
}

}  // namespace kiln::data
