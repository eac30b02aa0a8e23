#include "report/visualize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include "engine/autograd/grad_mode.h"
#include "engine/tensor/factory.h"
#include "models/blocks.h"

namespace kiln::report {

namespace {

// Takes every parameter off the tape for its lifetime (requires_grad = false) and
// restores the flags afterwards: the visualisations need gradients with respect to
// an input or a feature map only, so no weight gradient is computed or left behind.
class ParametersOffTape {
 public:
  explicit ParametersOffTape(const nn::Module& model) {
    for (Tensor parameter : model.parameters())
      if (parameter.requires_grad()) {
        parameter.set_requires_grad(false);  // the handle shares its TensorImpl with the module
        switched_.push_back(parameter);
      }
  }
  ~ParametersOffTape() {
    for (Tensor& parameter : switched_) parameter.set_requires_grad(true);
  }
  ParametersOffTape(const ParametersOffTape&) = delete;
  ParametersOffTape& operator=(const ParametersOffTape&) = delete;

 private:
  std::vector<Tensor> switched_;
};

void check_ready(const nn::Module& model, const char* what, const Tensor& x) {
  KILN_CHECK(!model.is_training(), what, ": the model is in train mode; call eval() first (batch norm would mix ",
             "the images of the batch and dropout would draw masks)");
  KILN_CHECK(x.defined() && x.dim() == 4, what, ": x must be an image batch (N, C, H, W), got ",
             x.defined() ? x.describe() : std::string("an undefined tensor"));
}

std::vector<double> host_values(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::f64).to_vector(); }

// (N, K) or (N, K, h, w) -> {N, K, h, w}: a Linear layer's output is a 1x1 map.
std::array<int64_t, 4> map_dims(const Tensor& t, const char* what) {
  KILN_CHECK(t.dim() == 2 || t.dim() == 4, what, ": expected a layer output (N, K) or (N, K, h, w), got ",
             t.describe());
  return {t.shape()[0], t.shape()[1], t.dim() == 4 ? t.shape()[2] : 1, t.dim() == 4 ? t.shape()[3] : 1};
}

void collect_layer_names(const nn::Module& module, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& [name, child] : module.named_children()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    out.push_back(path);
    collect_layer_names(*child, path, out);
  }
}

uint8_t to_byte(double t) { return static_cast<uint8_t>(std::lround(std::clamp(t, 0.0, 1.0) * 255.0)); }

}  // namespace

// ---- layers

std::vector<std::string> layer_names(const nn::Module& model) {
  std::vector<std::string> names;
  collect_layer_names(model, "", names);
  return names;
}

nn::Module& find_layer(nn::Module& model, const std::string& path) {
  const std::vector<std::string> names = layer_names(model);
  if (std::find(names.begin(), names.end(), path) == names.end()) {
    std::string listed;
    for (const std::string& name : names) listed += (listed.empty() ? "" : ", ") + name;
    KILN_FAIL(model.type_name(), " has no layer '", path, "'; its layers are: ", listed);
  }
  return *models::find_module(model, path);
}

namespace {
bool contains_conv(const nn::Module& module) {
  if (dynamic_cast<const nn::Conv2d*>(&module)) return true;
  for (const auto& entry : module.named_children())
    if (contains_conv(*entry.second)) return true;
  return false;
}
}  // namespace

std::string first_conv_layer(const nn::Module& model) {
  for (const std::string& name : layer_names(model))
    if (dynamic_cast<const nn::Conv2d*>(models::find_module(model, name).get())) return name;
  KILN_FAIL(model.type_name(), " has no Conv2d layer");
}

