// report/visualize: layer capture against running the network by hand, guided
// backprop and Grad-CAM against PyTorch (tests/fixtures/visualize_fixtures.py, f64),
// guided backprop without ReLUs against finite differences, the default layers of
// the zoo, and the sizes and colours of the pictures.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "models/cnn5.h"
#include "models/registry.h"
#include "report/visualize.h"
#include "test_util.h"

using namespace kiln;
using namespace kiln::report;

namespace {

// The fixture's net (visualize_fixtures.py), in float64 with the fixture's weights.
std::shared_ptr<nn::Sequential> fixture_net(const SafeTensors& f) {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1))
      .add(std::make_shared<nn::BatchNorm>(4))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::MaxPool2d>(Pool2dParams{}))
      .add(std::make_shared<nn::Conv2d>(4, 6, 3, 1, 1))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu6))
      .add(std::make_shared<nn::Conv2d>(6, 8, 3, 1, 1))
      .add(std::make_shared<nn::ActivationLayer>(Activation::relu))
      .add(std::make_shared<nn::AdaptiveAvgPool2d>(1, 1))
      .add(std::make_shared<nn::Flatten>())
      .add(std::make_shared<nn::Linear>(8, 5));
  net->to(DType::f64);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind("net.", 0) == 0) state[name.substr(4)] = t;
  net->load_state_dict(state);
  net->eval();
  return net;
}

std::shared_ptr<nn::Sequential> small_cnn5(int64_t input_size = 32) {
  models::Cnn5Config config;
  config.filters = {4, 4, 8, 8, 8};
  config.dense_units = 8;
  config.input_size = input_size;
  auto net = models::make_cnn5(config);
  net->eval();
  return net;
}

Tensor random_images(const Shape& shape, uint64_t seed, DType dtype = DType::f32) {
  Rng rng(seed);
  return uniform(shape, -1.0, 1.0, rng, {dtype});
}

}  // namespace

TEST_CASE("visualize: a layer capture is the output of running the network's prefix by hand") {
  auto net = small_cnn5();
  const Tensor x = random_images({2, 3, 32, 32}, 1);
  const Tensor captured = layer_activations(*net, "block2.act", x);
  // By hand: block1 whole, then block2's conv, bn, act.
  auto block2 = std::dynamic_pointer_cast<nn::Sequential>(net->child("block2"));
  Tensor h = net->child("block1")->forward(x);
  for (const char* part : {"conv", "bn", "act"}) h = block2->child(part)->forward(h);
  CHECK(captured.shape() == Shape{2, 4, 16, 16});
  CHECK(test::max_abs_diff(captured.to_vector(), h.to_vector()) == 0.0);
  CHECK_FALSE(captured.requires_grad());  // computed without a tape

  // The hook is gone with the capture: the model runs as before, and a capture of
  // a layer that is not on the path says so.
  auto capture = std::make_unique<LayerCapture>(*net, "block1");
  CHECK_THROWS_WITH_AS(capture->output(), doctest::Contains("did not run"), Error);
  net->forward(x);
  CHECK(capture->calls() == 1);
  capture.reset();
  net->forward(x);
}

TEST_CASE("visualize: an unknown layer lists the valid ones") {
  auto net = small_cnn5();
  test::expect_error_containing([&] { layer_activations(*net, "conv5", random_images({1, 3, 32, 32}, 2)); },
                                {"no layer 'conv5'", "block5.conv", "head.out"});
  CHECK(layer_names(*net).front() == "block1");
  CHECK(first_conv_layer(*net) == "block1.conv");
}

TEST_CASE("visualize: guided backprop through ReLU and ReLU6 matches PyTorch in float64") {
  const SafeTensors f = test::load_fixture("visualize.safetensors");
  auto net = fixture_net(f);
  const std::vector<int64_t> channels = f.at("guided.channels").to_vector_as<int64_t>();
  const GuidedBackprop guided = guided_backprop(*net, "7", f.at("input"), channels);
  CHECK(guided.gradient.shape() == Shape{2, 3, 12, 12});
  CHECK(guided.gradient.dtype() == DType::f64);
  CHECK(test::max_abs_diff(guided.peaks.value, f.at("guided.peak_value").to_vector()) < 1e-12);
  CHECK(guided.peaks.position == f.at("guided.peak_position").to_vector_as<int64_t>());
  CHECK(test::max_abs_diff(guided.gradient.to_vector(), f.at("guided.gradient").to_vector()) < 1e-12);
  // Parameters came back on the tape, with no gradient left on them.
  for (const Tensor& p : net->parameters()) {
    CHECK(p.requires_grad());
    CHECK_FALSE(p.grad().defined());
  }

  // The guided rule really changed the answer: the plain gradient differs.
  Tensor x = f.at("input").detach();
  x.set_requires_grad(true);
  const Tensor a = [&] {
    LayerCapture capture(*net, "7");
    net->forward(x);
    return capture.output();
  }();
  std::vector<double> seed(static_cast<size_t>(a.numel()), 0.0);
  for (int64_t n = 0; n < 2; ++n) {
    const int64_t map = n * 8 + channels[n];
    seed[map * 36 + guided.peaks.position[map]] = 1.0;
  }
  a.backward(from_vector(seed, a.shape(), {DType::f64}));
  CHECK(test::max_abs_diff(x.grad().to_vector(), f.at("guided.gradient").to_vector()) > 1e-2);
}

