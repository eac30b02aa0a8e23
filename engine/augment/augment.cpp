// The augmentation's public side: the CLI spec parser, the checks at the boundary
// and the dispatch to the CPU reference or the fused CUDA kernel.
#include "engine/augment/augment.h"

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "engine/core/check.h"
#include "engine/ops/dispatch.h"
#include "engine/tensor/factory.h"

namespace kiln::augment {
namespace {

// One "lo-hi" or single-number argument. strtod reads "1e-2" as one number, so
// only a '-' after a complete number separates a range.
struct Range {
  float lo = 0, hi = 0;
  bool is_range = false;
};

Range parse_range(const std::string& text, const std::string& token) {
  const char* begin = text.c_str();
  char* end = nullptr;
  Range r;
  r.lo = r.hi = std::strtof(begin, &end);
  bool ok = end != begin;
  if (ok && *end == '-') {
    const char* second = end + 1;
    r.hi = std::strtof(second, &end);
    r.is_range = true;
    ok = end != second;
  }
  KILN_CHECK(ok && *end == '\0' && std::isfinite(r.lo) && std::isfinite(r.hi),
             "augment: cannot read '", text, "' in '", token, "' as a number or a range lo-hi");
  KILN_CHECK(r.lo >= 0 && r.lo <= r.hi, "augment: '", token, "' needs 0 <= lo <= hi, got ", r.lo, "-", r.hi);
  return r;
}

float probability(const std::vector<Range>& args, const std::string& token) {
  KILN_CHECK(args[0].lo <= 1 && !args[0].is_range, "augment: '", token, "' takes a probability in [0, 1]");
  return args[0].lo;
}

float unit(const std::vector<Range>& args, const std::string& token) {
  KILN_CHECK(args[0].lo <= 1 && !args[0].is_range, "augment: '", token, "' takes one number in [0, 1]");
  return args[0].lo;
}

float single(const std::vector<Range>& args, const std::string& token) {
  KILN_CHECK(!args[0].is_range, "augment: '", token, "' takes one number, not a range");
  return args[0].lo;
}

// The registry of names: each entry reads its arguments into the spec. Adding a
// transform is one row here, one draw slot (draws.h) and its formula (pixel.h).
using Setter = std::function<void(AugmentSpec&, const std::vector<Range>&, const std::string&)>;
struct Entry {
  int max_args;
  Setter set;
};

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> entries = {
      {"crop", {2, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) {
                  s.crop = true;
                  s.crop_scale_lo = a[0].lo, s.crop_scale_hi = a[0].hi;
                  KILN_CHECK(s.crop_scale_lo > 0 && s.crop_scale_hi <= 1, "augment: '", t, "' needs a scale range in (0, 1]");
                  if (a.size() > 1) s.crop_ratio_lo = a[1].lo, s.crop_ratio_hi = a[1].hi;
                  KILN_CHECK(s.crop_ratio_lo > 0, "augment: '", t, "' needs a positive aspect ratio range");
                }}},
      {"scale", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) {
                   s.zoom_lo = a[0].lo, s.zoom_hi = a[0].hi;
                   KILN_CHECK(s.zoom_lo > 0, "augment: '", t, "' needs a positive zoom range");
                 }}},
      {"hflip", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.hflip = probability(a, t); }}},
      {"vflip", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.vflip = probability(a, t); }}},
      {"rotate", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.rotate_degrees = single(a, t); }}},
      {"translate", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) {
                       s.translate = single(a, t);
                       KILN_CHECK(s.translate <= 1, "augment: '", t, "' takes a fraction of the image in [0, 1]");
                     }}},
      {"brightness", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.brightness = unit(a, t); }}},
      {"contrast", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.contrast = unit(a, t); }}},
      {"saturation", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.saturation = unit(a, t); }}},
      {"hue", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) {
                 s.hue = single(a, t);
                 KILN_CHECK(s.hue <= 0.5f, "augment: '", t, "' takes a hue shift in [0, 0.5] turns");
               }}},
      {"gray", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.gray = probability(a, t); }}},
      {"blur", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.blur_sigma = single(a, t); }}},
      {"noise", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.noise_sigma = single(a, t); }}},
      {"erase", {2, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) {
                   s.erase = probability(a, t);
                   if (a.size() > 1) s.erase_area_lo = a[1].lo, s.erase_area_hi = a[1].hi;
                   KILN_CHECK(s.erase_area_hi <= 1, "augment: '", t, "' needs an area range in [0, 1]");
                 }}},
      {"mixup", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.mix.mixup_alpha = single(a, t); }}},
      {"cutmix", {1, [](AugmentSpec& s, const std::vector<Range>& a, const std::string& t) { s.mix.cutmix_alpha = single(a, t); }}},
  };
  return entries;
}