std::string last_conv_block(nn::Module& model, const Tensor& x) {
  check_ready(model, "last_conv_block", x);
  struct Finished {
    std::string name;
    Tensor output;  // held, so no later tensor can reuse its address
  };
  std::vector<Finished> finished;  // qualifying modules, in the order their forward returned
  std::vector<nn::Module::HookHandle> hooks;
  for (const std::string& name : layer_names(model)) {
    nn::Module& module = find_layer(model, name);
    if (!contains_conv(module)) continue;
    hooks.push_back(module.register_forward_hook([&finished, name](nn::Module&, const Tensor&, const Tensor& y) {
      if (y.dim() == 4 && y.shape()[2] * y.shape()[3] > 1) finished.push_back({name, y});
      return Tensor();
    }));
  }
  {
    NoGradGuard no_grad;
    model.forward(x);
  }
  KILN_CHECK(!finished.empty(), "last_conv_block: no conv layer of ", model.type_name(),
             " gives a spatial map larger than 1x1 for an input of ", x.shape());
  // A Sequential finishes after its last child and returns the same tensor: name
  // the first module (the innermost) that returned the last block's output.
  for (const Finished& entry : finished)
    if (entry.output.impl_ptr() == finished.back().output.impl_ptr()) return entry.name;
  return finished.back().name;
}

LayerCapture::LayerCapture(nn::Module& model, const std::string& layer, Mode mode) : layer_(layer), mode_(mode) {
  hook_ = find_layer(model, layer).register_forward_hook(
      [this](nn::Module&, const Tensor&, const Tensor& output) -> Tensor {
        ++calls_;
        if (mode_ == Mode::observe) {
          output_ = output;
          return Tensor();  // keep the output
        }
        // A fresh leaf: the tape below this layer is cut, and backward stores dA in its grad.
        output_ = output.detach();
        output_.set_requires_grad(true);
        return output_;
      });
}

const Tensor& LayerCapture::output() const {
  KILN_CHECK(output_.defined(), "layer '", layer_, "' did not run during the forward pass (is it part of the ",
             "path from the input to the output?)");
  return output_;
}

// ---- the numbers

Tensor layer_activations(nn::Module& model, const std::string& layer, const Tensor& x) {
  check_ready(model, "layer_activations", x);
  LayerCapture capture(model, layer);
  NoGradGuard no_grad;
  model.forward(x);
  return capture.output();
}

ChannelPeaks channel_peaks(const Tensor& activations) {
  const auto [n_images, channels, height, width] = map_dims(activations, "channel_peaks");
  const std::vector<double> values = host_values(activations);
  ChannelPeaks peaks;
  peaks.images = n_images;
  peaks.channels = channels;
  peaks.height = height;
  peaks.width = width;
  const int64_t plane = height * width;
  for (int64_t map = 0; map < n_images * channels; ++map) {
    const double* first = values.data() + map * plane;
    const double* best = std::max_element(first, first + plane);  // the first maximum
    peaks.value.push_back(*best);
    peaks.position.push_back(best - first);
  }
  return peaks;
}

GuidedBackprop guided_backprop(nn::Module& model, const std::string& layer, const Tensor& x,
                               const std::vector<int64_t>& channels) {
  check_ready(model, "guided_backprop", x);
  KILN_CHECK(grad_mode_enabled(), "guided_backprop: gradients are off (called under NoGradGuard)");
  KILN_CHECK(static_cast<int64_t>(channels.size()) == x.shape()[0], "guided_backprop: ", channels.size(),
             " channels given for ", x.shape()[0], " images (one per image)");
  ParametersOffTape off_tape(model);
  Tensor input = x.detach();
  input.set_requires_grad(true);
  LayerCapture capture(model, layer);
  {
    GuidedBackpropGuard guided;  // relu and relu6 record the guided rule during this forward
    model.forward(input);
  }
  const Tensor& activations = capture.output();
  KILN_CHECK(activations.requires_grad(), "guided_backprop: layer '", layer, "' does not depend on the input");
  GuidedBackprop result;
  result.peaks = channel_peaks(activations);
  const ChannelPeaks& peaks = result.peaks;
  // The seed: 1 at each image's chosen neuron, 0 elsewhere, so row n of the input
  // gradient is the gradient of that single activation.
  std::vector<double> seed(static_cast<size_t>(activations.numel()), 0.0);
  const int64_t plane = peaks.height * peaks.width;
  for (int64_t n = 0; n < peaks.images; ++n) {
    const int64_t k = channels[static_cast<size_t>(n)];
    KILN_CHECK(k >= 0 && k < peaks.channels, "guided_backprop: channel ", k, " of layer '", layer, "' is out of range (",
               peaks.channels, " channels)");
    const int64_t map = n * peaks.channels + k;
    seed[static_cast<size_t>(map * plane + peaks.position[static_cast<size_t>(map)])] = 1.0;
  }
  activations.backward(from_vector(seed, activations.shape(), options_of(activations)));
  result.gradient = input.grad();
  return result;
}

