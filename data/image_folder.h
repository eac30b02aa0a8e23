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
// CSV:     RFC 4180 (data/csv.h), one row per image, implemented in data/csv_dataset.cpp.
//          Header: the first row is a header when it names an image column
//          (--image-column, or one of image, ImageID, image_id, filename, file, path,
//          id; case and '_' ignored). Without a header, column 1 is the image and
//          column 2 (if any) the labels.
//          Labels: the --labels-column, or one named labels/label/tags/classes/class/
//          targets/target/category/categories. A cell lists labels separated by spaces,
//          '|', ';' or ','; names or integer ids. Classes are the sorted label names,
//          numerically when all are integers ("2" < "10").
//          One-hot: a header without a labels column whose other columns are all 0/1
//          (`image,cat,dog,...`): those columns are the classes.
//          No labels column at all: a prediction CSV (`labelled` false); it can be
//          predicted, not trained on. Other columns (Captions) are ignored.
//          Multi-label: when a cell holds several labels, a one-hot row has other than
//          one 1, or CsvOptions::multi_label says so. Then `targets` holds the
//          multi-hot (N, K) rows, an empty label cell is an image with no labels
//          (counted in empty_label_rows), and `labels` holds each row's first label
//          (-1 for none). In a single-label CSV an empty cell is an error.
//          Paths are relative to --image-root (default: the CSV's folder).
//          Errors name the file, the row (and its line when captions span lines) and
//          the column: a short row, a missing image (or skipped with --skip-bad).
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_io.h"

namespace kiln::data {

struct CsvOptions {
  std::string image_column;   // "" = the header's image column, or column 1 without a header
  std::string labels_column;  // "" = the header's labels column, or column 2 without a header
  std::string image_root;     // "" = the CSV's folder
  bool multi_label = false;   // read as multi-label even when every row has one label
};

struct LoadConfig {
  int64_t size = 224;      // output H = W
  Fit fit = Fit::crop;
  int64_t channels = 3;    // 3 (RGB) or 1 (luma)
  bool skip_bad = false;   // warn on stderr and leave a bad file out, instead of throwing
  CsvOptions csv;          // how a CSV is read (ignored for folders)
};

struct FileListing {
  std::string source;                           // the folder or CSV it came from
  std::vector<std::string> paths;               // (N) paths to open
  std::vector<std::string> file_names;          // (N) the same, relative to the source folder
  std::vector<std::vector<int64_t>> labels;     // (N) class indices; one each unless multi-label
  std::vector<std::string> class_names;         // (K)
  bool multi_label = false;
  bool labelled = true;                         // false: a CSV without labels (for prediction)
  int64_t skipped = 0;                          // rows left out by skip_bad while listing
  int64_t empty_label_rows = 0;                 // multi-label rows with no labels
};

// Throws kiln::Error naming the folder or file: a missing folder, a folder without
// class sub-folders, an empty class folder, a CSV row naming a missing file. With
// skip_bad, rows naming missing files are left out with a warning instead.
// list_images throws for csv.multi_label on a folder (one class per image there).
FileListing list_image_folder(const std::string& root);
FileListing list_csv(const std::string& csv_path, bool skip_bad = false, const CsvOptions& csv = {});
// Throws naming `path` when it is not valid UTF-8: file and class names go into JSON
// (split.json, packs, checkpoints), which holds UTF-8 only.
void require_utf8(const std::string& path);
// A folder, a .csv, or a Tiny-ImageNet folder (data/tiny_imagenet.h: train and the
// official val pooled, file names prefixed "train/" and "val/").
FileListing list_images(const std::string& path, bool skip_bad = false, const CsvOptions& csv = {});

// Decodes every listed file (in parallel) into (N, C, size, size). A file that cannot be
// decoded throws naming it, or with config.skip_bad is left out and counted in `skipped`.
Dataset load_listing(const FileListing& listing, const LoadConfig& config);
// The same at several sizes (config.size is ignored): each file is decoded once and
// fitted to every size from the decoded original, so element k equals what
// load_listing at sizes[k] gives, pixel for pixel. A non-empty progress_label draws a
// progress bar (rate, ETA) on stderr while files are decoded.
std::vector<Dataset> load_listing_at_sizes(const FileListing& listing, const LoadConfig& config,
                                          const std::vector<int64_t>& sizes, const std::string& progress_label = "");
Dataset load_images(const std::string& path, const LoadConfig& config);  // list + load

}  // namespace kiln::data
