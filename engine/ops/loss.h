// Classification losses, with torch.nn.functional semantics (docs/ops/softmax_loss.md).
//
// Each loss is split in two, so that the fused kernel stays element- or row-wise:
//   1. a fused per-sample loss with its own backward (the kernels below), and
//   2. the reduction, done with the ordinary differentiable sum / mean / div.
//
// cross_entropy, per sample i with log p_ik = log_softmax(logits_i)_k, eps the
// label smoothing and w the class weights (all 1 when undefined):
//   loss_i = (1 - eps) * w_{y_i} * (-log p_{i,y_i}) + (eps / K) * sum_k w_k * (-log p_ik)
//   mean:  sum_i loss_i / sum_i w_{y_i}   (torch divides both terms by the target weights)
//   sum:   sum_i loss_i                   none: loss_i, shape (N)
//   d loss_i / d logits_ij = (1 - eps) w_{y_i} (p_ij - [j = y_i]) + (eps / K) (p_ij sum_k w_k - w_j)
// binary_cross_entropy_with_logits, per element with sigma the logistic function
// and pw the pos_weight of the element's class (1 when undefined):
//   loss = -[pw * y * log sigma(x) + (1 - y) * log(1 - sigma(x))]
//        = (1 - y) * x + (1 + (pw - 1) * y) * softplus(-x)      (the stable form torch uses)
//   d loss / dx = (1 - y) - (1 + (pw - 1) * y) * sigma(-x)
// sigmoid_focal_loss (Lin et al. 2017, torchvision.ops.sigmoid_focal_loss), per element
// with p = sigma(x), ce the BCE above without pos_weight, and
// m = 1 - p_t = y (1 - p) + (1 - y) p (how wrong the prediction is):
//   loss = a_t * ce * m^gamma,  a_t = alpha y + (1 - alpha)(1 - y)   (a_t = 1 when alpha < 0)
//   d loss / dx = a_t [ (p - y) m^gamma + ce * gamma m^(gamma - 1) (1 - 2y) p (1 - p) ]
// gamma = 0 and alpha < 0 is BCE; gamma > 0 shrinks the loss of well-classified elements.
//
// Targets, class weights and pos_weight are data: no gradient flows into them.
#pragma once
#include "engine/tensor/tensor.h"

namespace kiln {

enum class Reduction { mean, sum, none };

struct CrossEntropyOptions {
  double label_smoothing = 0.0;  // eps in [0, 1]
  Tensor class_weights;          // (K) floating, or undefined for all-ones
  Reduction reduction = Reduction::mean;
};
// logits: (N, K) floating; target: (N) i64 class indices in [0, K).
// Returns shape () for mean and sum, (N) for none.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});

struct BceOptions {
  Tensor pos_weight;  // (K), K = the last dim of logits, or undefined for all-ones
  Reduction reduction = Reduction::mean;
};
// logits: any shape; target: same shape, floating, values in [0, 1].
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const BceOptions& options = {});

struct FocalOptions {
  double gamma = 2.0;   // >= 0
  double alpha = 0.25;  // in [0, 1], or negative for no class balancing (torchvision's alpha = -1)
  Reduction reduction = Reduction::mean;
};
// logits: any shape; target: same shape, floating, values in [0, 1].
Tensor sigmoid_focal_loss(const Tensor& logits, const Tensor& target, const FocalOptions& options = {});

// Backward of the per-sample losses: grad_logits given grad_losses (N) (or the same
// shape as logits for BCE). They return new tensors; the tape accumulates them.
// `class_weights` / `pos_weight` are as prepared by the forward (see loss.cpp).
Tensor cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& class_weights,
                              const Tensor& grad_losses, double label_smoothing);
Tensor binary_cross_entropy_with_logits_backward(const Tensor& logits, const Tensor& target,
                                                 const Tensor& pos_weight, const Tensor& grad_losses);
Tensor sigmoid_focal_loss_backward(const Tensor& logits, const Tensor& target, const Tensor& grad_losses,
                                   double gamma, double alpha);

// Backend functions. Shapes: logits, grad_logits (N, K) row-major; target (N);
// class_weights (K) or null; losses, target_weights, grad_losses (N). For BCE,
// logits, target, losses, grad_losses, grad_logits hold n row-major elements
// and pos_weight (K) or null applies to element i as pos_weight[i % K].
// CPU: every floating array has type T. CUDA: logits/losses/grads in the tensor's
// dtype; target of BCE, class_weights and pos_weight are f32 (data, not activations).
namespace cpu {
template <class T>
void cross_entropy_forward(const T* logits, const int64_t* target, const T* class_weights, T* losses,
                           T* target_weights, int64_t N, int64_t K, double label_smoothing);
template <class T>
void cross_entropy_backward(const T* logits, const int64_t* target, const T* class_weights, const T* grad_losses,
                            T* grad_logits, int64_t N, int64_t K, double label_smoothing);
template <class T>
void bce_with_logits_forward(const T* logits, const T* target, const T* pos_weight, T* losses, int64_t n,
                             int64_t K);
template <class T>
void bce_with_logits_backward(const T* logits, const T* target, const T* pos_weight, const T* grad_losses,
                              T* grad_logits, int64_t n, int64_t K);
template <class T>
void focal_loss_forward(const T* logits, const T* target, T* losses, int64_t n, double gamma, double alpha);
template <class T>
void focal_loss_backward(const T* logits, const T* target, const T* grad_losses, T* grad_logits, int64_t n,
                         double gamma, double alpha);
}  // namespace cpu
namespace cuda {
// target_weights may be undefined (not needed without class weights).
void cross_entropy_forward(const Tensor& logits, const Tensor& target, const Tensor& class_weights,
                           const Tensor& losses, const Tensor& target_weights, double label_smoothing);
void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& class_weights,
                            const Tensor& grad_losses, const Tensor& grad_logits, double label_smoothing);
void bce_with_logits_forward(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                             const Tensor& losses);
void bce_with_logits_backward(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                              const Tensor& grad_losses, const Tensor& grad_logits);
void focal_loss_forward(const Tensor& logits, const Tensor& target, const Tensor& losses, double gamma,
                        double alpha);
void focal_loss_backward(const Tensor& logits, const Tensor& target, const Tensor& grad_losses,
                         const Tensor& grad_logits, double gamma, double alpha);
}  // namespace cuda

}  // namespace kiln
