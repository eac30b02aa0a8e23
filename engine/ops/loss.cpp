// cross_entropy, binary_cross_entropy_with_logits and sigmoid_focal_loss: a fused per-sample loss with
// its backward right below, then the reduction with ordinary differentiable ops.
#include "engine/ops/loss.h"

#include "engine/autograd/autocast.h"
#include "engine/autograd/tape.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor/factory.h"

namespace kiln {

namespace {

// Weights and targets are data. The CPU reference reads them in the logits' dtype;
// the CUDA kernels read them in f32 whatever the logits are (an f16 model still
// gets exact class weights). These are K or N element copies at most.
Tensor prepare_data(const Tensor& t, const Tensor& logits) {
  if (!t.defined()) return t;
  return t.detach().to(logits.device().is_cuda() ? DType::f32 : logits.dtype());
}

Tensor reduce_losses(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::mean: return mean(losses);
    case Reduction::sum: return sum(losses);
    case Reduction::none: return losses;
  }
  return losses;
}

void check_labels_in_range(const Tensor& target, int64_t K, const Tensor& logits) {
  // Only on the CPU: reading CUDA labels would cost a host sync every step. The
  // CUDA kernel writes NaN for a label out of range instead (see kernels/loss.cu).
  if (!target.device().is_cpu()) return;
  const int64_t* labels = target.data<int64_t>();
  for (int64_t i = 0; i < target.numel(); ++i)
    KILN_CHECK(labels[i] >= 0 && labels[i] < K, "cross_entropy: target[", i, "] = ", labels[i],
               " is out of range for ", K, " classes (logits ", logits.shape(), ")");
}

// The binary losses (BCE, focal) take logits and same-shape float targets (multi-hot).
void check_binary_loss_inputs(const char* op, const Tensor& logits, const Tensor& target) {
  check_defined(op, "logits", logits);
  check_defined(op, "target", target);
  check_dtype_supported(op, logits);
  check_floating(op, "target", target);
  KILN_CHECK(target.shape() == logits.shape(), op, ": target must have the shape of logits ", logits.shape(),
             ", got ", target.shape());
}

}  // namespace

// ---------------------------------------------------------------- cross_entropy
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  // Under autocast the loss is f32 (engine/autograd/autocast.h): 16-bit logits are
  // converted first, differentiably, so their gradient comes back in their dtype.
  if (autocast_dtype() && is_half(logits.dtype())) return cross_entropy(logits.to(DType::f32), target, options);
  const char* op = "cross_entropy";
  check_defined(op, "logits", logits);
  check_defined(op, "target", target);
  check_dtype_supported(op, logits);
  check_dim(op, "logits", logits, 2, "(N, K)");
  const int64_t N = logits.size(0), K = logits.size(1);
  KILN_CHECK(target.dtype() == DType::i64, op, ": target must be i64 class indices, got ", target.describe());
  KILN_CHECK(target.shape() == Shape{N}, op, ": target must have shape (N) = (", N, ") for logits ",
             logits.shape(), ", got ", target.shape());
  check_same_device(op, {logits, target, options.class_weights});
  KILN_CHECK(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0, op,
             ": label_smoothing must be in [0, 1], got ", options.label_smoothing);
  if (options.class_weights.defined()) {
    check_floating(op, "class_weights", options.class_weights);
    KILN_CHECK(options.class_weights.shape() == Shape{K}, op, ": class_weights must have shape (K) = (", K,
               "), got ", options.class_weights.shape());
  }
  check_labels_in_range(target, K, logits);

  const Tensor class_weights = prepare_data(options.class_weights, logits);
  const bool weighted_mean = class_weights.defined() && options.reduction == Reduction::mean;
  const double label_smoothing = options.label_smoothing;
  Tensor losses = empty({N}, {logits.dtype(), logits.device()});
  // w_{y_i} per sample: the denominator of torch's weighted mean.
  Tensor target_weights = weighted_mean ? empty({N}, {logits.dtype(), logits.device()}) : Tensor();
  on_device(
      logits.device(),
      [&] {
        cpu_floating(logits.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::cross_entropy_forward<T>(logits.data<T>(), target.data<int64_t>(),
                                        class_weights.defined() ? class_weights.data<T>() : nullptr,
                                        losses.data<T>(), weighted_mean ? target_weights.data<T>() : nullptr, N,
                                        K, label_smoothing);
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::cross_entropy_forward(logits, target, class_weights, losses, target_weights,
                                                   label_smoothing));
      });
  if (needs_grad(logits)) {
    const Tensor logits_saved = logits.detach();  // the backward recomputes the softmax from the logits
    record(losses, op, {logits},
           [logits_saved, target, class_weights, label_smoothing](const Tensor& grad_losses,
                                                                  const std::vector<bool>&) {
             return std::vector<Tensor>{
                 cross_entropy_backward(logits_saved, target, class_weights, grad_losses, label_smoothing)};
           });
  }
  if (weighted_mean) return div(sum(losses), sum(target_weights));
  return reduce_losses(losses, options.reduction);
}

