// The frozen-feature cache (engine/train/feature_cache.h).
#include "engine/train/feature_cache.h"

#include <cstring>
#include <functional>
#include <sstream>

#include "data/loader.h"
#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "engine/train/progress.h"

namespace kiln::train {

namespace {

// Calls fn(path, module) for every module of the tree except the subtree at `skip`.
void for_each_module_outside(nn::Module& module, const std::string& path, const std::string& skip,
                             const std::function<void(const std::string&, nn::Module&)>& fn) {
  if (path == skip) return;
  fn(path, module);
  for (auto& [name, child] : module.named_children())
    for_each_module_outside(*child, path.empty() ? name : path + "." + name, skip, fn);
}

// Restores a module tree's train/eval mode at the end of a scope.
class ModeGuard {
 public:
  explicit ModeGuard(nn::Module& model) : model_(model), was_training_(model.is_training()) {}
  ~ModeGuard() { model_.train(was_training_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  nn::Module& model_;
  bool was_training_;
};

// Runs `model` on `input` (no graph, eval mode) and returns the input of the module at
// `head`. Throws when the head does not run exactly once or its output is not the
// model's output (then the model computes something after the head, which a cached
// run would skip).
Tensor head_input(nn::Module& model, nn::Module& head, const std::string& head_path, const Tensor& input) {
  Tensor captured_input, captured_output;
  int calls = 0;
  const nn::Module::HookHandle hook =
      head.register_forward_hook([&](nn::Module&, const Tensor& in, const Tensor& out) {
        captured_input = in;
        captured_output = out;
        ++calls;
        return Tensor();
      });
  const Tensor output = model.forward(input);
  KILN_CHECK(calls == 1, "feature cache: the head '", head_path, "' ran ", calls, " times in one forward, expected once");
  KILN_CHECK(output.impl_ptr() == captured_output.impl_ptr(), "feature cache: the output of the head '", head_path,
             "' is not the model's output (the model computes something after it)");
  return captured_input;
}

}  // namespace

nn::Module& module_at(nn::Module& model, const std::string& path) {
  nn::Module* module = &model;
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '.')) module = module->child(part).get();
  return *module;
}

std::string augment_changes_images(const augment::AugmentSpec& augment) {
  // The canonical spec string lists every transform that draws something per image or
  // per batch (the centre crop, the one deterministic transform, is not in it).
  const std::string spec = augment::augment_spec_to_string(augment);
  return spec == "none" ? "" : spec;
}

FeatureCachePlan plan_feature_cache(nn::Module& model, const std::string& head, const augment::AugmentSpec& augment,
                                    const augment::AugmentParams& image, int64_t channels, const Device& device,
                                    Precision precision, int64_t images, int64_t budget_bytes) {
  FeatureCachePlan plan;
  const auto off = [&](const std::string& why) {
    plan.explanation = "off: " + why;
    return plan;
  };
  if (head.empty()) return off("the model has no separate head");
  for (const auto& [name, p] : model.named_parameters())
    if (p.requires_grad() && name.rfind(head + ".", 0) != 0)
      return off("'" + name + "' outside the head '" + head + "' trains (the cache needs --finetune head)");
  std::string moving;
  for_each_module_outside(model, "", head, [&](const std::string& path, nn::Module& m) {
    if (!moving.empty()) return;
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m); bn && !bn->freeze_statistics)
      moving = "batch norm '" + path + "' updates its statistics in training (the cache needs --freeze-bn)";
    if (auto* dropout = dynamic_cast<nn::Dropout*>(&m); dropout && dropout->p > 0)
      moving = "dropout '" + path + "' before the head draws a new mask every step";
  });
  if (!moving.empty()) return off(moving);
  if (const std::string changes = augment_changes_images(augment); !changes.empty())
    return off("--augment " + changes + " changes the images every epoch");

  // The probe: one zero image through the real input transform and the model.
  nn::Module& head_module = module_at(model, head);
  Tensor features;
  {
    NoGradGuard no_grad;
    AutocastGuard autocast(autocast_dtype_of(precision));
    ModeGuard mode(model);
    model.eval();
    const Tensor zero_image = zeros({1, channels, image.out_size, image.out_size}, {DType::u8});
    try {
      features = head_input(model, head_module, head, augment::eval_transform(zero_image.to(device), image));
    } catch (const Error& e) {
      return off(e.what());
    }
  }
  const std::vector<int64_t>& dims = features.shape().dims();
  plan.feature_shape = Shape(std::vector<int64_t>(dims.begin() + 1, dims.end()));
  plan.feature_dtype = features.dtype();
  plan.bytes_per_image = features.nbytes();
  const int64_t total = plan.bytes_per_image * images;
  std::ostringstream shape;
  for (int i = 0; i < plan.feature_shape.dim(); ++i) shape << (i ? " x " : "") << plan.feature_shape[i];
  if (total > budget_bytes)
    return off(str(images, " images x ", plan.bytes_per_image, " bytes of features exceed the cache's ",
                   budget_bytes >> 20, " MiB"));
  plan.enabled = true;
  plan.head = head;
  std::ostringstream what;
  what << "on: the frozen backbone runs once per image; the head '" << head << "' trains on its cached output ("
       << shape.str() << " " << dtype_name(plan.feature_dtype) << " per image, " << (total + (1 << 20) - 1) / (1 << 20)
       << " MiB for " << images << " images)";
  plan.explanation = what.str();
  return plan;
}

