// Image datasets on disk: a folder with one sub-folder per class (torchvision's
// ImageFolder), or a CSV of `image,label` rows. Both are first *listed* (file paths
// and labels, cheap) and then *loaded* (every file decoded and brought to one size,
// data/image_io.h), so that the cache (data/cache.h) can hash a listing before it
// decides whether to decode anything.
//
// Folder:  root/<class>/<file>.{jpg,jpeg,png,bmp}; classes are the sorted sub-folder
//          names, so class i is the same on every machine. A root whose sub-folders are
//          all named train/val/valid/test (Imagenette's layout) is read as those splits
//          pooled: file names keep the prefix ("train/church/x.jpg") and every split
//          must have the same classes.
// CSV:     one `image,label` row per image, the path relative to the CSV's folder; a
//          first row whose image cell is "image" is a header. A quoted label with spaces,
//          `img.jpg,"cat dog"`, lists several labels: the dataset is then multi-label,
//          `targets` holds the multi-hot (N, K) rows and `labels` the first label listed.
//          Classes are the sorted label names (numerically when all are integers).
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_io.h"

namespace kiln::data {

struct LoadConfig {
  int64_t size = 224;      // output H = W
  Fit fit = Fit::crop;
  int64_t channels = 3;    // 3 (RGB) or 1 (luma)
  bool skip_bad = false;   // warn on stderr and leave a bad file out, instead of throwing
};

struct FileListing {
  std::string source;                           // the folder or CSV it came from
  std::vector<std::string> paths;               // (N) paths to open
  std::vector<std::string> file_names;          // (N) the same, relative to the source folder
  std::vector<std::vector<int64_t>> labels;     // (N) class indices; one each unless multi-label
  std::vector<std::string> class_names;         // (K)
  bool multi_label = false;
  int64_t skipped = 0;                          // rows left out by skip_bad while listing
};

// Throws kiln::Error naming the folder or file: a missing folder, a folder without
// class sub-folders, an empty class folder, a CSV row naming a missing file. With
// skip_bad, rows naming missing files are left out with a warning instead.
FileListing list_image_folder(const std::string& root);
FileListing list_csv(const std::string& csv_path, bool skip_bad = false);
// A folder, a .csv, or a Tiny-ImageNet folder (data/tiny_imagenet.h: train and the
// official val pooled, file names prefixed "train/" and "val/").
FileListing list_images(const std::string& path, bool skip_bad = false);

// Decodes every listed file (in parallel) into (N, C, size, size). A file that cannot be
// decoded throws naming it, or with config.skip_bad is left out and counted in `skipped`.
Dataset load_listing(const FileListing& listing, const LoadConfig& config);
Dataset load_images(const std::string& path, const LoadConfig& config);  // list + load

}  // namespace kiln::data