Tensor cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& class_weights,
                              const Tensor& grad_losses, double label_smoothing) {
  const int64_t N = logits.size(0), K = logits.size(1);
  KILN_CHECK(grad_losses.shape() == Shape{N}, "cross_entropy_backward: grad_losses must be (N) = (", N, "), got ",
             grad_losses.shape());
  const Tensor g = grad_losses.to(logits.dtype());
  Tensor grad_logits = empty_like(logits);
  on_device(
      logits.device(),
      [&] {
        cpu_floating(logits.dtype(), "cross_entropy", [&](auto tag) {
          using T = decltype(tag);
          cpu::cross_entropy_backward<T>(logits.data<T>(), target.data<int64_t>(),
                                         class_weights.defined() ? class_weights.data<T>() : nullptr, g.data<T>(),
                                         grad_logits.data<T>(), N, K, label_smoothing);
        });
      },
      [&] {
        KILN_CUDA_ONLY(cuda::cross_entropy_backward(logits, target, class_weights, g, grad_logits, label_smoothing));
      });
  return grad_logits;
}

// ---------------------------------------------------------------- binary_cross_entropy_with_logits
Tensor binary_cross_entropy_with_logits(const Tensor& logits_in, const Tensor& target_in, const BceOptions& options) {
  const char* op = "binary_cross_entropy_with_logits";
  check_binary_loss_inputs(op, logits_in, target_in);
  KILN_CHECK(logits_in.dim() >= 1, op, ": logits must have at least one dimension, got shape ", logits_in.shape());
  check_same_device(op, {logits_in, target_in, options.pos_weight});
  const int64_t K = logits_in.size(-1);
  if (options.pos_weight.defined()) {
    check_floating(op, "pos_weight", options.pos_weight);
    KILN_CHECK(options.pos_weight.shape() == Shape{K}, op, ": pos_weight must have shape (K) = (", K,
               "), the last dim of logits ", logits_in.shape(), ", got ", options.pos_weight.shape());
  }
  // Row-major, so that element i belongs to class i % K (a recorded no-op when
  // the logits already are; an nhwc tensor is converted).
  const Tensor logits = logits_in.contiguous();
  const Tensor target = prepare_data(target_in.contiguous(), logits);
  const Tensor pos_weight = prepare_data(options.pos_weight, logits);
  const int64_t n = logits.numel();
  Tensor losses = empty_like(logits);
  on_device(
      logits.device(),
      [&] {
        cpu_floating(logits.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::bce_with_logits_forward<T>(logits.data<T>(), target.data<T>(),
                                          pos_weight.defined() ? pos_weight.data<T>() : nullptr, losses.data<T>(),
                                          n, K);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::bce_with_logits_forward(logits, target, pos_weight, losses)); });
  if (needs_grad(logits)) {
    const Tensor logits_saved = logits.detach();
    record(losses, op, {logits}, [logits_saved, target, pos_weight](const Tensor& grad_losses,
                                                                    const std::vector<bool>&) {
      return std::vector<Tensor>{
          binary_cross_entropy_with_logits_backward(logits_saved, target, pos_weight, grad_losses)};
    });
  }
  return reduce_losses(losses, options.reduction);
}