FrozenFeatures FrozenFeatures::compute(nn::Module& model, const std::string& head, const data::Dataset& dataset,
                                       const augment::AugmentSpec& augment, const augment::AugmentParams& image,
                                       bool training_transform, const Device& device, int64_t batch_size,
                                       Precision precision, const std::string& label, bool progress) {
  KILN_CHECK(augment_changes_images(augment).empty(), "feature cache: --augment ", augment_changes_images(augment),
             " changes the images every epoch; their features cannot be cached");
  nn::Module& head_module = module_at(model, head);
  NoGradGuard no_grad;
  AutocastGuard autocast(autocast_dtype_of(precision));
  ModeGuard mode(model);
  model.eval();  // the same function as train mode here (the plan checked it), and the head's dropout draws nothing
  FrozenFeatures result;
  const int64_t n = dataset.size();
  ProgressBar bar(label, n);
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t count = std::min(batch_size, n - start);
    const Tensor images = dataset.images.narrow0(start, count).to(device);
    // The training transform with a deterministic spec draws nothing: any seed gives the same images.
    const Tensor x = training_transform ? augment::augment_batch(images, augment, image, 0)
                                        : augment::eval_transform(images, image);
    const Tensor features = head_input(model, head_module, head, x).contiguous().to(Device::cpu());
    if (!result.features_.defined()) {
      Shape shape = features.shape();
      shape[0] = n;
      result.features_ = empty(shape, {features.dtype()});
    }
    copy_(result.features_.narrow0(start, count), features);
    if (progress) bar.update(start + count);
  }
  if (progress && n > 0) bar.finish();
  return result;
}

Tensor FrozenFeatures::gather(const std::vector<int64_t>& indices, bool pinned) const {
  Shape shape = features_.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = pinned ? empty_pinned(shape, features_.dtype()) : empty(shape, {features_.dtype()});
  const int64_t row_bytes = size() > 0 ? features_.nbytes() / size() : 0;
  const char* from = static_cast<const char*>(features_.raw_data());
  char* to = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < indices.size(); ++i) {
    KILN_CHECK(indices[i] >= 0 && indices[i] < size(), "feature cache: row ", indices[i], " is outside the cache of ",
               size(), " images");
    std::memcpy(to + static_cast<int64_t>(i) * row_bytes, from + indices[i] * row_bytes, static_cast<size_t>(row_bytes));
  }
  return out;
}

CachedBatches::CachedBatches(const FrozenFeatures& features, const data::Dataset& dataset, const Tensor& targets,
                             data::LoaderConfig config, bool pinned)
    : features_(features), dataset_(dataset), targets_(targets.contiguous()), config_(std::move(config)),
      pinned_(pinned) {
  KILN_CHECK(targets_.dim() >= 1 && targets_.shape()[0] == features.size(), "feature cache: ",
             targets_.dim() >= 1 ? targets_.shape()[0] : 0, " target rows for ", features.size(), " cached images");
  KILN_CHECK(dataset.size() == features.size(), "feature cache: the data set has ", dataset.size(),
             " images, the cache ", features.size());
  KILN_CHECK(config_.batch_size >= 1, "feature cache: batch size must be at least 1, got ", config_.batch_size);
}

int64_t CachedBatches::batches_per_epoch() const {
  const int64_t n = features_.size(), b = config_.batch_size;
  return config_.drop_last ? n / b : (n + b - 1) / b;
}

void CachedBatches::start_epoch(int64_t epoch) {
  order_ = data::loader_epoch_order(dataset_, config_, epoch);  // the Loader's order for (seed, epoch)
  next_batch_ = 0;
}

bool CachedBatches::next(Tensor& features, Tensor& targets) {
  if (next_batch_ >= batches_per_epoch()) return false;
  const int64_t start = next_batch_ * config_.batch_size;
  const int64_t count = std::min(config_.batch_size, features_.size() - start);
  const std::vector<int64_t> indices(order_.begin() + start, order_.begin() + start + count);
  features = features_.gather(indices, pinned_);
  // The target rows of those images: an index (i64) or a multi-hot row (f32 K) each.
  Shape shape = targets_.shape();
  shape[0] = count;
  targets = pinned_ ? empty_pinned(shape, targets_.dtype()) : empty(shape, {targets_.dtype()});
  const int64_t row_bytes = targets_.nbytes() / std::max<int64_t>(targets_.shape()[0], 1);
  const char* from = static_cast<const char*>(targets_.raw_data());
  char* to = static_cast<char*>(targets.raw_data());
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(to + i * row_bytes, from + indices[static_cast<size_t>(i)] * row_bytes, static_cast<size_t>(row_bytes));
  ++next_batch_;
  return true;
}

}  // namespace kiln::train
