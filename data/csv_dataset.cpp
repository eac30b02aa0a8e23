// Listing a CSV data set: which column is the image, where the labels are (a labels
// column, one-hot columns, or none), and each row's label set. The rules are in
// data/image_folder.h; the reading of the bytes is data/csv.h.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "data/csv.h"
#include "data/image_folder.h"
#include "engine/core/check.h"

namespace kiln::data {

namespace fs = std::filesystem;

namespace {

// "Image_ID" -> "imageid": header names compared without case, '_', '-' or spaces.
std::string folded(const std::string& name) {
  std::string out;
  for (char ch : name)
    if (ch != '_' && ch != '-' && ch != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

int64_t find_column(const std::vector<std::string>& header, const std::vector<std::string>& names) {
  for (const std::string& name : names)
    for (size_t i = 0; i < header.size(); ++i)
      if (folded(header[i]) == folded(name)) return static_cast<int64_t>(i);
  return -1;
}

const std::vector<std::string> kImageNames = {"image", "imageid", "img", "filename", "file", "path", "imagepath", "id"};
const std::vector<std::string> kLabelNames = {"labels", "label",   "tags",     "tag",       "classes",
                                              "class",  "targets", "target", "category", "categories"};

// A label cell's labels: separated by spaces, tabs, '|', ';' or ','.
std::vector<std::string> split_labels(const std::string& cell) {
  std::vector<std::string> out;
  std::string current;
  for (char ch : cell + " ") {
    if (ch == ' ' || ch == '\t' || ch == '|' || ch == ';' || ch == ',' || ch == '\r' || ch == '\n') {
      if (!current.empty()) out.push_back(current);
      current.clear();
    } else {
      current += ch;
    }
  }
  return out;
}

bool is_integer(const std::string& text) {
  return !text.empty() && text.size() < 18 && std::all_of(text.begin(), text.end(), ::isdigit);
}

bool is_binary(std::string cell) {
  cell.erase(std::remove(cell.begin(), cell.end(), ' '), cell.end());
  return cell == "0" || cell == "1" || cell == "0.0" || cell == "1.0";
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "'" : ", '") + name + "'";
  return out;
}

}  // namespace

FileListing list_csv(const std::string& csv_path, bool skip_bad, const CsvOptions& options) {
  const std::vector<CsvRecord> records = read_csv_file(csv_path);
  KILN_CHECK(!records.empty(), "CSV '", csv_path, "' is empty");
  FileListing listing;
  listing.source = csv_path;

  // Which row is the header, which column the image, which the labels.
  const std::vector<std::string>& first = records[0].cells;
  int64_t image_column = find_column(first, options.image_column.empty() ? kImageNames
                                                                         : std::vector<std::string>{options.image_column});
  const bool has_header = image_column >= 0;
  KILN_CHECK(has_header || options.image_column.empty(), "CSV '", csv_path, "': --image-column '",
             options.image_column, "' is not in the header row (", quoted_list(first), ")");
  if (!has_header) image_column = 0;
  int64_t labels_column = -1;
  std::vector<int64_t> one_hot_columns;
  if (has_header) {
    labels_column = find_column(first, options.labels_column.empty() ? kLabelNames
                                                                     : std::vector<std::string>{options.labels_column});
    KILN_CHECK(labels_column >= 0 || options.labels_column.empty(), "CSV '", csv_path, "': --labels-column '",
               options.labels_column, "' is not in the header row (", quoted_list(first), ")");
  } else {
    KILN_CHECK(options.labels_column.empty(), "CSV '", csv_path, "' has no header row (no column named ",
               quoted_list(kImageNames), "), so --labels-column '", options.labels_column, "' cannot be found");
    if (first.size() >= 2) labels_column = 1;
  }
  const size_t columns = first.size();
  for (size_t r = 1; r < records.size(); ++r) {
    const size_t got = records[r].cells.size();
    KILN_CHECK(got == columns, "CSV '", csv_path, "' row ", r + 1, " (line ", records[r].line, "): ", got,
               " column(s), expected ", columns, has_header ? " as in the header" : " as in row 1", "; column ",
               std::min(got, columns) + 1,
               got < columns ? (has_header ? " ('" + first[got] + "') is missing" : std::string(" is missing"))
                             : std::string(" is extra (a caption with a comma must be in double quotes)"));
  }
  const size_t first_data = has_header ? 1 : 0;
  if (has_header && labels_column < 0) {  // one-hot, if every other column is 0/1
    for (size_t c = 0; c < columns; ++c) {
      if (static_cast<int64_t>(c) == image_column) continue;
      bool binary = records.size() > first_data;
      for (size_t r = first_data; r < records.size() && binary; ++r) binary = is_binary(records[r].cells[c]);
      if (binary) one_hot_columns.push_back(static_cast<int64_t>(c));
    }
    if (one_hot_columns.size() < 2) one_hot_columns.clear();
  }
  listing.labelled = labels_column >= 0 || !one_hot_columns.empty();

  // The rows: image path and label names.
  const fs::path root = options.image_root.empty() ? fs::path(csv_path).parent_path() : fs::path(options.image_root);
  std::vector<std::vector<std::string>> row_labels;
  std::vector<size_t> row_of;  // record index of each kept row, for messages
  for (size_t r = first_data; r < records.size(); ++r) {
    const std::vector<std::string>& cells = records[r].cells;
    const std::string where = str("CSV '", csv_path, "' row ", r + 1, " (line ", records[r].line, ")");
    const std::string& image = cells[static_cast<size_t>(image_column)];
    KILN_CHECK(!image.empty(), where, ": the image cell (column ", image_column + 1, ") is empty");
    const fs::path path = root / image;
    std::error_code status_error;  // a name too long for the file system is a missing file, not an exception
    if (!fs::is_regular_file(path, status_error)) {
      const std::string message = str(where, ", column ", image_column + 1, ": image file '", path.string(),
                                      "' does not exist", options.image_root.empty() ? " (set --image-root if the images are elsewhere)" : "");
      KILN_CHECK(skip_bad, message, " (pass --skip-bad to leave such rows out)");
      std::fprintf(stderr, "warning: skipping: %s\n", message.c_str());
      ++listing.skipped;
      continue;
    }
    require_utf8(path.string());
    listing.paths.push_back(path.string());
    listing.file_names.push_back(image);
    row_of.push_back(r);
    row_labels.emplace_back();
    if (labels_column >= 0) {
      row_labels.back() = split_labels(cells[static_cast<size_t>(labels_column)]);
      for (const std::string& name : row_labels.back()) require_utf8(name);
    } else {
      for (int64_t c : one_hot_columns)
        if (cells[static_cast<size_t>(c)].find('1') != std::string::npos) row_labels.back().push_back(first[static_cast<size_t>(c)]);
    }
  }
  KILN_CHECK(!listing.paths.empty(), "CSV '", csv_path, "' lists no images");
  if (!listing.labelled) {
    listing.labels.assign(listing.paths.size(), {});
    return listing;
  }

  // Multi-label: asked for, or a row that does not hold exactly one label.
  listing.multi_label = options.multi_label;
  std::string reason = options.multi_label ? "--multi-label" : "";
  for (size_t i = 0; i < row_labels.size() && reason.empty(); ++i)
    if (row_labels[i].size() > 1 || (!one_hot_columns.empty() && row_labels[i].size() != 1))
      reason = str("row ", row_of[i] + 1, " holds ", row_labels[i].size(), " labels");
  listing.multi_label = !reason.empty();
  for (size_t i = 0; i < row_labels.size(); ++i) {
    if (!row_labels[i].empty()) continue;
    const std::string column = labels_column >= 0 ? str("column ", labels_column + 1, " ('", has_header ? first[static_cast<size_t>(labels_column)] : "labels", "')")
                                                  : std::string("the one-hot columns");
    KILN_CHECK(listing.multi_label, "CSV '", csv_path, "' row ", row_of[i] + 1, " (line ", records[row_of[i]].line,
               "), ", column, ": no label, and the other rows hold one label each (single-label); pass --multi-label ",
               "if an image may have no labels");
    ++listing.empty_label_rows;
  }

  // Class order: sorted names, numerically when every name is an integer ("2" < "10").
  std::set<std::string> unique;
  for (const auto& labels : row_labels) unique.insert(labels.begin(), labels.end());
  if (!one_hot_columns.empty())  // a one-hot column is a class even when no row has it
    for (int64_t c : one_hot_columns) unique.insert(first[static_cast<size_t>(c)]);
  listing.class_names.assign(unique.begin(), unique.end());
  if (std::all_of(unique.begin(), unique.end(), is_integer))
    std::sort(listing.class_names.begin(), listing.class_names.end(),
              [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  std::map<std::string, int64_t> index;
  for (size_t k = 0; k < listing.class_names.size(); ++k) index[listing.class_names[k]] = static_cast<int64_t>(k);
  for (const auto& labels : row_labels) {
    listing.labels.emplace_back();
    for (const std::string& name : labels) {
      const int64_t k = index[name];
      if (std::find(listing.labels.back().begin(), listing.labels.back().end(), k) == listing.labels.back().end())
        listing.labels.back().push_back(k);  // "1 1" is the label set {1}
    }
  }
  if (listing.multi_label && !options.multi_label)
    std::printf("CSV '%s': %s, so it is read as multi-label (%zu classes)\n", csv_path.c_str(), reason.c_str(),
                listing.class_names.size());
  return listing;
}

}  // namespace kiln::data
