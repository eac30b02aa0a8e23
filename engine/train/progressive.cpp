#include "engine/train/progressive.h"

#include <algorithm>
#include <cmath>

#include "data/loader.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/check.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"

namespace kiln::train {

namespace {

// Digits only, so that "3a", "-1" or "" are named as errors rather than read as 3, -1 or 0.
bool parse_count(const std::string& text, int64_t& value) {
  if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  value = std::stoll(text);
  return true;
}

const ProgressiveStage& stage_at(const std::vector<ProgressiveStage>& stages, int epoch) {
  // Epoch e (1-based) comes after e - 1 finished epochs: the last stage that starts at or before that.
  const ProgressiveStage* found = &stages.front();
  for (const ProgressiveStage& s : stages)
    if (s.first_epoch <= epoch - 1) found = &s;
  return *found;
}

void collect_batch_norms(nn::Module& module, std::vector<nn::BatchNorm*>& out) {
  if (auto* bn = dynamic_cast<nn::BatchNorm*>(&module)) out.push_back(bn);
  for (auto& [name, child] : module.named_children()) collect_batch_norms(*child, out);
}

}  // namespace

int64_t ProgressiveSchedule::size_at(int epoch) const {
  KILN_CHECK(enabled(), "progressive: size_at on an empty schedule");
  return stage_at(stages, epoch).size;
}

int64_t ProgressiveSchedule::batch_at(int epoch, int64_t base_batch) const {
  if (!enabled() || !scale_batch) return base_batch;
  const double ratio = static_cast<double>(stages.front().size) / static_cast<double>(size_at(epoch));
  return std::max<int64_t>(1, std::llround(static_cast<double>(base_batch) * ratio * ratio));
}

bool ProgressiveSchedule::switches_at(int epoch) const {
  return enabled() && epoch > 1 && size_at(epoch) != size_at(epoch - 1);
}

std::string ProgressiveSchedule::to_string() const {
  std::string out;
  for (const ProgressiveStage& s : stages)
    out += (out.empty() ? "" : ",") + std::to_string(s.size) + ":" + std::to_string(s.first_epoch);
  return out;
}

ProgressiveSchedule parse_progressive(const std::string& spec, const std::string& batch_mode,
                                      int64_t bn_reestimate_batches) {
  KILN_CHECK(batch_mode == "fixed" || batch_mode == "scale", "--progressive-batch must be fixed or scale, got '",
             batch_mode, "'");
  KILN_CHECK(bn_reestimate_batches >= 0, "--bn-reestimate must be a batch count (0: off), got ",
             bn_reestimate_batches);
  ProgressiveSchedule schedule;
  schedule.scale_batch = batch_mode == "scale";
  schedule.bn_reestimate_batches = bn_reestimate_batches;
  if (spec.empty()) {
    KILN_CHECK(!schedule.scale_batch, "--progressive-batch scale needs --progressive");
    KILN_CHECK(bn_reestimate_batches == 0, "--bn-reestimate needs --progressive (it runs after a size switch)");
    return schedule;
  }
  size_t start = 0;
  for (int index = 1;; ++index) {
    const size_t comma = spec.find(',', start);
    const std::string entry = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t colon = entry.find(':');
    int64_t size = 0, epoch = 0;
    KILN_CHECK(colon != std::string::npos && parse_count(entry.substr(0, colon), size) &&
                   parse_count(entry.substr(colon + 1), epoch),
               "--progressive: entry ", index, " '", entry, "' is not SIZE:EPOCH (e.g. 32:0,48:15,64:30)");
    KILN_CHECK(size >= 1, "--progressive: entry ", index, " '", entry, "' has size 0");
    if (index == 1)
      KILN_CHECK(epoch == 0, "--progressive: the first entry '", entry,
                 "' must start at epoch 0 (every epoch needs a size), got epoch ", epoch);
    if (!schedule.stages.empty()) {
      const ProgressiveStage& previous = schedule.stages.back();
      KILN_CHECK(epoch > previous.first_epoch, "--progressive: entry ", index, " '", entry,
                 "': epochs must increase, but it starts at epoch ", epoch, ", not after entry ", index - 1,
                 "'s epoch ", previous.first_epoch);
      KILN_CHECK(size > previous.size, "--progressive: entry ", index, " '", entry,
                 "': sizes are out of order, ", size, " px does not grow from entry ", index - 1, "'s ",
                 previous.size, " px (progressive resizing goes from small to large images)");
    }
    schedule.stages.push_back({size, static_cast<int>(epoch)});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return schedule;
}

void check_packed_sizes(const ProgressiveSchedule& schedule, const std::vector<data::SizedSplit>& packed,
                        bool feature_cache) {
  if (packed.empty()) return;
  KILN_CHECK(schedule.enabled() && !feature_cache,
             "train: per-size data sets (a multi-size pack) are read by a --progressive run without the feature cache");
  for (const ProgressiveStage& stage : schedule.stages)
    KILN_CHECK(std::any_of(packed.begin(), packed.end(),
                           [&](const data::SizedSplit& sized) { return sized.size == stage.size; }),
               "train: --progressive size ", stage.size, " has no data set of that size among the packed sizes");
}

const data::SizedSplit& packed_sets_at(const std::vector<data::SizedSplit>& packed, int64_t size) {
  for (const data::SizedSplit& sized : packed)
    if (sized.size == size) return sized;
  KILN_FAIL("train: no packed data set of ", size, " px");
}

int64_t steps_in_epoch(int64_t n, int64_t batch) {
  KILN_CHECK(batch >= 1, "steps_in_epoch: batch must be at least 1, got ", batch);
  if (n <= 0) return 0;
  return n > batch ? n / batch : 1;
}

int64_t progressive_total_steps(const ProgressiveSchedule& schedule, int epochs, int64_t n, int64_t base_batch) {
  int64_t total = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) total += steps_in_epoch(n, schedule.batch_at(epoch, base_batch));
  return total;
}

void check_model_takes_sizes(nn::Module& model, const ProgressiveSchedule& schedule,
                             const augment::AugmentParams& image, int64_t channels, const Device& device) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();  // batch norm must not move its statistics, dropout must not draw
  for (size_t i = 0; i < schedule.stages.size(); ++i) {
    const ProgressiveStage& s = schedule.stages[i];
    const Tensor probe = zeros({1, channels, s.size, s.size}, {image.dtype, device, image.layout});
    try {
      model.forward(probe);
    } catch (const Error& e) {
      model.train(was_training);
      KILN_FAIL("--progressive: entry ", i + 1, " '", s.size, ":", s.first_epoch, "': the model cannot take ",
                s.size, "x", s.size, " images: ", e.what());
    }
  }
  model.train(was_training);
}

