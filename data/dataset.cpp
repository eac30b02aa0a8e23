#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "engine/core/rng.h"
#include "engine/tensor/factory.h"

namespace kiln::data {

Dataset subset(const Dataset& dataset, const std::vector<int64_t>& indices) {
  Shape shape = dataset.images.shape();
  const int64_t image_bytes = dataset.images.numel() / std::max<int64_t>(shape[0], 1);
  shape[0] = static_cast<int64_t>(indices.size());
  Dataset out;
  out.images = empty(shape, {DType::u8});
  out.labels = empty({shape[0]}, {DType::i64});
  out.class_names = dataset.class_names;
  out.source = dataset.source;
  out.skipped = dataset.skipped;
  out.labelled = dataset.labelled;
  const int64_t num_classes = dataset.targets.defined() ? dataset.targets.shape()[1] : 0;
  if (dataset.targets.defined()) out.targets = empty({shape[0], num_classes}, {DType::f32});
  const uint8_t* src = dataset.images.data<uint8_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  for (size_t i = 0; i < indices.size(); ++i) {
    KILN_CHECK(indices[i] >= 0 && indices[i] < dataset.size(), "subset: index ", indices[i], " outside the ",
               dataset.size(), " samples of ", dataset.source);
    std::memcpy(dst + i * image_bytes, src + indices[i] * image_bytes, static_cast<size_t>(image_bytes));
    out.labels.data<int64_t>()[i] = dataset.labels.data<int64_t>()[indices[i]];
    if (!dataset.file_names.empty()) out.file_names.push_back(dataset.file_names[static_cast<size_t>(indices[i])]);
    if (dataset.targets.defined())
      std::memcpy(out.targets.data<float>() + i * num_classes, dataset.targets.data<float>() + indices[i] * num_classes,
                  static_cast<size_t>(num_classes) * sizeof(float));
  }
  return out;
}

void align_classes(Dataset& dataset, const std::vector<std::string>& class_names) {
  if (dataset.class_names == class_names) return;
  std::vector<int64_t> new_index;
  for (const std::string& name : dataset.class_names) {
    const auto found = std::find(class_names.begin(), class_names.end(), name);
    if (found == class_names.end()) {
      std::string known;
      for (const std::string& k : class_names) known += (known.empty() ? "'" : ", '") + k + "'";
      KILN_FAIL("'", dataset.source, "' has the label '", name, "', which is not one of the ", class_names.size(),
                " classes the model knows (", known, ")");
    }
    new_index.push_back(static_cast<int64_t>(found - class_names.begin()));
  }
  const int64_t n = dataset.size(), old_k = dataset.num_classes(), new_k = static_cast<int64_t>(class_names.size());
  Tensor labels = empty({n}, {DType::i64});  // new tensors: a pack's are a read-only mapping
  for (int64_t i = 0; i < n; ++i) {
    const int64_t old_label = dataset.labels.data<int64_t>()[i];
    labels.data<int64_t>()[i] = old_label >= 0 ? new_index[static_cast<size_t>(old_label)] : -1;
  }
  dataset.labels = labels;
  if (dataset.targets.defined()) {
    Tensor targets = zeros({n, new_k}, {DType::f32});
    const float* from = dataset.targets.data<float>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < old_k; ++k)
        targets.data<float>()[i * new_k + new_index[static_cast<size_t>(k)]] = from[i * old_k + k];
    dataset.targets = targets;
  }
  dataset.class_names = class_names;
}

Dataset pad_images(const Dataset& dataset, int64_t pad) {
  const Shape in = dataset.images.shape();
  const int64_t n = in[0], c = in[1], h = in[2], w = in[3], ph = h + 2 * pad, pw = w + 2 * pad;
  Dataset out = dataset;
  out.images = zeros({n, c, ph, pw}, {DType::u8});
  const uint8_t* src = dataset.images.data<uint8_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  for (int64_t plane = 0; plane < n * c; ++plane)
    for (int64_t y = 0; y < h; ++y)
      std::memcpy(dst + (plane * ph + y + pad) * pw + pad, src + (plane * h + y) * w, static_cast<size_t>(w));
  return out;
}

std::vector<int64_t> stratified_indices(const Dataset& dataset, int64_t per_class, uint64_t seed) {
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(dataset.num_classes()));
  const int64_t* labels = dataset.labels.data<int64_t>();
  for (int64_t i = 0; i < dataset.size(); ++i) by_class[static_cast<size_t>(labels[i])].push_back(i);
  Rng rng(seed);
  std::vector<int64_t> out;
  for (auto& members : by_class) {
    // Fisher-Yates with the seeded stream: the same seed gives the same subset everywhere.
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng.next_u64() % i]);
    const size_t take = std::min<size_t>(members.size(), static_cast<size_t>(per_class));
    out.insert(out.end(), members.begin(), members.begin() + static_cast<std::ptrdiff_t>(take));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kiln::data
