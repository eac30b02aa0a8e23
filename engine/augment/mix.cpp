// mixup (Zhang et al., 2018) and cutmix (Yun et al., 2019) at batch level.
//
// Both are one formula with a per-image mask M (N, 1, H, W):
//   mixed_n = M_n * x_n + (1 - M_n) * x_partner(n)
//   target_n = lambda_n * onehot(y_n) + (1 - lambda_n) * onehot(y_partner(n))
// mixup:  M_n = lambda_n everywhere, lambda_n ~ Beta(alpha, alpha).
// cutmix: M_n = 0 inside a box and 1 outside; the box has area (1 - lambda) H W
//         for lambda ~ Beta(alpha, alpha), is clipped to the image, and lambda is
//         then recomputed from the clipped box (timm's "correct_lam"), so the
//         target weights are the true pixel fractions.
// The partners are a random permutation of the batch. Draws are made on the host
// from Rng(seed) (a handful per image); the mixing itself runs on the images'
// device with the elementwise ops, so a GPU batch never comes back to the host.
// The masks and targets made on the host reach a GPU through pinned memory and an
// asynchronous copy (AsyncUpload), so mixing adds no host sync to a training step.
#include <algorithm>
#include <cmath>

#include "engine/augment/augment.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/async_upload.h"
#include "engine/tensor/factory.h"