int64_t reestimate_batch_norm(nn::Module& model, const data::Dataset& dataset, const augment::AugmentSpec& augment,
                              const augment::AugmentParams& image, const Device& device, int64_t batch,
                              int64_t batches, uint64_t seed, int epoch) {
  std::vector<nn::BatchNorm*> norms;
  collect_batch_norms(model, norms);
  norms.erase(std::remove_if(norms.begin(), norms.end(), [](nn::BatchNorm* bn) { return bn->freeze_statistics; }),
              norms.end());
  if (norms.empty() || batches <= 0) return 0;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<double> momenta;
  for (nn::BatchNorm* bn : norms) {
    momenta.push_back(bn->momentum);
    fill_(bn->running_mean, 0.0);
    fill_(bn->running_var, 1.0);
    bn->train(true);
  }
  data::LoaderConfig config;
  config.batch_size = batch;
  config.seed = seed;
  config.workers = 1;
  config.drop_last = dataset.size() > batch;
  data::Loader loader(dataset, config);
  loader.start_epoch(epoch);
  NoGradGuard no_grad;
  data::Batch b;
  int64_t used = 0;
  for (; used < batches && loader.next(b); ++used) {
    for (nn::BatchNorm* bn : norms) bn->momentum = 1.0 / static_cast<double>(used + 1);
    const Tensor x = augment::augment_batch(b.images_u8.to(device), augment, image,
                                            seed ^ static_cast<uint64_t>(used + 1) * 0x9e3779b97f4a7c15ull);
    model.forward(x);
  }
  for (size_t i = 0; i < norms.size(); ++i) norms[i]->momentum = momenta[i];
  model.train(was_training);
  return used;
}

}  // namespace kiln::train
