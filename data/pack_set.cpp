#include "data/pack_set.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/pack.h"
#include "engine/core/json_parse.h"
#include "weights/atomic_file.h"

namespace kiln::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "kiln pack set";
constexpr const char* kExtension = ".kpacks";

// The member file name of `size` for an index named `index_path` (no folder).
std::string member_file_name(const std::string& index_path, int64_t size) {
  return fs::path(index_path).stem().string() + "." + std::to_string(size) + ".kpack";
}

}  // namespace

bool is_pack_set(const std::string& path) { return fs::path(path).extension() == kExtension; }

std::vector<int64_t> parse_pack_sizes(const std::string& text, const std::string& option) {
  std::vector<int64_t> sizes;
  const std::string list = text + ",";
  for (size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1) {
    const std::string entry = list.substr(start, comma - start);
    KILN_CHECK(!entry.empty() && entry.size() <= 9 && entry.find_first_not_of("0123456789") == std::string::npos,
               option, " ", text, ": '", entry, "' is not a size in pixels (a whole number, e.g. 32,48,64)");
    const int64_t size = std::stoll(entry);
    KILN_CHECK(size > 0, option, " ", text, ": a size must be at least 1 pixel, got ", entry);
    KILN_CHECK(sizes.empty() || size != sizes.back(), option, " ", text, ": size ", size, " is listed twice");
    KILN_CHECK(sizes.empty() || size > sizes.back(), option, " ", text, ": sizes must be ascending (", size,
               " comes after ", sizes.back(), ")");
    sizes.push_back(size);
  }
  return sizes;
}

std::string pack_set_member_path(const std::string& index_path, int64_t size) {
  return (fs::path(index_path).parent_path() / member_file_name(index_path, size)).string();
}

const std::string& PackSetIndex::member(int64_t size, const std::string& asked_by) const {
  for (size_t k = 0; k < sizes.size(); ++k)
    if (sizes[k] == size) return members[k];
  KILN_FAIL(asked_by, ": the pack set '", path, "' has no ", size, " px pack (it has ", sizes_text(),
            " px); re-pack with `kiln pack ... --size` listing ", size);
}

std::string PackSetIndex::sizes_text() const {
  std::string text;
  for (int64_t size : sizes) text += (text.empty() ? "" : "/") + std::to_string(size);
  return text;
}

void write_pack_set(const std::string& index_path, const std::vector<int64_t>& sizes,
                    const std::vector<Dataset>& datasets, const std::string& fit) {
  KILN_CHECK(is_pack_set(index_path), "pack set '", index_path, "': the index must end in ", kExtension,
             " (the members are written next to it as NAME.SIZE.kpack)");
  KILN_CHECK(!sizes.empty() && sizes.size() == datasets.size(), "pack set '", index_path, "': ", sizes.size(),
             " sizes for ", datasets.size(), " data sets");
  const Dataset& first = datasets.front();
  for (size_t k = 0; k < sizes.size(); ++k) {
    const Dataset& d = datasets[k];
    KILN_CHECK(d.images.defined() && d.images.dim() == 4 && d.images.shape()[2] == sizes[k] &&
                   d.images.shape()[3] == sizes[k],
               "pack set '", index_path, "': the data set for ", sizes[k], " px holds ",
               d.images.defined() ? d.images.describe() : std::string("no images"));
    KILN_CHECK(d.size() == first.size() && d.file_names == first.file_names && d.class_names == first.class_names,
               "pack set '", index_path, "': the data set for ", sizes[k], " px holds other images than the one for ",
               sizes.front(), " px");
  }
  std::vector<std::string> finals, temporaries;
  for (int64_t size : sizes) {
    finals.push_back(pack_set_member_path(index_path, size));
    temporaries.push_back(finals.back() + ".tmp." + std::to_string(::getpid()));
  }
  // All or nothing: every member is complete under a temporary name before any is renamed.
  try {
    for (size_t k = 0; k < sizes.size(); ++k) write_pack(temporaries[k], datasets[k]);
  } catch (...) {
    std::error_code ignored;
    for (const std::string& temporary : temporaries) fs::remove(temporary, ignored);
    throw;
  }
  // An index left from an earlier set would describe other members while they are
  // renamed: it goes first, so that the set is either the old one, none, or the new one.
  std::error_code ignored;
  fs::remove(index_path, ignored);
  for (size_t k = 0; k < sizes.size(); ++k) {
    std::error_code error;
    fs::rename(temporaries[k], finals[k], error);
    if (error) {
      for (size_t rest = k; rest < sizes.size(); ++rest) fs::remove(temporaries[rest], ignored);
      KILN_FAIL("pack set '", index_path, "': cannot rename '", temporaries[k], "' to '", finals[k], "': ",
                error.message(), " (no index was written: the set is incomplete)");
    }
  }
  nlohmann::json members = nlohmann::json::array();
  for (int64_t size : sizes) members.push_back(member_file_name(index_path, size));
  const nlohmann::json index = {{"format", kFormat},
                                {"version", kPackSetVersion},
                                {"sizes", sizes},
                                {"members", members},
                                {"count", first.size()},
                                {"channels", first.images.shape()[1]},
                                {"classes", first.num_classes()},
                                {"fit", fit},
                                {"source", first.source}};
  write_file_atomically(index_path, [&](std::ostream& out) { out << index.dump(1) << "\n"; });
}