GradCam grad_cam(nn::Module& model, const std::string& layer, const Tensor& x, int64_t target_class) {
  check_ready(model, "grad_cam", x);
  KILN_CHECK(x.shape()[0] == 1, "grad_cam: expects one image (1, C, H, W), got ", x.shape());
  KILN_CHECK(grad_mode_enabled(), "grad_cam: gradients are off (called under NoGradGuard)");
  ParametersOffTape off_tape(model);
  LayerCapture capture(model, layer, LayerCapture::Mode::gradient_leaf);
  const Tensor logits = model.forward(x.detach());
  KILN_CHECK(capture.calls() == 1, "grad_cam: layer '", layer, "' ran ", capture.calls(),
             " times in one forward pass; choose a layer that runs once (for example its parent)");
  KILN_CHECK(logits.dim() == 2 && logits.shape()[0] == 1, "grad_cam: expected logits (1, classes), got ",
             logits.describe());
  GradCam result;
  result.logits = host_values(logits);
  const int64_t classes = logits.shape()[1];
  result.target_class = target_class >= 0 ? target_class : top_k_indices(result.logits, 1)[0];
  KILN_CHECK(result.target_class < classes, "grad_cam: class ", result.target_class, " is out of range (", classes,
             " classes)");

  const Tensor& activations = capture.output();  // the leaf that replaced the layer's output
  KILN_CHECK(logits.requires_grad(), "grad_cam: the logits do not depend on layer '", layer, "'");
  std::vector<double> seed(static_cast<size_t>(classes), 0.0);
  seed[static_cast<size_t>(result.target_class)] = 1.0;  // d y_c / d logits
  logits.backward(from_vector(seed, logits.shape(), options_of(logits)));
  const Tensor grad = activations.grad();
  KILN_CHECK(grad.defined(), "grad_cam: no gradient reached layer '", layer, "'");

  const auto [n_images, channels, height, width] = map_dims(activations, "grad_cam");
  const std::vector<double> a = host_values(activations), da = host_values(grad);
  const int64_t plane = height * width;
  result.height = height;
  result.width = width;
  result.alpha.assign(static_cast<size_t>(channels), 0.0);
  result.cam.assign(static_cast<size_t>(plane), 0.0);
  for (int64_t k = 0; k < channels; ++k) {
    const double* g = da.data() + k * plane;
    result.alpha[k] = std::accumulate(g, g + plane, 0.0) / static_cast<double>(plane);  // global average pool
    for (int64_t p = 0; p < plane; ++p) result.cam[p] += result.alpha[k] * a[k * plane + p];
  }
  for (double& v : result.cam) v = std::max(v, 0.0);  // only what speaks for the class
  return result;
}

