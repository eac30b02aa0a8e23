#include "data/split.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
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

namespace {

// Sechidis et al. (2011), order 1; parts are [test, val, train] with ratios r. Returns
// the part of every image.
std::vector<int> iterative_stratification(const Dataset& dataset, const std::vector<double>& ratios, uint64_t seed) {
  const int64_t n = dataset.size(), num_classes = dataset.num_classes();
  const size_t parts = ratios.size();
  const float* targets = dataset.targets.data<float>();
  std::vector<std::vector<int64_t>> labels_of(static_cast<size_t>(n));
  std::vector<int64_t> class_count(static_cast<size_t>(num_classes), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < num_classes; ++k)
      if (targets[i * num_classes + k] > 0.5f) {
        labels_of[static_cast<size_t>(i)].push_back(k);
        ++class_count[static_cast<size_t>(k)];
      }
  std::vector<double> wants_images(parts);
  std::vector<std::vector<double>> wants_class(parts, std::vector<double>(static_cast<size_t>(num_classes)));
  for (size_t j = 0; j < parts; ++j) {
    wants_images[j] = static_cast<double>(n) * ratios[j];
    for (int64_t k = 0; k < num_classes; ++k)
      wants_class[j][static_cast<size_t>(k)] = static_cast<double>(class_count[static_cast<size_t>(k)]) * ratios[j];
  }
  // Images are visited in a seeded order, so ties between images fall differently per seed.
  Rng rng(seed);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.next_u64() % i]);

  std::vector<int> part_of(static_cast<size_t>(n), -1);
  std::vector<int64_t> left = class_count;  // unassigned images per class
  const auto assign = [&](int64_t image, int part) {
    part_of[static_cast<size_t>(image)] = part;
    wants_images[static_cast<size_t>(part)] -= 1;
    for (int64_t k : labels_of[static_cast<size_t>(image)]) {
      wants_class[static_cast<size_t>(part)][static_cast<size_t>(k)] -= 1;
      --left[static_cast<size_t>(k)];
    }
  };
  // The part with the largest key(j); ties broken by wants_images, then by the seeded stream.
  const auto best_part = [&](const std::function<double(size_t)>& key) {
    std::vector<size_t> best;
    for (size_t j = 0; j < parts; ++j) {
      if (ratios[j] <= 0) continue;
      if (best.empty() || key(j) > key(best[0]) || (key(j) == key(best[0]) && wants_images[j] > wants_images[best[0]]))
        best = {j};
      else if (key(j) == key(best[0]) && wants_images[j] == wants_images[best[0]])
        best.push_back(j);
    }
    return static_cast<int>(best.size() == 1 ? best[0] : best[rng.next_u64() % best.size()]);
  };
  while (true) {
    int64_t rarest = -1;
    for (int64_t k = 0; k < num_classes; ++k)
      if (left[static_cast<size_t>(k)] > 0 && (rarest < 0 || left[static_cast<size_t>(k)] < left[static_cast<size_t>(rarest)]))
        rarest = k;
    if (rarest < 0) break;
    for (int64_t image : order) {
      if (part_of[static_cast<size_t>(image)] >= 0) continue;
      const std::vector<int64_t>& labels = labels_of[static_cast<size_t>(image)];
      if (std::find(labels.begin(), labels.end(), rarest) == labels.end()) continue;
      assign(image, best_part([&](size_t j) { return wants_class[j][static_cast<size_t>(rarest)]; }));
    }
  }
  for (int64_t image : order)  // images with no labels
    if (part_of[static_cast<size_t>(image)] < 0) assign(image, best_part([&](size_t j) { return wants_images[j]; }));
  return part_of;
}

}  // namespace

Split make_split(const Dataset& dataset, const SplitSpec& spec, uint64_t seed) {
  KILN_CHECK(static_cast<int64_t>(dataset.file_names.size()) == dataset.size(), "split: dataset '", dataset.source,
             "' has no file names (splits are saved by file name)");
  if (dataset.targets.defined()) {
    KILN_CHECK(!spec.per_class, "split ", spec.describe(), ": '", dataset.source, "' is multi-label (an image can ",
               "belong to several classes), so per-class counts cannot be met; give ratios with --val and --test");
    const std::vector<double> ratios = {spec.test_ratio, spec.val_ratio, 1.0 - spec.test_ratio - spec.val_ratio};
    const std::vector<int> part_of = iterative_stratification(dataset, ratios, seed);
    Split split;
    split.seed = seed;
    split.mode = "iterative " + spec.describe();
    split.source = dataset.source;
    std::vector<std::string>* named[] = {&split.test, &split.val, &split.train};
    const int64_t num_classes = dataset.num_classes();
    std::vector<std::vector<int64_t>> per_part(3, std::vector<int64_t>(static_cast<size_t>(num_classes), 0));
    for (int64_t i = 0; i < dataset.size(); ++i) {
      const int part = part_of[static_cast<size_t>(i)];
      named[part]->push_back(dataset.file_names[static_cast<size_t>(i)]);
      for (int64_t k = 0; k < num_classes; ++k)
        if (dataset.targets.data<float>()[i * num_classes + k] > 0.5f) ++per_part[static_cast<size_t>(part)][static_cast<size_t>(k)];
    }
    const char* part_names[] = {"test", "val", "train"};
    for (int64_t k = 0; k < num_classes; ++k) {
      std::string missing;
      int64_t total = 0;
      for (size_t j = 0; j < 3; ++j) {
        total += per_part[j][static_cast<size_t>(k)];
        if (ratios[j] > 0 && per_part[j][static_cast<size_t>(k)] == 0) missing += std::string(missing.empty() ? "" : ", ") + part_names[j];
      }
      if (!missing.empty())
        split.warnings.push_back(str("class '", dataset.class_names[static_cast<size_t>(k)], "' has ", total,
                                     " image(s), too few to split in proportion: none in ", missing));
    }
    return split;
  }
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
  // get<uint64_t>() of a negative or huge float would be a cast out of range (undefined).
  const nlohmann::json& seed = json.at("seed");
  KILN_CHECK(seed.is_number_integer() ||
                 (seed.is_number_float() && seed.get<double>() >= 0 && seed.get<double>() < 18446744073709551616.0),
             "split file '", path, "': \"seed\" is ", seed.dump(), ", expected an unsigned 64-bit integer");
  split.seed = seed.get<uint64_t>();
  split.mode = json.at("mode").get<std::string>();
  split.source = json.value("source", "");
  split.train = json.at("train").get<std::vector<std::string>>();
  split.val = json.at("val").get<std::vector<std::string>>();
  split.test = json.at("test").get<std::vector<std::string>>();
  return split;
}

}  // namespace kiln::data