TEST_CASE("visualize: with no ReLU in the way, guided backprop is the plain gradient (finite differences)") {
  // conv -> tanh -> conv: guided backprop leaves tanh alone, so the result must be
  // d A[n, k, peak] / d x itself, which central differences measure.
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1))
      .add(std::make_shared<nn::ActivationLayer>(Activation::tanh))
      .add(std::make_shared<nn::Conv2d>(3, 2, 3, 1, 0));
  net->to(DType::f64);
  net->eval();
  const Tensor x = random_images({1, 2, 6, 6}, 3, DType::f64);
  const GuidedBackprop guided = guided_backprop(*net, "2", x, {1});
  const int64_t position = guided.peaks.position[1];  // channel 1 of image 0
  auto neuron = [&](const std::vector<double>& values) {
    const Tensor a = layer_activations(*net, "2", from_vector(values, x.shape(), {DType::f64}));
    return a.to_vector()[16 + position];  // (1, 2, 4, 4): channel 1 starts at 16
  };
  const std::vector<double> x0 = x.to_vector(), gradient = guided.gradient.to_vector();
  const double eps = 1e-6;
  double worst = 0;
  for (size_t i = 0; i < x0.size(); ++i) {
    std::vector<double> plus = x0, minus = x0;
    plus[i] += eps;
    minus[i] -= eps;
    worst = std::max(worst, std::abs((neuron(plus) - neuron(minus)) / (2 * eps) - gradient[i]));
  }
  CHECK(worst < 1e-8);
  double norm = 0;
  for (double g : gradient) norm += std::abs(g);
  CHECK(norm > 0.1);  // a real gradient, not zeros
}

