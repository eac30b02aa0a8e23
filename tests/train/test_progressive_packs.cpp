// Progressive runs that read each epoch's size from a multi-size pack
// (TrainSetup::packed_sizes, data/pack_set.h) instead of resizing on the fly.
//
// What can be bit-equal: the on-the-fly path samples the loaded (largest) images
// bilinearly at the epoch's size; a pack set fits every size from the original file
// with stb's triangle filter and stores u8. On real photos the two inputs differ (the
// filter, and the u8 rounding of the pack), so runs from them differ too. Here the
// largest images are made of 2x2 blocks of one value: the bilinear sample at half the
// size lands midway between two equal pixels and is that value exactly, so the 12 px
// set given to the packed run holds exactly the pixels the on-the-fly run computes.
// The two runs must then be bit-identical: the same images in the same order at each
// size, the same labels, validation at the epoch's size, batch norm re-estimated on
// the same batches. Any slip in which set an epoch reads shows as a difference. A
// packed run resumed at the switch equals the uninterrupted packed run, bit for bit.
#include <doctest/doctest.h>

#include <filesystem>

#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "engine/train/progressive.h"
#include "engine/train/trainer.h"
#include "test_util.h"
#include "train/toy_task.h"

using namespace kiln;

namespace {

using test::toy::any_size_model;

// Every pixel repeated into a 2x2 block: (N, C, S, S) -> (N, C, 2S, 2S).
data::Dataset doubled(const data::Dataset& d) {
  const Shape& s = d.images.shape();
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  data::Dataset out = d;
  out.images = empty({n, c, 2 * h, 2 * w}, {DType::u8});
  const uint8_t* src = d.images.data<uint8_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  for (int64_t plane = 0; plane < n * c; ++plane)
    for (int64_t y = 0; y < 2 * h; ++y)
      for (int64_t x = 0; x < 2 * w; ++x) dst[(plane * 2 * h + y) * 2 * w + x] = src[(plane * h + y / 2) * w + x / 2];
  return out;
}

struct Run {
  std::vector<train::EpochStats> history;
  std::vector<double> state;
};

// epochs: trained up to; run_dir: "" writes nothing; resume: a checkpoint to continue from.
Run run(const Device& device, const data::Dataset& train_set, const data::Dataset& val_set,
        std::vector<data::SizedSplit> packed_sizes, int epochs = 3, const std::string& run_dir = "",
        const std::string& resume = "") {
  auto model = any_size_model();
  model->to(device);
  optim::SGD sgd(model->parameters(), test::toy::sgd_options());
  train::TrainSetup setup = test::toy::setup(run_dir, epochs);
  setup.device = device;
  setup.deterministic = true;
  setup.progressive = train::parse_progressive("12:0,24:1", "scale", 2);
  setup.packed_sizes = std::move(packed_sizes);
  Run r;
  train::Trainer trainer(*model, sgd, [](int64_t s) { return 1.0 / (1.0 + 0.01 * static_cast<double>(s)); }, setup);
  if (!resume.empty()) trainer.resume(load_checkpoint(resume));
  r.history = trainer.fit(train_set, val_set);
  for (auto& [name, t] : model->state_dict()) {
    const std::vector<double> v = t.to(Device::cpu()).to_vector();
    r.state.insert(r.state.end(), v.begin(), v.end());
  }
  return r;
}

void check_packed_equals_on_the_fly(const Device& device) {
  const data::Dataset small_train = test::toy::dataset(1), small_val = test::toy::dataset(2);
  const data::Dataset big_train = doubled(small_train), big_val = doubled(small_val);
  const Run on_the_fly = run(device, big_train, big_val, {});
  const Run packed = run(device, big_train, big_val, {{12, small_train, small_val}, {24, big_train, big_val}});
  REQUIRE(packed.history.size() == 3);
  for (size_t e = 0; e < 3; ++e) {
    CAPTURE(e + 1);
    CHECK(packed.history[e].image_size == on_the_fly.history[e].image_size);
    CHECK(packed.history[e].batch_size == on_the_fly.history[e].batch_size);
    CHECK(packed.history[e].train_loss == on_the_fly.history[e].train_loss);
    CHECK(packed.history[e].val_loss == on_the_fly.history[e].val_loss);
  }
  CHECK(packed.history[0].image_size == 12);
  CHECK(packed.history[2].image_size == 24);
  CHECK(packed.state == on_the_fly.state);  // bit-identical, running statistics included
}

}  // namespace

TEST_CASE("progressive packs: a run reading each size from its own set equals the run resizing the same pixels on "
          "the fly, bit for bit") {
  check_packed_equals_on_the_fly(Device::cpu());
}

TEST_CASE("progressive packs: the sets read are the epoch's: a wrong 12 px set changes the run, a missing size is "
          "refused before the first epoch") {
  const data::Dataset small_train = test::toy::dataset(1), small_val = test::toy::dataset(2);
  const data::Dataset big_train = doubled(small_train), big_val = doubled(small_val);
  const Run on_the_fly = run(Device::cpu(), big_train, big_val, {});
  // Other images at 12 px (the validation set's as training set): the first epoch differs.
  const Run other = run(Device::cpu(), big_train, big_val, {{12, small_val, small_val}, {24, big_train, big_val}});
  CHECK(other.history[0].train_loss != on_the_fly.history[0].train_loss);
  test::expect_error_containing([&] { run(Device::cpu(), big_train, big_val, {{24, big_train, big_val}}); },
                                {"--progressive size 12", "no data set of that size"});
}

TEST_CASE("progressive packs: a packed run resumed at the size switch equals the uninterrupted packed run") {
  const data::Dataset small_train = test::toy::dataset(1), small_val = test::toy::dataset(2);
  const data::Dataset big_train = doubled(small_train), big_val = doubled(small_val);
  const std::vector<data::SizedSplit> sizes = {{12, small_train, small_val}, {24, big_train, big_val}};
  const Run straight = run(Device::cpu(), big_train, big_val, sizes);
  const std::string dir = "/tmp/kiln_test_progressive_packs_resume";
  std::filesystem::remove_all(dir);
  run(Device::cpu(), big_train, big_val, sizes, 1, dir);  // epoch 1 at 12 px, then stopped
  const Run resumed = run(Device::cpu(), big_train, big_val, sizes, 3, dir, dir + "/last.safetensors");
  REQUIRE(resumed.history.size() == 2);  // epochs 2 and 3, both at 24 px
  CHECK(resumed.history[0].image_size == 24);
  CHECK(resumed.state == straight.state);  // bit-identical
  std::filesystem::remove_all(dir);
}

TEST_CASE("progressive packs on cuda: the packed run equals the on-the-fly run there too, bit for bit" *
          doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("progressive packs on cuda")) return;
  check_packed_equals_on_the_fly(Device::cuda(0));
}
