#include "data/tiny_imagenet.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/image_io.h"
#include "engine/core/check.h"

namespace kiln::data {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_wnids(const fs::path& root) {
  const fs::path path = root / "wnids.txt";
  std::ifstream in(path);
  KILN_CHECK(in.good(), "Tiny-ImageNet folder ", root.string(), ": cannot read ", path.string(),
             " (one WordNet id a line)");
  std::vector<std::string> wnids;
  std::set<std::string> seen;
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    KILN_CHECK(seen.insert(line).second, path.string(), ":", line_number, ": wnid '", line, "' listed twice");
    wnids.push_back(line);
  }
  KILN_CHECK(!wnids.empty(), path.string(), ": no wnids");
  return wnids;
}

// The image files of a folder, sorted, so the listing is the same on every machine.
std::vector<fs::path> images_in(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.is_regular_file() && has_image_extension(entry.path().filename().string()))
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

bool is_tiny_imagenet(const std::string& root) {
  return fs::is_regular_file(fs::path(root) / "wnids.txt") && fs::is_directory(fs::path(root) / "train");
}

std::map<std::string, std::string> tiny_imagenet_words(const std::string& root) {
  std::map<std::string, std::string> words;
  std::ifstream in(fs::path(root) / "words.txt");
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string names = line.substr(tab + 1);
    names.erase(names.find_last_not_of(" \t\r") + 1);
    words[line.substr(0, tab)] = names;
  }
  return words;
}

FileListing list_tiny_imagenet(const std::string& root_text, int64_t max_classes) {
  const fs::path root(root_text);
  std::vector<std::string> wnids = read_wnids(root);
  KILN_CHECK(max_classes <= static_cast<int64_t>(wnids.size()), "--classes ", max_classes, ": ",
             (root / "wnids.txt").string(), " lists only ", wnids.size(), " classes");
  std::map<std::string, int64_t> index_of;
  for (size_t i = 0; i < wnids.size(); ++i) index_of[wnids[i]] = static_cast<int64_t>(i);
  const int64_t used = max_classes > 0 ? max_classes : static_cast<int64_t>(wnids.size());

  FileListing listing;
  listing.source = root.string();
  listing.class_names.assign(wnids.begin(), wnids.begin() + used);
  // train/<wnid>/images/: every folder must be a listed wnid
  const fs::path train = root / "train";
  std::vector<fs::path> class_folders;
  for (const auto& entry : fs::directory_iterator(train))
    if (entry.is_directory()) class_folders.push_back(entry.path());
  std::sort(class_folders.begin(), class_folders.end());
  std::vector<std::vector<fs::path>> per_class(static_cast<size_t>(used));
  for (const fs::path& folder : class_folders) {
    const std::string wnid = folder.filename().string();
    const auto found = index_of.find(wnid);
    KILN_CHECK(found != index_of.end(), "Tiny-ImageNet folder ", train.string(), ": class folder '", wnid,
               "' is not in wnids.txt");
    if (found->second >= used) continue;
    KILN_CHECK(fs::is_directory(folder / "images"), "Tiny-ImageNet: ", folder.string(),
               " has no images/ folder");
    per_class[static_cast<size_t>(found->second)] = images_in(folder / "images");
  }
  for (int64_t label = 0; label < used; ++label) {
    const std::string& wnid = wnids[static_cast<size_t>(label)];
    KILN_CHECK(!per_class[static_cast<size_t>(label)].empty(), "Tiny-ImageNet: no training images for '", wnid,
               "' in ", (train / wnid / "images").string());
    for (const fs::path& file : per_class[static_cast<size_t>(label)]) {
      listing.paths.push_back(file.string());
      listing.file_names.push_back("train/" + wnid + "/images/" + file.filename().string());
      listing.labels.push_back({label});
    }
  }
  // val/val_annotations.txt: the official validation labels
  const fs::path val = root / "val";
  if (fs::is_directory(val)) {
    const fs::path annotations = val / "val_annotations.txt";
    std::ifstream in(annotations);
    KILN_CHECK(in.good(), "Tiny-ImageNet folder ", root.string(), ": ", annotations.string(),
               " is missing (it gives each validation image's class)");
    int line_number = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_number;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::istringstream fields(line);
      std::string file, wnid;
      std::getline(fields, file, '\t');
      std::getline(fields, wnid, '\t');
      wnid.erase(wnid.find_last_not_of(" \r") + 1);
      const auto found = index_of.find(wnid);
      KILN_CHECK(found != index_of.end(), annotations.string(), ":", line_number, ": wnid '", wnid,
                 "' is not in wnids.txt");
      const fs::path image = val / "images" / file;
      KILN_CHECK(fs::is_regular_file(image), annotations.string(), ":", line_number, ": '", file,
                 "' is not in ", (val / "images").string());
      if (found->second >= used) continue;
      listing.paths.push_back(image.string());
      listing.file_names.push_back("val/images/" + file);
      listing.labels.push_back({found->second});
    }
  }
  return listing;
}

Split split_official_val(const std::vector<std::string>& file_names) {
  Split split;
  split.mode = "official val";
  for (const std::string& name : file_names) {
    if (name.rfind("train/", 0) == 0) split.train.push_back(name);
    else if (name.rfind("val/", 0) == 0) split.val.push_back(name);
  }
  KILN_CHECK(!split.val.empty(), "--val official: the data has no official validation images (val/)");
  return split;
}

}  // namespace kiln::data
