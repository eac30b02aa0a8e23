#include "data/split.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "engine/core/rng.h"
#include "weights/atomic_file.h"

namespace kiln::data {

std::string SplitSpec::describe() const {
  std::ostringstream out;
  if (per_class)
    out << "per_class " << train_count << "/" << val_count << "/" << test_count;
  else
    out << "ratio val=" << val_ratio << " test=" << test_ratio;
  return out.str();
}

SplitSpec split_by_ratio(double val_ratio, double test_ratio) {
  KILN_CHECK(val_ratio >= 0 && test_ratio >= 0 && val_ratio + test_ratio <= 1, "split: --val ", val_ratio,
             " and --test ", test_ratio, " must be >= 0 and add up to at most 1");
  SplitSpec spec;
  spec.val_ratio = val_ratio;
  spec.test_ratio = test_ratio;
  return spec;
}

SplitSpec parse_split_counts(const std::string& text) {
  std::vector<int64_t> counts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, '/')) {
    KILN_CHECK(!part.empty() && part.find_first_not_of("0123456789") == std::string::npos, "split: '", text,
               "' must be train/val/test images per class, like 300/75/75 (or 300/75 with a test folder)");
    counts.push_back(std::stoll(part));
  }
  KILN_CHECK(counts.size() == 2 || counts.size() == 3, "split: '", text,
             "' must have 2 or 3 counts (train/val[/test] per class)");
  SplitSpec spec;
  spec.per_class = true;
  spec.train_count = counts[0];
  spec.val_count = counts[1];
  spec.test_count = counts.size() == 3 ? counts[2] : 0;
  return spec;
}

Split make_split(const Dataset& dataset, const SplitSpec& spec, uint64_t seed) {
  KILN_CHECK(static_cast<int64_t>(dataset.file_names.size()) == dataset.size(), "split: dataset '", dataset.source,
             "' has no file names (splits are saved by file name)");
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(dataset.num_classes()));
  const int64_t* labels = dataset.labels.data<int64_t>();
  for (int64_t i = 0; i < dataset.size(); ++i) by_class[static_cast<size_t>(labels[i])].push_back(i);

  Split split;
  split.seed = seed;
  split.mode = spec.describe();
  split.source = dataset.source;
  std::vector<int64_t> train, val, test;
  Rng rng(seed);
  for (size_t k = 0; k < by_class.size(); ++k) {
    std::vector<int64_t>& members = by_class[k];
    const int64_t n = static_cast<int64_t>(members.size());
    int64_t n_train = 0, n_val = 0, n_test = 0;
    if (spec.per_class) {
      n_train = spec.train_count, n_val = spec.val_count, n_test = spec.test_count;
      KILN_CHECK(n_train + n_val + n_test <= n, "split ", spec.describe(), ": class '", dataset.class_names[k],
                 "' has ", n, " images, needs ", n_train + n_val + n_test);
    } else {
      n_test = std::llround(n * spec.test_ratio);
      n_val = std::llround(n * spec.val_ratio);
      n_train = n - n_test - n_val;
    }
    // Fisher-Yates with the seeded stream, one class after another in class order.
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng.next_u64() % i]);
    auto take = [&](std::vector<int64_t>& into, int64_t from, int64_t count) {
      into.insert(into.end(), members.begin() + from, members.begin() + from + count);
    };
    take(test, 0, n_test);
    take(val, n_test, n_val);
    take(train, n_test + n_val, n_train);
  }
  // Dataset order inside each subset: a teacher can diff two split files line by line.
  for (auto* part : {&train, &val, &test}) std::sort(part->begin(), part->end());
  auto names = [&](const std::vector<int64_t>& rows) {
    std::vector<std::string> out;
    for (int64_t row : rows) out.push_back(dataset.file_names[static_cast<size_t>(row)]);
    return out;
  };
  split.train = names(train);
  split.val = names(val);
  split.test = names(test);
  return split;
}

std::vector<int64_t> indices_of(const Dataset& dataset, const std::vector<std::string>& names) {
  std::unordered_map<std::string, int64_t> row_of;
  for (size_t i = 0; i < dataset.file_names.size(); ++i) row_of[dataset.file_names[i]] = static_cast<int64_t>(i);
  std::vector<int64_t> out;
  for (const std::string& name : names) {
    auto found = row_of.find(name);
    KILN_CHECK(found != row_of.end(), "split: file '", name, "' is not in dataset '", dataset.source, "'");
    out.push_back(found->second);
  }
  return out;
}

void save_split(const std::string& path, const Split& split) {
  const nlohmann::json json = {{"seed", split.seed},   {"mode", split.mode}, {"source", split.source},
                               {"train", split.train}, {"val", split.val},   {"test", split.test}};
  write_file_atomically(path, [&](std::ostream& out) { out << json.dump(1) << "\n"; });
}

Split load_split(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "cannot open split file '", path, "'");
  nlohmann::json json;
  try {
    in >> json;
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("split file '", path, "' is not valid JSON: ", e.what());
  }
  Split split;
  for (const char* key : {"seed", "mode", "train", "val", "test"})
    KILN_CHECK(json.contains(key), "split file '", path, "' has no key '", key, "'");
  split.seed = json.at("seed").get<uint64_t>();
  split.mode = json.at("mode").get<std::string>();
  split.source = json.value("source", "");
  split.train = json.at("train").get<std::vector<std::string>>();
  split.val = json.at("val").get<std::vector<std::string>>();
  split.test = json.at("test").get<std::vector<std::string>>();
  return split;
}

}  // namespace kiln::data
