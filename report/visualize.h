// What a trained network looks at: first-layer filters, feature maps, guided
// backpropagation and Grad-CAM. The math of each picture is in docs/visualize.md.
//
// The numbers and the pictures are kept apart: the numeric functions (layer
// activations, channel peaks, guided gradients, the Grad-CAM map, bilinear
// upsampling) return tensors or vectors and are tested against PyTorch; the
// *_image / *_grid functions only turn those numbers into RgbImages (report/image.h).
//
//   layer_activations  A = the output of the sub-module at `layer` for x:   (N, K, h, w)
//   channel_peaks      max over (h, w) of A[n, k], and where it is:          (N, K)
//   guided_backprop    d A[n, k_n, peak] / d x with ReLU backward replaced by
//                      the guided rule f'(x) * max(g, 0):                    (N, C, H, W)
//   grad_cam           alpha_k = mean_(i,j) d y_c / d A_k(i,j),
//                      cam = ReLU(sum_k alpha_k A_k):                        (h, w)
//
// A layer is named by its module path, as in named_parameters() without the
// parameter name ("block5.conv", "layer4", "features.18"); an unknown name is an
// error that lists the valid ones. Layers are reached with forward hooks
// (nn::Module::register_forward_hook), so the network's own forward() runs
// unchanged. The model must be in eval() mode: in train mode batch norm would mix
// the images of a batch and dropout would draw masks. Parameters are excluded from
// the tape while these functions run (no weight gradients are computed or left
// behind); their requires_grad flags are restored afterwards.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "report/image.h"

namespace kiln::report {

// ---- layers

// Every sub-module path of `model`, parents first ("block1", "block1.conv", ...).
std::vector<std::string> layer_names(const nn::Module& model);
// The sub-module at `path`; an unknown path throws listing layer_names(model).
nn::Module& find_layer(nn::Module& model, const std::string& path);

// The first Conv2d in module order ("block1.conv", "conv1", "features.0.0").
std::string first_conv_layer(const nn::Module& model);

// The last conv block: runs x through the model (no tape) and takes the last
// module, in the order their forward passes finish, whose output is a spatial map
// (N, K, h, w) with h * w > 1 and that is or contains a Conv2d; of the modules that
// return that very tensor (a Sequential returns its last child's output) the
// innermost is named. cnn5 -> "block5", resnet18 -> "layer4.1", mobilenet_v2 ->
// "features.18". Grad-CAM's default layer.
std::string last_conv_block(nn::Module& model, const Tensor& x);

// Records the output of one sub-module while it is alive (RAII around a forward
// hook). With Mode::gradient_leaf the output is replaced, for the rest of the
// forward, by a detached copy that requires grad, so that after a backward from
// the network's output, output().grad() holds d(that output) / dA (Grad-CAM).
// A module that runs several times per forward (ResNet's shared relu) keeps the
// output of its last call; calls() says how many there were.
class LayerCapture {
 public:
  enum class Mode { observe, gradient_leaf };
  LayerCapture(nn::Module& model, const std::string& layer, Mode mode = Mode::observe);
  LayerCapture(const LayerCapture&) = delete;  // the hook points at this object
  LayerCapture& operator=(const LayerCapture&) = delete;

  const Tensor& output() const;  // throws when the layer has not run since the capture began
  int calls() const { return calls_; }
  const std::string& layer() const { return layer_; }