Tensor binary_cross_entropy_with_logits_backward(const Tensor& logits, const Tensor& target,
                                                 const Tensor& pos_weight, const Tensor& grad_losses) {
  KILN_CHECK(grad_losses.shape() == logits.shape(), "binary_cross_entropy_with_logits_backward: grad_losses must be ",
             logits.shape(), ", got ", grad_losses.shape());
  const Tensor g = grad_losses.contiguous().to(logits.dtype());
  const int64_t n = logits.numel(), K = logits.size(-1);
  Tensor grad_logits = empty_like(logits);
  on_device(
      logits.device(),
      [&] {
        cpu_floating(logits.dtype(), "binary_cross_entropy_with_logits", [&](auto tag) {
          using T = decltype(tag);
          cpu::bce_with_logits_backward<T>(logits.data<T>(), target.data<T>(),
                                           pos_weight.defined() ? pos_weight.data<T>() : nullptr, g.data<T>(),
                                           grad_logits.data<T>(), n, K);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::bce_with_logits_backward(logits, target, pos_weight, g, grad_logits)); });
  return grad_logits;
}

// ---------------------------------------------------------------- sigmoid_focal_loss
Tensor sigmoid_focal_loss(const Tensor& logits_in, const Tensor& target_in, const FocalOptions& options) {
  const char* op = "sigmoid_focal_loss";
  check_binary_loss_inputs(op, logits_in, target_in);
  check_same_device(op, {logits_in, target_in});
  KILN_CHECK(options.gamma >= 0, op, ": gamma must be >= 0, got ", options.gamma);
  KILN_CHECK(options.alpha <= 1, op, ": alpha must be in [0, 1] (or negative for none), got ", options.alpha);
  const Tensor logits = logits_in.contiguous();
  const Tensor target = prepare_data(target_in.contiguous(), logits);
  const double gamma = options.gamma, alpha = options.alpha;
  const int64_t n = logits.numel();
  Tensor losses = empty_like(logits);
  on_device(
      logits.device(),
      [&] {
        cpu_floating(logits.dtype(), op, [&](auto tag) {
          using T = decltype(tag);
          cpu::focal_loss_forward<T>(logits.data<T>(), target.data<T>(), losses.data<T>(), n, gamma, alpha);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::focal_loss_forward(logits, target, losses, gamma, alpha)); });
  if (needs_grad(logits)) {
    const Tensor logits_saved = logits.detach();
    record(losses, op, {logits}, [logits_saved, target, gamma, alpha](const Tensor& grad_losses,
                                                                      const std::vector<bool>&) {
      return std::vector<Tensor>{sigmoid_focal_loss_backward(logits_saved, target, grad_losses, gamma, alpha)};
    });
  }
  return reduce_losses(losses, options.reduction);
}

Tensor sigmoid_focal_loss_backward(const Tensor& logits, const Tensor& target, const Tensor& grad_losses,
                                   double gamma, double alpha) {
  KILN_CHECK(grad_losses.shape() == logits.shape(), "sigmoid_focal_loss_backward: grad_losses must be ",
             logits.shape(), ", got ", grad_losses.shape());
  const Tensor g = grad_losses.contiguous().to(logits.dtype());
  const int64_t n = logits.numel();
  Tensor grad_logits = empty_like(logits);
  on_device(
      logits.device(),
      [&] {
        cpu_floating(logits.dtype(), "sigmoid_focal_loss", [&](auto tag) {
          using T = decltype(tag);
          cpu::focal_loss_backward<T>(logits.data<T>(), target.data<T>(), g.data<T>(), grad_logits.data<T>(), n,
                                      gamma, alpha);
        });
      },
      [&] { KILN_CUDA_ONLY(cuda::focal_loss_backward(logits, target, g, grad_logits, gamma, alpha)); });
  return grad_logits;
}

}  // namespace kiln