std::string join_names() {
  std::string out;
  for (const std::string& name : augment_names()) out += (out.empty() ? "" : ", ") + name;
  for (const auto& preset : augment_presets()) out += "; preset " + preset.first;
  return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

}  // namespace

const std::vector<std::string>& augment_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& entry : registry()) out.push_back(entry.first);
    return out;
  }();
  return names;
}

const std::vector<std::pair<std::string, std::string>>& augment_presets() {
  // tiny: 64 px images (Tiny-ImageNet), where a pixel is 1/64 of the view. The crop
  // keeps at least 35% of the area (0.08, ImageNet's, leaves a few pixels of a 64 px
  // object); rotation and shift stay small, the colour jitter moderate; blur is
  // at most one output pixel, the noise 3% of the range; one image in four loses a
  // rectangle of 2-20% of its area; mixup 0.2 blends pairs gently. docs/augment.md
  // shows each one on a preview grid.
  static const std::vector<std::pair<std::string, std::string>> presets = {
      {"tiny",
       "crop:0.35-1:0.75-1.333,hflip:0.5,rotate:10,translate:0.08,scale:0.9-1.1,brightness:0.25,contrast:0.25,"
       "saturation:0.25,hue:0.03,gray:0.05,blur:1,noise:0.03,erase:0.25:0.02-0.2,mixup:0.2"},
  };
  return presets;
}

AugmentSpec parse_augment_spec(const std::string& text) {
  AugmentSpec spec;
  if (text.empty() || text == "none") return spec;
  // A preset's name stands for its spec; tokens after it override its entries.
  std::string expanded;
  for (const std::string& token : split(text, ',')) {
    std::string piece = token;
    for (const auto& [name, preset] : augment_presets())
      if (token == name) piece = preset;
    expanded += (expanded.empty() ? "" : ",") + piece;
  }
  for (const std::string& token : split(expanded, ',')) {
    std::vector<std::string> parts = split(token, ':');
    KILN_CHECK(!parts.empty() && !parts[0].empty(), "augment: empty entry in '", text, "'");
    const auto it = registry().find(parts[0]);
    KILN_CHECK(it != registry().end(), "augment: unknown transform '", parts[0], "' in '", token, "' (valid: ",
               join_names(), ")");
    const int given = static_cast<int>(parts.size()) - 1;
    KILN_CHECK(given >= 1 && given <= it->second.max_args, "augment: '", token, "' takes 1 to ",
               it->second.max_args, " arguments after '", parts[0], ":', got ", given);
    std::vector<Range> args;
    for (int i = 1; i <= given; ++i) args.push_back(parse_range(parts[i], token));
    it->second.set(spec, args, token);
  }
  return spec;
}