std::vector<double> upsample_bilinear(const std::vector<double>& map, int64_t height, int64_t width,
                                      int64_t out_height, int64_t out_width) {
  KILN_CHECK(static_cast<int64_t>(map.size()) == height * width && height > 0 && width > 0,
             "upsample_bilinear: ", map.size(), " values for a ", height, "x", width, " map");
  KILN_CHECK(out_height > 0 && out_width > 0, "upsample_bilinear: empty output size ", out_height, "x", out_width);
  // Output pixel o covers source coordinate (o + 0.5) * in / out - 0.5 (pixel centres
  // line up), clamped at 0 on the low side as torch does; the neighbour on the high
  // side is clamped to the last row/column.
  auto source = [](int64_t o, int64_t in, int64_t out, int64_t& lo, int64_t& hi, double& frac) {
    const double s = std::max((static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5, 0.0);
    lo = std::min(static_cast<int64_t>(s), in - 1);
    hi = std::min(lo + 1, in - 1);
    frac = s - static_cast<double>(lo);
  };
  std::vector<double> out(static_cast<size_t>(out_height * out_width));
  for (int64_t oy = 0; oy < out_height; ++oy) {
    int64_t y0, y1;
    double fy;
    source(oy, height, out_height, y0, y1, fy);
    for (int64_t ox = 0; ox < out_width; ++ox) {
      int64_t x0, x1;
      double fx;
      source(ox, width, out_width, x0, x1, fx);
      const double top = (1 - fx) * map[y0 * width + x0] + fx * map[y0 * width + x1];
      const double bottom = (1 - fx) * map[y1 * width + x0] + fx * map[y1 * width + x1];
      out[oy * out_width + ox] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}

std::vector<int64_t> top_k_indices(const std::vector<double>& values, int64_t k) {
  std::vector<int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  k = std::min<int64_t>(k, static_cast<int64_t>(values.size()));
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  order.resize(static_cast<size_t>(k));
  return order;
}

// ---- the pictures

FilterScaling parse_filter_scaling(const std::string& name) {
  if (name == "per-filter") return FilterScaling::per_filter;
  if (name == "global") return FilterScaling::global;
  KILN_FAIL("filter normalisation must be per-filter or global, got '", name, "'");
}

RgbImage filter_grid(const Tensor& weight, FilterScaling scaling, int scale) {
  KILN_CHECK(weight.defined() && weight.dim() == 4, "filter_grid: expected a conv weight (K, C, R, S), got ",
             weight.defined() ? weight.describe() : std::string("an undefined tensor"));
  KILN_CHECK(scale >= 1, "filter_grid: scale must be at least 1, got ", scale);
  const int64_t filters = weight.shape()[0], channels = weight.shape()[1];
  const int64_t rows = weight.shape()[2], cols = weight.shape()[3], plane = rows * cols;
  const std::vector<double> w = host_values(weight);
  // Each filter as planes to show: its 3 channels (colour), or the mean over its
  // C channels (grey). values[f] holds (shown_channels, R, S).
  const int64_t shown = channels == 3 ? 3 : 1;
  std::vector<std::vector<double>> values(static_cast<size_t>(filters));
  for (int64_t f = 0; f < filters; ++f) {
    const double* first = w.data() + f * channels * plane;
    if (shown == 3) {
      values[f].assign(first, first + 3 * plane);
    } else {
      values[f].assign(static_cast<size_t>(plane), 0.0);
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t p = 0; p < plane; ++p) values[f][p] += first[c * plane + p] / static_cast<double>(channels);
    }
  }
  double global_lo = INFINITY, global_hi = -INFINITY;
  for (const auto& v : values) {
    global_lo = std::min(global_lo, *std::min_element(v.begin(), v.end()));
    global_hi = std::max(global_hi, *std::max_element(v.begin(), v.end()));
  }
  std::vector<RgbImage> tiles;
  for (const auto& v : values) {
    double lo = global_lo, hi = global_hi;
    if (scaling == FilterScaling::per_filter) {
      lo = *std::min_element(v.begin(), v.end());
      hi = *std::max_element(v.begin(), v.end());
    }
    auto unit = [&](double value) { return hi > lo ? (value - lo) / (hi - lo) : 0.5; };
    RgbImage tile(static_cast<int>(cols), static_cast<int>(rows));
    for (int64_t y = 0; y < rows; ++y)
      for (int64_t x = 0; x < cols; ++x) {
        const int64_t p = y * cols + x;
        const uint8_t r = to_byte(unit(v[p]));
        tile.set(static_cast<int>(x), static_cast<int>(y),
                 shown == 3 ? Rgb{r, to_byte(unit(v[plane + p])), to_byte(unit(v[2 * plane + p]))} : Rgb{r, r, r});
      }
    tiles.push_back(resize_nearest(tile, static_cast<int>(cols) * scale, static_cast<int>(rows) * scale));
  }
  const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(filters))));
  return tile_grid(tiles, columns);
}