TEST_CASE("visualize: Grad-CAM matches PyTorch in float64, for a chosen and for the predicted class") {
  const SafeTensors f = test::load_fixture("visualize.safetensors");
  auto net = fixture_net(f);
  const Tensor x = f.at("input").narrow0(0, 1);
  const GradCam cam = grad_cam(*net, "7", x, f.at("gradcam.class").to_vector_as<int64_t>()[0]);
  CHECK(cam.target_class == 3);
  CHECK(cam.height == 6);
  CHECK(cam.width == 6);
  CHECK(test::max_abs_diff(cam.logits, f.at("gradcam.logits").to_vector()) < 1e-12);
  CHECK(test::max_abs_diff(cam.alpha, f.at("gradcam.alpha").to_vector()) < 1e-12);
  CHECK(test::max_abs_diff(cam.cam, f.at("gradcam.cam").to_vector()) < 1e-12);
  CHECK(test::max_abs_diff(upsample_bilinear(cam.cam, 6, 6, 12, 12), f.at("gradcam.upsampled").to_vector()) < 1e-12);

  const GradCam predicted = grad_cam(*net, "7", x);
  CHECK(predicted.target_class == f.at("gradcam.predicted_class").to_vector_as<int64_t>()[0]);
  CHECK_THROWS_WITH_AS(grad_cam(*net, "7", x, 5), doctest::Contains("out of range (5 classes)"), Error);
  for (const Tensor& p : net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("visualize: bilinear upsampling matches F.interpolate(align_corners=False) at non-integer ratios") {
  const SafeTensors f = test::load_fixture("visualize.safetensors");
  CHECK(test::max_abs_diff(upsample_bilinear(f.at("upsample.map").to_vector(), 3, 4, 7, 10),
                           f.at("upsample.out").to_vector()) < 1e-12);
  CHECK(upsample_bilinear({1, 2, 3, 4}, 2, 2, 2, 2) == std::vector<double>{1, 2, 3, 4});  // same size: unchanged
}

TEST_CASE("visualize: Grad-CAM and guided backprop need eval mode and a layer that runs once") {
  auto net = small_cnn5();
  const Tensor x = random_images({1, 3, 32, 32}, 4);
  net->train();
  CHECK_THROWS_WITH_AS(grad_cam(*net, "block5", x), doctest::Contains("call eval() first"), Error);
  net->eval();
  auto resnet = models::make_model("resnet18", 3);
  resnet->eval();
  CHECK_THROWS_WITH_AS(grad_cam(*resnet, "layer4.1.relu", random_images({1, 3, 64, 64}, 5)),
                       doctest::Contains("ran 2 times"), Error);
}

TEST_CASE("visualize: the default layers of cnn5, ResNet and MobileNetV2") {
  auto cnn5 = small_cnn5(64);
  CHECK(last_conv_block(*cnn5, random_images({1, 3, 64, 64}, 6)) == "block5");
  auto resnet = models::make_model("resnet18", 3);
  resnet->eval();
  CHECK(first_conv_layer(*resnet) == "conv1");
  CHECK(last_conv_block(*resnet, random_images({1, 3, 64, 64}, 7)) == "layer4.1");
  auto mobilenet = models::make_model("mobilenet_v2", 3);
  mobilenet->eval();
  CHECK(first_conv_layer(*mobilenet) == "features.0.0");
  CHECK(last_conv_block(*mobilenet, random_images({1, 3, 64, 64}, 8)) == "features.18");
}

TEST_CASE("visualize: an 8x8 filter grid for 64 RGB filters, normalised per filter or globally") {
  // Filter f is f * 0.01 * (a ramp in red, zero green and blue).
  std::vector<double> w(64 * 3 * 7 * 7, 0.0);
  for (int f = 0; f < 64; ++f)
    for (int p = 0; p < 49; ++p) w[f * 147 + p] = (f + 1) * 0.01 * p;
  const Tensor weight = from_vector(w, {64, 3, 7, 7});
  const RgbImage grid = filter_grid(weight, FilterScaling::per_filter, 4);
  CHECK(grid.width == 8 * 28 + 9 * 2);  // 8 tiles of 7 x 4 pixels, a 2-pixel gap around each
  CHECK(grid.height == 8 * 28 + 9 * 2);
  // Per filter, every tile spans the full range: the last red pixel of the last tile is 255.
  const int last_x = 2 + 7 * 30 + 27, last_y = 2 + 7 * 30 + 27;
  CHECK(grid.at(last_x, last_y).r == 255);
  CHECK(grid.at(2 + 27, 2 + 27).r == 255);  // and of the first (faintest) tile too
  CHECK(grid.at(2, 2).r == 0);
  CHECK(grid.at(2 + 27, 2 + 27).g == 0);  // green is 0 = the filter's minimum
  // Globally, the faintest filter stays dark.
  const RgbImage global = filter_grid(weight, FilterScaling::global, 4);
  CHECK(global.at(last_x, last_y).r == 255);
  CHECK(global.at(2 + 27, 2 + 27).r < 10);
  CHECK(parse_filter_scaling("global") == FilterScaling::global);
  CHECK_THROWS_WITH_AS(parse_filter_scaling("max"), doctest::Contains("per-filter or global"), Error);

  // 1-channel (or many-channel) filters are grey, from the mean over the channels.
  const RgbImage grey = filter_grid(from_vector(std::vector<double>(10 * 2 * 9, 0.0), {10, 2, 3, 3}),
                                    FilterScaling::per_filter, 1);
  CHECK(grey.width == 4 * 3 + 5 * 2);  // ceil(sqrt(10)) = 4 columns, 3 rows
  CHECK(grey.height == 3 * 3 + 4 * 2);
  CHECK(grey.at(2, 2).r == grey.at(2, 2).b);
}

TEST_CASE("visualize: feature-map grids, gradient pictures and the Grad-CAM overlay") {
  std::vector<double> maps(16 * 5 * 5);
  for (size_t i = 0; i < maps.size(); ++i) maps[i] = std::sin(0.3 * static_cast<double>(i));
  const RgbImage grid = feature_map_grid(from_vector(maps, {1, 16, 5, 5}), 3);
  CHECK(grid.width == 4 * 15 + 5 * 2);
  CHECK(grid.height == 4 * 15 + 5 * 2);

  // A zero gradient is mid-grey; +3 rms is white.
  std::vector<double> g(3 * 4 * 4, 0.0);
  g[0] = 1.0;
  const RgbImage picture = gradient_image(from_vector(g, {3, 4, 4}));
  CHECK(picture.width == 4);
  CHECK(picture.at(1, 1).r == 128);
  CHECK(picture.at(0, 0).r == 255);  // rms = 1/sqrt(48): g = 1 is far beyond 3 rms

  RgbImage image(4, 4, {0, 0, 0});
  std::vector<double> cam(16, 0.0);
  cam[15] = 2.0;
  const RgbImage overlay = cam_overlay(image, cam, 1.0);  // alpha 1: the heat map alone
  CHECK(overlay.at(3, 3).r == jet(1.0).r);
  CHECK(overlay.at(0, 0).b == jet(0.0).b);
  CHECK(top_k_indices({0.1, 0.5, 0.5, -1, 2}, 3) == std::vector<int64_t>{4, 1, 2});
}