std::string augment_spec_to_string(const AugmentSpec& s) {
  std::ostringstream out;
  auto add = [&](const std::string& text) { out << (out.tellp() > 0 ? "," : "") << text; };
  auto range = [](float lo, float hi) { std::ostringstream r; r << lo << "-" << hi; return r.str(); };
  if (s.crop) add("crop:" + range(s.crop_scale_lo, s.crop_scale_hi) + ":" + range(s.crop_ratio_lo, s.crop_ratio_hi));
  if (s.zoom_lo != 1 || s.zoom_hi != 1) add("scale:" + range(s.zoom_lo, s.zoom_hi));
  const std::pair<const char*, float> singles[] = {
      {"hflip", s.hflip},         {"vflip", s.vflip},       {"rotate", s.rotate_degrees},
      {"translate", s.translate}, {"brightness", s.brightness}, {"contrast", s.contrast},
      {"saturation", s.saturation}, {"hue", s.hue},         {"gray", s.gray},
      {"blur", s.blur_sigma},     {"noise", s.noise_sigma}};
  for (const auto& [name, value] : singles)
    if (value != 0) {
      std::ostringstream item;
      item << name << ":" << value;
      add(item.str());
    }
  if (s.erase > 0) {
    std::ostringstream item;
    item << "erase:" << s.erase << ":" << range(s.erase_area_lo, s.erase_area_hi);
    add(item.str());
  }
  if (s.mix.mixup_alpha > 0) { std::ostringstream item; item << "mixup:" << s.mix.mixup_alpha; add(item.str()); }
  if (s.mix.cutmix_alpha > 0) { std::ostringstream item; item << "cutmix:" << s.mix.cutmix_alpha; add(item.str()); }
  return out.tellp() > 0 ? out.str() : "none";
}

Normalize make_normalize(const AugmentParams& params, int64_t channels) {
  KILN_CHECK(channels >= 1 && channels <= kMaxChannels, "augment: images must have 1 to ", kMaxChannels,
             " channels, got ", channels);
  KILN_CHECK(static_cast<int64_t>(params.mean.size()) == channels && static_cast<int64_t>(params.std.size()) == channels,
             "augment: ", channels, " channels but ", params.mean.size(), " means and ", params.std.size(), " stds");
  Normalize norm{};
  for (int64_t c = 0; c < channels; ++c) {
    KILN_CHECK(params.std[c] > 0, "augment: std[", c, "] must be positive, got ", params.std[c]);
    // Computed in double, then rounded once to float.
    norm.scale[c] = static_cast<float>(1.0 / (255.0 * params.std[c]));
    norm.shift[c] = static_cast<float>(params.mean[c] / params.std[c]);
  }
  return norm;
}

Tensor augment_batch(const Tensor& images_u8, const AugmentSpec& spec, const AugmentParams& params, uint64_t seed) {
  KILN_CHECK(images_u8.defined() && images_u8.dtype() == DType::u8 && images_u8.dim() == 4,
             "augment_batch: images must be u8 (N, C, H, W), got ",
             images_u8.defined() ? images_u8.describe() : std::string("an undefined tensor"));
  KILN_CHECK(params.dtype == DType::f32 || params.dtype == DType::f16 || params.dtype == DType::bf16,
             "augment_batch: output dtype must be f32, f16 or bf16, got ", dtype_name(params.dtype));
  KILN_CHECK(params.out_size >= 1 && params.out_size <= 16384, "augment_batch: out_size must be in [1, 16384], got ",
             params.out_size);
  const int64_t batch = images_u8.shape()[0], channels = images_u8.shape()[1];
  const Normalize norm = make_normalize(params, channels);
  const Tensor images = images_u8.contiguous();  // the samplers read (C, H, W) planes
  const int64_t S = params.out_size;
  Tensor out = empty({batch, channels, S, S}, {params.dtype, images.device(), params.layout});
  if (batch == 0) return out;
  on_device(
      images.device(),
      [&] {
        std::vector<ImageDraws> draws(static_cast<size_t>(batch));
        const int H = static_cast<int>(images.shape()[2]), W = static_cast<int>(images.shape()[3]);
        for (int64_t n = 0; n < batch; ++n) draws[n] = draw_image_params(spec, seed, n, H, W, static_cast<int>(S));
        cpu::augment_forward(images, draws, spec.noise_sigma, seed, norm, out);
      },
      [&] { KILN_CUDA_ONLY(cuda::augment_forward(images, spec, seed, norm, out)); });
  return out;
}

Tensor eval_transform(const Tensor& images_u8, const AugmentParams& params, float center_crop) {
  KILN_CHECK(center_crop > 0 && center_crop <= 1, "eval_transform: center_crop must be in (0, 1], got ", center_crop);
  AugmentSpec spec;  // every transform off: only the centred square, resized
  spec.center_crop = center_crop;
  return augment_batch(images_u8, spec, params, 0);
}

}  // namespace kiln::augment