 private:
  std::string layer_;
  Mode mode_;
  Tensor output_;
  int calls_ = 0;
  nn::Module::HookHandle hook_;  // last: removed first, before the fields it writes
};

// ---- the numbers

// The output of `layer` for x (N, C, H, W), computed without recording a tape. The
// result is on x's device, in the model's dtype; (N, K, h, w) for a conv layer.
Tensor layer_activations(nn::Module& model, const std::string& layer, const Tensor& x);

// For A (N, K, h, w): value[n * K + k] = max_(i,j) A[n, k, i, j] and position[n * K + k]
// = i * w + j of the first maximum (row-major).
struct ChannelPeaks {
  int64_t images = 0, channels = 0, height = 0, width = 0;
  std::vector<double> value;
  std::vector<int64_t> position;
};
ChannelPeaks channel_peaks(const Tensor& activations);

// For each channel, the index of the image (of n, read `batch_size` at a time) whose
// activation map holds that channel's largest value. activations_of(start, count)
// returns the layer's (count, C, H, W) activations of images start..start+count-1.
struct StrongestImages {
  std::vector<int64_t> image;  // per channel: the image's index
  std::vector<double> value;   // per channel: its largest activation
};
StrongestImages strongest_image_per_channel(int64_t n, int64_t batch_size,
                                            const std::function<Tensor(int64_t, int64_t)>& activations_of);

// Guided backpropagation (Springenberg et al., 2015) of one neuron per image: for
// image n, the neuron is channel channels[n] of `layer` at its peak position, and
// the result row n is d A[n, channels[n], peak] / d x, computed with every relu and
// relu6 backward replaced by the guided rule (GuidedBackpropGuard). x (N, C, H, W);
// returns (N, C, H, W) on x's device and dtype, and the peaks it started from.
struct GuidedBackprop {
  Tensor gradient;      // (N, C, H, W)
  ChannelPeaks peaks;   // of the whole layer, per image
};
GuidedBackprop guided_backprop(nn::Module& model, const std::string& layer, const Tensor& x,
                               const std::vector<int64_t>& channels);

// Grad-CAM (Selvaraju et al., 2017) for one image x (1, C, H, W): y = the model's
// logits, c = target_class (or the arg-max of y when target_class < 0), A = the
// output of `layer` (1, K, h, w):
//     alpha_k = (1 / hw) sum_(i,j) d y_c / d A_k(i,j)
//     cam     = ReLU(sum_k alpha_k A_k)                        (h, w)
struct GradCam {
  int64_t target_class = 0;
  std::vector<double> logits;  // (num_classes)
  std::vector<double> alpha;   // (K)
  std::vector<double> cam;     // (h, w) row-major
  int64_t height = 0, width = 0;
};
GradCam grad_cam(nn::Module& model, const std::string& layer, const Tensor& x, int64_t target_class = -1);

// Bilinear resize of a (height, width) map to (out_height, out_width) with
// half-pixel centres, as torch's F.interpolate(mode="bilinear", align_corners=False).
std::vector<double> upsample_bilinear(const std::vector<double>& map, int64_t height, int64_t width,
                                      int64_t out_height, int64_t out_width);

// The k largest entries of `values`, largest first (ties: the lower index first).
std::vector<int64_t> top_k_indices(const std::vector<double>& values, int64_t k);

// ---- the pictures

// How filter weights are brought to [0, 1]: v' = (v - min) / (max - min), with min
// and max taken per filter (each tile uses its full range) or over the whole layer
// (tiles are comparable: a faint filter looks faint).
enum class FilterScaling { per_filter, global };
FilterScaling parse_filter_scaling(const std::string& name);  // "per-filter" | "global"

// The kernels of a conv weight (K, C, R, S) as a grid of K tiles, ceil(sqrt(K))
// columns, each enlarged `scale` times with nearest neighbour. C == 3: colour (the
// channels as R, G, B); otherwise grey, from the mean over the C input channels.
RgbImage filter_grid(const Tensor& weight, FilterScaling scaling, int scale);

// One image's feature maps (K, h, w) (or (1, K, h, w)) as a grid of K tiles, each
// min-max normalised on its own, coloured with viridis and enlarged `scale` times.
RgbImage feature_map_grid(const Tensor& maps, int scale);

// An image stored planar (C, H, W) in uint8, C = 1 (grey) or 3 (RGB), as an RgbImage.
RgbImage planar_to_image(const uint8_t* pixels, int64_t channels, int64_t height, int64_t width);

// A gradient (C, H, W) as a picture: zero is mid-grey, and +-3 root-mean-square
// deviations reach white/black: pixel = clamp(0.5 + g / (6 rms(g)), 0, 1), per
// channel (C == 3: colour; C == 1: grey).
RgbImage gradient_image(const Tensor& gradient);

// A Grad-CAM map already upsampled to the image's size, divided by its maximum,
// coloured with jet and blended over `image` (alpha = weight of the heat map).
RgbImage cam_overlay(const RgbImage& image, const std::vector<double>& cam, double alpha = 0.5);

}  // namespace kiln::report