RgbImage feature_map_grid(const Tensor& maps, int scale) {
  KILN_CHECK(maps.defined() && (maps.dim() == 3 || (maps.dim() == 4 && maps.shape()[0] == 1)),
             "feature_map_grid: expected one image's maps (K, h, w) or (1, K, h, w), got ",
             maps.defined() ? maps.describe() : std::string("an undefined tensor"));
  KILN_CHECK(scale >= 1, "feature_map_grid: scale must be at least 1, got ", scale);
  const int d = maps.dim() - 3;
  const int64_t channels = maps.shape()[d], height = maps.shape()[d + 1], width = maps.shape()[d + 2];
  const std::vector<double> values = host_values(maps);
  std::vector<RgbImage> tiles;
  for (int64_t k = 0; k < channels; ++k) {
    const std::vector<double> map(values.begin() + k * height * width, values.begin() + (k + 1) * height * width);
    const RgbImage tile = scalar_map_to_image(map, static_cast<int>(width), static_cast<int>(height), viridis);
    tiles.push_back(resize_nearest(tile, static_cast<int>(width) * scale, static_cast<int>(height) * scale));
  }
  return tile_grid(tiles, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(channels)))));
}

RgbImage planar_to_image(const uint8_t* pixels, int64_t channels, int64_t height, int64_t width) {
  KILN_CHECK(channels == 1 || channels == 3, "planar_to_image: expected 1 or 3 channels, got ", channels);
  RgbImage image(static_cast<int>(width), static_cast<int>(height));
  const int64_t plane = height * width;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const int64_t p = y * width + x;
      const uint8_t r = pixels[p];
      image.set(static_cast<int>(x), static_cast<int>(y),
                channels == 3 ? Rgb{r, pixels[plane + p], pixels[2 * plane + p]} : Rgb{r, r, r});
    }
  return image;
}

RgbImage gradient_image(const Tensor& gradient) {
  KILN_CHECK(gradient.defined() && (gradient.dim() == 3 || (gradient.dim() == 4 && gradient.shape()[0] == 1)),
             "gradient_image: expected one image's gradient (C, H, W) or (1, C, H, W), got ",
             gradient.defined() ? gradient.describe() : std::string("an undefined tensor"));
  const int d = gradient.dim() - 3;
  const int64_t channels = gradient.shape()[d], height = gradient.shape()[d + 1], width = gradient.shape()[d + 2];
  KILN_CHECK(channels == 1 || channels == 3, "gradient_image: expected 1 or 3 channels, got ", channels);
  const std::vector<double> g = host_values(gradient);
  double sum_sq = 0;
  for (double v : g) sum_sq += v * v;
  const double rms = std::sqrt(sum_sq / static_cast<double>(std::max<size_t>(g.size(), 1)));
  const double gain = rms > 0 ? 1.0 / (6.0 * rms) : 0.0;  // +-3 rms -> 0 and 1
  std::vector<uint8_t> planar(g.size());
  for (size_t i = 0; i < g.size(); ++i) planar[i] = to_byte(0.5 + g[i] * gain);
  return planar_to_image(planar.data(), channels, height, width);
}

RgbImage cam_overlay(const RgbImage& image, const std::vector<double>& cam, double alpha) {
  KILN_CHECK(cam.size() == static_cast<size_t>(image.width) * image.height, "cam_overlay: ", cam.size(),
             " map values for a ", image.width, "x", image.height, " image (upsample the map first)");
  const double top = *std::max_element(cam.begin(), cam.end());
  RgbImage heat(image.width, image.height);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x)
      heat.set(x, y, jet(top > 0 ? cam[static_cast<size_t>(y) * image.width + x] / top : 0.0));
  return blend(image, heat, alpha);
}

StrongestImages strongest_image_per_channel(int64_t n, int64_t batch_size,
                                            const std::function<Tensor(int64_t, int64_t)>& activations_of) {
  StrongestImages best;
  std::vector<double>& best_value = best.value;
  std::vector<int64_t>& best_image = best.image;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t count = std::min(batch_size, n - start);
    const ChannelPeaks peaks = channel_peaks(activations_of(start, count));
    if (best_value.empty()) {
      best_value.assign(static_cast<size_t>(peaks.channels), -INFINITY);
      best_image.assign(static_cast<size_t>(peaks.channels), 0);
    }
    for (int64_t i = 0; i < count; ++i)
      for (int64_t k = 0; k < peaks.channels; ++k)
        if (peaks.value[i * peaks.channels + k] > best_value[k]) {
          best_value[k] = peaks.value[i * peaks.channels + k];
          best_image[k] = start + i;
        }
  }
  return best;
}

}  // namespace kiln::report
