// Progressive resizing (`kiln train --progressive 32:0,48:15,64:30`): small images in
// the first epochs, larger ones later, as fast.ai's DAWNBench entries and the
// Tiny-ImageNet course advise. Early epochs cost (size0/size)^2 of the pixels and
// the net still learns the coarse features; the last epochs at full size fix the
// fine ones and the statistics the final size needs.
//
// The schedule: entries SIZE:EPOCH, the size used once EPOCH epochs are done, so
// "32:0,48:15,64:30" trains epochs 1-15 at 32 px, 16-30 at 48 px and 31- at 64 px.
// The size of an epoch is a pure function of the epoch number, which is what keeps
// --resume (and mid-epoch --checkpoint-every resume) exact: a resumed run recomputes
// the size of the epoch it continues.
//
// --progressive-batch scale: the batch of an epoch at size S is
//   B(S) = max(1, round(B0 * (S0 / S)^2))        (S0: the first size, B0: --batch-size)
// which keeps the pixels per step, and so roughly the memory and time per step, the
// same. Steps per epoch then change at a switch. The LR schedule is defined over the
// total number of *steps* of the whole run, summed epoch by epoch with each epoch's
// batch (progressive_total_steps), and the step counter runs on across the
// switches: the LR is a continuous function of the step, with no jump at a switch,
// and the device-side schedule (a function of the step counter) needs nothing new.
//
// --bn-reestimate N: after a switch, batch norm's running statistics were gathered
// at the old size (a different scale of objects, a different share of border
// pixels). N batches of the new size run forward in train mode without gradients;
// each batch norm first resets its statistics, then keeps the cumulative average
//   running = running + (batch_stat - running) / (k + 1)     for batch k = 0, 1, ...
// (momentum 1 / (k + 1)), which is what torch.optim.swa_utils.update_bn does with
// momentum None. Only the batch norms are in train mode during the pass (dropout
// draws nothing); the batches are the training transform's, from their own seed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/pack_set.h"
#include "engine/augment/augment.h"
#include "engine/nn/module.h"

namespace kiln::train {

struct ProgressiveStage {
  int64_t size = 0;     // S: images are S x S
  int first_epoch = 0;  // epochs done before this size starts (the spec's EPOCH)
};

struct ProgressiveSchedule {
  std::vector<ProgressiveStage> stages;  // empty: progressive resizing off
  bool scale_batch = false;              // --progressive-batch scale
  int64_t bn_reestimate_batches = 0;     // --bn-reestimate N (0: off)

  bool enabled() const { return !stages.empty(); }
  // epoch: 1-based, as the trainer counts.
  int64_t size_at(int epoch) const;
  int64_t batch_at(int epoch, int64_t base_batch) const;
  // The first epoch of a new size (not epoch 1).
  bool switches_at(int epoch) const;
  int64_t final_size() const { return stages.back().size; }
  std::string to_string() const;  // "32:0,48:15,64:30"
};

// spec: "SIZE:EPOCH,..." ("" gives an empty schedule); batch_mode: "fixed" or "scale".
// Throws naming the entry: not SIZE:EPOCH, a size below 1, the first entry not at
// epoch 0, epochs not increasing, sizes not increasing (out of order).
ProgressiveSchedule parse_progressive(const std::string& spec, const std::string& batch_mode = "fixed",
                                      int64_t bn_reestimate_batches = 0);

// Training steps of an epoch of n images at `batch` (the trainer drops a short last
// batch when there is more than one batch: a batch of one breaks batch norm).
int64_t steps_in_epoch(int64_t n, int64_t batch);
// The steps of epochs 1..epochs: the length of the LR schedule.
int64_t progressive_total_steps(const ProgressiveSchedule& schedule, int epochs, int64_t n, int64_t base_batch);

// A multi-size pack's sets (TrainSetup::packed_sizes): throws unless every size of the
// schedule has one (naming the first that has none), the schedule is on and the feature
// cache off. Nothing to check when `packed` is empty.
void check_packed_sizes(const ProgressiveSchedule& schedule, const std::vector<data::SizedSplit>& packed,
                        bool feature_cache);
// The sets of `size` among `packed`; throws naming the size.
const data::SizedSplit& packed_sets_at(const std::vector<data::SizedSplit>& packed, int64_t size);

// Runs the model (eval mode, no gradients, one image) at every size of the schedule
// and throws naming the entry and the model's reason when a size does not fit it
// (resnet_custom: not divisible by its total stride; any model: too small for its
// downsampling).
void check_model_takes_sizes(nn::Module& model, const ProgressiveSchedule& schedule,
                             const augment::AugmentParams& image, int64_t channels, const Device& device);

// The batch norm re-estimation pass described above: up to `batches` batches of
// `batch` images of `dataset` (drawn in the order of (seed, epoch)), each through
// the training transform at image.out_size. Returns the batches used.
int64_t reestimate_batch_norm(nn::Module& model, const data::Dataset& dataset, const augment::AugmentSpec& augment,
                              const augment::AugmentParams& image, const Device& device, int64_t batch,
                              int64_t batches, uint64_t seed, int epoch);

}  // namespace kiln::train