namespace kiln::augment {
namespace {

// Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 uses the boost
// Gamma(a) = Gamma(a + 1) * U^(1/a).
double sample_gamma(Rng& rng, double shape) {
  if (shape < 1.0) {
    const double boost = std::pow(std::max(static_cast<double>(rng.uniform()), 1e-12), 1.0 / shape);
    return sample_gamma(rng, shape + 1.0) * boost;
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = std::max(static_cast<double>(rng.uniform()), 1e-12);
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

double sample_beta(Rng& rng, double alpha) {
  const double a = sample_gamma(rng, alpha), b = sample_gamma(rng, alpha);
  return a + b > 0 ? a / (a + b) : 0.5;
}

// Tables computed on the host (masks, targets) as tensors of `dtype` on `device`.
// On a GPU they are staged as f32 in pinned memory and copied asynchronously;
// `result.staged` keeps that upload (and so its host buffers) until the copy is done.
std::vector<Tensor> upload_tables(const std::vector<const std::vector<double>*>& tables,
                                  const std::vector<Shape>& shapes, const std::vector<DType>& dtypes,
                                  const Device& device, MixResult& result) {
  std::vector<Tensor> out;
  if (device.is_cpu()) {
    for (size_t i = 0; i < tables.size(); ++i) out.push_back(from_vector(*tables[i], shapes[i], {dtypes[i]}));
    return out;
  }
  std::vector<Tensor> pinned;
  for (size_t i = 0; i < tables.size(); ++i) {
    Tensor host = empty_pinned(shapes[i], DType::f32);
    std::copy(tables[i]->begin(), tables[i]->end(), host.data<float>());
    pinned.push_back(host);
  }
  result.staged = std::make_shared<AsyncUpload>(pinned, device);
  for (size_t i = 0; i < tables.size(); ++i) out.push_back(result.staged->device_tensor(i).to(dtypes[i]));
  return out;
}

}  // namespace

MixResult mix_batch(const Tensor& images, const Tensor& labels, int64_t num_classes, const MixSpec& spec,
                    uint64_t seed) {
  KILN_CHECK(images.defined() && images.dim() == 4 && is_floating(images.dtype()),
             "mix_batch: images must be a float (N, C, H, W) batch, got ",
             images.defined() ? images.describe() : std::string("an undefined tensor"));
  const int64_t batch = images.shape()[0], H = images.shape()[2], W = images.shape()[3];
  KILN_CHECK(labels.defined() && labels.dtype() == DType::i64 && labels.shape() == Shape({batch}) &&
                 labels.device().is_cpu(),
             "mix_batch: labels must be i64 (", batch, ") on the cpu, got ",
             labels.defined() ? labels.describe() : std::string("an undefined tensor"));
  KILN_CHECK(num_classes >= 1, "mix_batch: num_classes must be positive, got ", num_classes);
  KILN_CHECK(spec.mixup_alpha >= 0 && spec.cutmix_alpha >= 0, "mix_batch: alphas must be >= 0");
  const int64_t* y = labels.data<int64_t>();
  for (int64_t n = 0; n < batch; ++n)
    KILN_CHECK(y[n] >= 0 && y[n] < num_classes, "mix_batch: label ", y[n], " of image ", n, " is outside [0, ",
               num_classes, ")");

  MixResult result;
  result.lambda.assign(static_cast<size_t>(batch), 1.f);
  result.partner.resize(static_cast<size_t>(batch));
  for (int64_t n = 0; n < batch; ++n) result.partner[n] = n;
  result.images = images;
  const bool mixing = spec.enabled() && batch > 1;
  std::vector<double> keep, take;  // the masks M and 1 - M, (N, 1, H, W)
  Tensor partners;
  if (mixing) {
    Rng rng(seed);
    for (int64_t n = batch - 1; n > 0; --n)  // Fisher-Yates shuffle
      std::swap(result.partner[n], result.partner[static_cast<int64_t>(rng.next_u64() % (n + 1))]);
    keep.resize(static_cast<size_t>(batch * H * W));
    take.resize(keep.size());
    for (int64_t n = 0; n < batch; ++n) {
      const bool use_cutmix = spec.cutmix_alpha > 0 && (spec.mixup_alpha <= 0 || rng.uniform() < 0.5f);
      double lambda = sample_beta(rng, use_cutmix ? spec.cutmix_alpha : spec.mixup_alpha);
      double* mask = keep.data() + n * H * W;
      std::fill(mask, mask + H * W, lambda);
      if (use_cutmix) {
        const double cut = std::sqrt(1.0 - lambda);  // box side as a fraction of the image side
        const double centre_y = rng.uniform() * H, centre_x = rng.uniform() * W;
        const int64_t y0 = std::clamp<int64_t>(std::lround(centre_y - cut * H / 2), 0, H);
        const int64_t y1 = std::clamp<int64_t>(std::lround(centre_y + cut * H / 2), 0, H);
        const int64_t x0 = std::clamp<int64_t>(std::lround(centre_x - cut * W / 2), 0, W);
        const int64_t x1 = std::clamp<int64_t>(std::lround(centre_x + cut * W / 2), 0, W);
        std::fill(mask, mask + H * W, 1.0);
        for (int64_t row = y0; row < y1; ++row) std::fill(mask + row * W + x0, mask + row * W + x1, 0.0);
        lambda = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(H * W);
      }
      result.lambda[n] = static_cast<float>(lambda);
      for (int64_t i = 0; i < H * W; ++i) take[n * H * W + i] = 1.0 - mask[i];
    }
    // The partners' images, gathered on the device as a concat of batch rows.
    std::vector<Tensor> rows;
    for (int64_t n = 0; n < batch; ++n) rows.push_back(images.narrow0(result.partner[n], 1));
    partners = concat(rows, 0);
  }

  std::vector<double> targets(static_cast<size_t>(batch * num_classes), 0.0);
  for (int64_t n = 0; n < batch; ++n) {
    targets[n * num_classes + y[n]] += result.lambda[n];
    targets[n * num_classes + y[result.partner[n]]] += 1.0 - result.lambda[n];
  }
  if (mixing) {
    const std::vector<Tensor> tables = upload_tables(
        {&keep, &take, &targets}, {{batch, 1, H, W}, {batch, 1, H, W}, {batch, num_classes}},
        {images.dtype(), images.dtype(), DType::f32}, images.device(), result);
    result.images = add(mul(images, tables[0]), mul(partners, tables[1]));
    result.targets = tables[2];
  } else {
    result.targets = upload_tables({&targets}, {{batch, num_classes}}, {DType::f32}, images.device(), result)[0];
  }
  return result;
}

}  // namespace kiln::augment
