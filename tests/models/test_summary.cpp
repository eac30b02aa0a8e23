// `kiln summary`'s counts against closed forms written out here, not read from the
// library: parameters of cnn5 and MACs of a 3x32x32 input computed by hand.
#include <doctest/doctest.h>

#include "engine/nn/layers.h"
#include "models/cnn5.h"
#include "models/summary.h"
#include "test_util.h"

using namespace kiln;

namespace {

// cnn5 with m filters of k x k in every block (filter-org "same"), C input channels,
// n dense units and K classes, leaving s x s pixels after the fifth pool:
//   block 1:     m*C*k^2 weights + (BN ? 2m : m)     (BN's beta replaces the conv bias)
//   blocks 2-5:  m*m*k^2 weights + (BN ? 2m : m), four times
//   dense:       (m*s^2)*n + n;   classifier: n*K + K
int64_t closed_form_parameters(int64_t C, int64_t m, int64_t k, int64_t n, int64_t K, bool bn, int64_t s) {
  const int64_t per_block_extra = bn ? 2 * m : m;
  return (m * C * k * k + per_block_extra) + 4 * (m * m * k * k + per_block_extra) + (m * s * s) * n + n + n * K + K;
}

models::Cnn5Config same_config(int64_t C, int64_t size, int64_t m, int k, int64_t n, int64_t K, bool bn,
                               const std::string& padding) {
  models::Cnn5Config c;
  c.in_channels = C;
  c.input_size = size;
  c.filters = models::Cnn5Config::organise_filters(m, "same");
  c.kernel_sizes = std::vector<int>(5, k);
  c.dense_units = n;
  c.num_classes = K;
  c.batch_norm = bn;
  c.padding = padding;
  return c;
}

// A module type the summary does not know: its MACs must be reported as uncounted.
class Doubler : public nn::Module {
 public:
  Tensor forward_impl(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Doubler"; }
};

}  // namespace

TEST_CASE("summary: cnn5 parameter totals equal the closed form for several configurations") {
  struct Case {
    int64_t C, size, m;
    int k;
    int64_t n, K;
    bool bn;
    const char* padding;
    int64_t s;  // pixels per side after five blocks
    int64_t expected;
  };
  const Case cases[] = {
      // 32 -> 16 -> 8 -> 4 -> 2 -> 1;  (216+16) + 4*(576+16) + 8*16+16 + 16*10+10 = 2914
      {3, 32, 8, 3, 16, 10, true, "same", 1, 2914},
      // valid: 96 -94-> 47 -45-> 22 -20-> 10 -8-> 4 -2-> 1;  (108+4) + 4*(144+4) + 4*8+8 + 8*5+5 = 789
      {3, 96, 4, 3, 8, 5, false, "valid", 1, 789},
      // 5x5 kernels, 64 -> 2 after five pools;  (1200+32) + 4*(6400+32) + (16*2*2)*32+32 + 32*7+7 = 29271
      {3, 64, 16, 5, 32, 7, true, "same", 2, 29271},
      // one grey channel, like Fashion-MNIST padded to 32;  (72+16) + 4*(576+16) + 8*64+64 + 64*10+10 = 3682
      {1, 32, 8, 3, 64, 10, true, "same", 1, 3682},
  };
  for (const Case& t : cases) {
    const models::Cnn5Config config = same_config(t.C, t.size, t.m, t.k, t.n, t.K, t.bn, t.padding);
    INFO(config.to_string());
    const int64_t closed_form = closed_form_parameters(t.C, t.m, t.k, t.n, t.K, t.bn, t.s);
    CHECK(closed_form == t.expected);
    auto model = models::make_cnn5(config);
    const models::ModelSummary summary = models::summarize(*model, Shape{t.C, t.size, t.size});
    CHECK(summary.total_parameters == closed_form);
    CHECK(summary.trainable_parameters == closed_form);
    CHECK(summary.total_parameters == models::cnn5_parameter_count(config));
    CHECK(summary.total_parameters == model->parameter_count());
    CHECK(summary.uncounted.empty());
  }
}

TEST_CASE("summary: cnn5 rows, shapes and MACs for a 3x32x32 input by hand") {
  auto model = models::make_cnn5(same_config(3, 32, 8, 3, 16, 10, true, "same"));
  const models::ModelSummary s = models::summarize(*model, Shape{3, 32, 32});
  // 5 blocks of conv, bn, act, pool; head flatten, dense, act, dropout (p 0.2 "dense"), out.
  REQUIRE(s.layers.size() == 5 * 4 + 5);
  CHECK(s.layers[0].name == "block1.conv");
  CHECK(s.layers[0].type == "Conv2d");
  CHECK(s.layers[0].output_shape == Shape{1, 8, 32, 32});
  CHECK(s.layers[3].output_shape == Shape{1, 8, 16, 16});  // block1.pool
  CHECK(s.layers[20].name == "head.flatten");
  CHECK(s.layers[20].output_shape == Shape{1, 8});
  CHECK(s.layers.back().name == "head.out");
  CHECK(s.layers.back().output_shape == Shape{1, 10});
  // MACs = K * C * R * S * Ho * Wo per conv, in * out per linear:
  CHECK(s.layers[0].macs == 8 * 3 * 9 * 32 * 32);  // 221,184
  CHECK(s.layers[4].macs == 8 * 8 * 9 * 16 * 16);  // 147,456
  CHECK(s.layers[8].macs == 8 * 8 * 9 * 8 * 8);    // 36,864
  CHECK(s.layers[12].macs == 8 * 8 * 9 * 4 * 4);   // 9,216
  CHECK(s.layers[16].macs == 8 * 8 * 9 * 2 * 2);   // 2,304
  CHECK(s.layers[21].macs == 8 * 16);              // dense 128
  CHECK(s.layers[24].macs == 16 * 10);             // out 160
  for (int i : {1, 2, 3, 20, 22, 23}) CHECK(s.layers[i].macs == 0);  // bn, act, pool, flatten, act, dropout
  CHECK(s.total_macs == 417312);  // 221184 + 147456 + 36864 + 9216 + 2304 + 128 + 160
  const std::string table = s.to_table();
  MESSAGE("\n" << table);
  CHECK(table.find("417,312") != std::string::npos);
  CHECK(table.find("block5.conv") != std::string::npos);
}

TEST_CASE("summary: frozen parameters, restored modes, separable convs and unknown layers") {
  auto model = models::make_cnn5(same_config(3, 32, 8, 3, 16, 10, true, "same"));
  model->freeze("block1.");
  model->child("head")->eval();  // a mixed mode must survive the walk
  const Tensor running_mean_before = model->state_dict().at("block1.bn.running_mean").clone();
  const models::ModelSummary s = models::summarize(*model, Shape{3, 32, 32});
  CHECK(s.trainable_parameters == s.total_parameters - (8 * 3 * 9 + 2 * 8));  // block1 conv + bn
  CHECK(s.layers[0].trainable_parameters == 0);
  CHECK(model->is_training());
  CHECK(model->child("block1")->is_training());
  CHECK(!model->child("head")->is_training());
  // eval() during the walk: batch norm's running statistics are untouched.
  CHECK(test::max_abs_diff(model->state_dict().at("block1.bn.running_mean").to_vector(),
                           running_mean_before.to_vector()) == 0);

  // Depthwise 4 * 1 * 3*3 * 10*10 = 3,600 plus pointwise 8 * 4 * 1*1 * 10*10 = 3,200.
  nn::Sequential net;
  net.add(std::make_shared<nn::SeparableConv2d>(4, 8, 3, 1, 1)).add(std::make_shared<Doubler>());
  const models::ModelSummary sep = models::summarize(net, Shape{4, 10, 10});
  CHECK(sep.layers[0].name == "0");
  CHECK(sep.layers[0].macs == 6800);
  CHECK(sep.uncounted == std::vector<std::string>{"1"});
  CHECK(sep.to_table().find("MACs not counted") != std::string::npos);

  test::expect_error_containing([&] { models::summarize(net, Shape{4, 10}); }, {"summary", "(C, H, W)"});
  CHECK(models::with_thousands(1234567) == "1,234,567");
  CHECK(models::with_thousands(999) == "999");
  CHECK(models::human_count(3.2e9) == "3.20 G");
}
