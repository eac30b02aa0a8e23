#include "data/class_stats.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace kiln::data {

ClassStats class_stats(const Dataset& dataset) {
  ClassStats stats;
  stats.class_names = dataset.class_names;
  stats.multi_label = dataset.targets.defined();
  stats.images = dataset.size();
  const int64_t k_all = dataset.num_classes();
  stats.counts.assign(static_cast<size_t>(k_all), 0);
  stats.cooccurrence.assign(static_cast<size_t>(k_all), std::vector<int64_t>(static_cast<size_t>(k_all), 0));
  std::vector<int64_t> present;
  int64_t label_total = 0;
  for (int64_t i = 0; i < stats.images; ++i) {
    present.clear();
    if (stats.multi_label) {
      const float* row = dataset.targets.data<float>() + i * k_all;
      for (int64_t k = 0; k < k_all; ++k)
        if (row[k] > 0.5f) present.push_back(k);
    } else if (dataset.labels.data<int64_t>()[i] >= 0) {
      present.push_back(dataset.labels.data<int64_t>()[i]);
    }
    if (present.empty()) ++stats.no_label_images;
    label_total += static_cast<int64_t>(present.size());
    for (int64_t a : present) {
      ++stats.counts[static_cast<size_t>(a)];
      for (int64_t b : present) ++stats.cooccurrence[static_cast<size_t>(a)][static_cast<size_t>(b)];
    }
  }
  if (stats.images > 0) stats.cardinality = static_cast<double>(label_total) / static_cast<double>(stats.images);
  if (k_all > 0) stats.density = stats.cardinality / static_cast<double>(k_all);
  int64_t largest = 0, smallest = 0;
  for (int64_t count : stats.counts) {
    largest = std::max(largest, count);
    if (count > 0 && (smallest == 0 || count < smallest)) smallest = count;
  }
  if (smallest > 0) stats.imbalance_ratio = static_cast<double>(largest) / static_cast<double>(smallest);
  return stats;
}

nlohmann::json ClassStats::to_json() const {
  return {{"classes", class_names},         {"multi_label", multi_label},
          {"images", images},               {"counts", counts},
          {"cardinality", cardinality},     {"density", density},
          {"no_label_images", no_label_images}, {"imbalance_ratio", imbalance_ratio},
          {"cooccurrence", cooccurrence}};
}

std::string ClassStats::to_text() const {
  std::string out;
  char line[256];
  size_t width = 5;
  for (const std::string& name : class_names) width = std::max(width, name.size());
  std::snprintf(line, sizeof(line), "  %3s  %-*s  %7s  %6s\n", "id", static_cast<int>(width), "class", "images", "share");
  out += line;
  for (size_t k = 0; k < class_names.size(); ++k) {
    std::snprintf(line, sizeof(line), "  %3zu  %-*s  %7lld  %5.1f%%\n", k, static_cast<int>(width),
                  class_names[k].c_str(), static_cast<long long>(counts[k]),
                  images ? 100.0 * static_cast<double>(counts[k]) / static_cast<double>(images) : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof(line), "  %lld images, %zu classes; labels per image %.3f (density %.3f); imbalance %.1f:1\n",
                static_cast<long long>(images), class_names.size(), cardinality, density, imbalance_ratio);
  out += line;
  if (!multi_label) return out;
  std::snprintf(line, sizeof(line), "  images with no labels: %lld\n", static_cast<long long>(no_label_images));
  out += line;
  const size_t k_all = class_names.size();
  if (k_all <= 20) {
    out += "  co-occurrence (images with both; row and column are class ids):\n      ";
    for (size_t b = 0; b < k_all; ++b) {
      std::snprintf(line, sizeof(line), " %5zu", b);
      out += line;
    }
    out += "\n";
    for (size_t a = 0; a < k_all; ++a) {
      std::snprintf(line, sizeof(line), "  %3zu ", a);
      out += line;
      for (size_t b = 0; b < k_all; ++b) {
        std::snprintf(line, sizeof(line), " %5lld", static_cast<long long>(cooccurrence[a][b]));
        out += line;
      }
      out += "\n";
    }
    return out;
  }
  std::vector<std::tuple<int64_t, size_t, size_t>> pairs;
  for (size_t a = 0; a < k_all; ++a)
    for (size_t b = a + 1; b < k_all; ++b)
      if (cooccurrence[a][b] > 0) pairs.emplace_back(-cooccurrence[a][b], a, b);
  std::sort(pairs.begin(), pairs.end());
  out += "  most frequent pairs:\n";
  for (size_t i = 0; i < std::min<size_t>(10, pairs.size()); ++i) {
    const auto& [minus_count, a, b] = pairs[i];
    std::snprintf(line, sizeof(line), "    %s + %s: %lld\n", class_names[a].c_str(), class_names[b].c_str(),
                  static_cast<long long>(-minus_count));
    out += line;
  }
  return out;
}

}  // namespace kiln::data