PackSetIndex read_pack_set_index(const std::string& index_path) {
  std::ifstream file(index_path, std::ios::binary);
  KILN_CHECK(file, "cannot open pack set '", index_path, "': ", std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  const std::string where = "pack set '" + index_path + "'";
  const nlohmann::json json = parse_json_limited(text.str(), where);
  PackSetIndex index;
  index.path = index_path;
  std::vector<std::string> member_names;
  read_json_fields(where, [&] {
    KILN_CHECK(json.is_object() && json.value("format", std::string()) == kFormat, where,
               " is not a pack set index (no \"format\": \"", kFormat, "\"); make one with `kiln pack DATA -o ",
               "NAME.kpacks --size 32,48,64`");
    const int version = json_int(json.at("version"), where, "version");
    KILN_CHECK(version == kPackSetVersion, where, " has version ", version, ", this kiln reads ", kPackSetVersion,
               "; re-create it with `kiln pack`");
    index.sizes = json_int64s(json.at("sizes"), where, "sizes");
    member_names = json.at("members").get<std::vector<std::string>>();
    index.count = json_int64(json.at("count"), where, "count");
    index.channels = json_int64(json.at("channels"), where, "channels");
    index.classes = json_int64(json.at("classes"), where, "classes");
    index.fit = json.value("fit", std::string("?"));
    index.source = json.value("source", std::string("?"));
  });
  KILN_CHECK(!index.sizes.empty(), where, ": \"sizes\" is empty");
  std::string sizes_text;
  for (int64_t size : index.sizes) sizes_text += (sizes_text.empty() ? "" : ",") + std::to_string(size);
  parse_pack_sizes(sizes_text, where + ": \"sizes\"");  // ascending, positive, no duplicates
  KILN_CHECK(member_names.size() == index.sizes.size(), where, ": \"members\" lists ", member_names.size(),
             " files for ", index.sizes.size(), " sizes");
  for (const std::string& name : member_names) {
    // Members sit next to the index: a name with a folder in it would read elsewhere.
    KILN_CHECK(!name.empty() && name != "." && name != ".." && fs::path(name).filename() == fs::path(name), where,
               ": member '", name, "' is not a file name next to the index");
    index.members.push_back((fs::path(index_path).parent_path() / name).string());
  }
  return index;
}

Dataset open_pack_set_member(const PackSetIndex& index, int64_t size, const std::string& asked_by) {
  const std::string& path = index.member(size, asked_by);
  KILN_CHECK(fs::exists(path), "pack set '", index.path, "': its ", size, " px member '", path,
             "' is missing; re-create the set with `kiln pack`");
  Dataset dataset = open_pack(path);
  const Shape& shape = dataset.images.shape();
  KILN_CHECK(dataset.size() == index.count && shape[1] == index.channels && dataset.num_classes() == index.classes,
             "pack set '", index.path, "': member '", path, "' holds ", dataset.size(), " images of ", shape[1],
             " channels and ", dataset.num_classes(), " classes, the index says ", index.count, ", ", index.channels,
             " and ", index.classes, " (the member was replaced after the set was written?)");
  KILN_CHECK(shape[2] == size && shape[3] == size, "pack set '", index.path, "': member '", path, "' holds ",
             shape[2], "x", shape[3], " images, the index lists it for ", size, " px");
  return dataset;
}

std::vector<Dataset> open_pack_set(const PackSetIndex& index) {
  std::vector<Dataset> members;
  for (int64_t size : index.sizes) members.push_back(open_pack_set_member(index, size, "open"));
  const Dataset& first = members.front();
  for (size_t k = 1; k < members.size(); ++k) {
    const Dataset& d = members[k];
    const std::string what = "pack set '" + index.path + "': member '" + index.members[k] + "' and member '" +
                             index.members.front() + "' ";
    KILN_CHECK(d.class_names == first.class_names, what, "have other class names");
    KILN_CHECK(d.file_names == first.file_names, what, "list other images (or the same ones in another order)");
    KILN_CHECK(std::memcmp(d.labels.data<int64_t>(), first.labels.data<int64_t>(),
                           static_cast<size_t>(first.size()) * sizeof(int64_t)) == 0,
               what, "have other labels");
    KILN_CHECK(d.targets.defined() == first.targets.defined() &&
                   (!d.targets.defined() || std::memcmp(d.targets.data<float>(), first.targets.data<float>(),
                                                        static_cast<size_t>(d.targets.nbytes())) == 0),
               what, "have other multi-label targets");
  }
  return members;
}

}  // namespace kiln::data
