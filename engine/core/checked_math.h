// Size arithmetic on numbers that came from a file, and the limits that make a
// malicious file harmless.
//
// A reader computes "how many bytes does this tensor need" from numbers an attacker
// chose: shape [2^62 + 4] of f32 needs 4 * (2^62 + 4) bytes, which wraps around int64
// to 16, so a 16-byte payload would pass a size check done in plain arithmetic. Every
// size that comes from a file goes through these helpers instead. Each returns false
// (and leaves `out` alone) when an operand is negative or the result does not fit in
// int64; the caller turns that into a kiln::Error naming the file and the field.
// They compile to the CPU's overflow flag (__builtin_*_overflow), so they cost nothing.
//
// The limits are far above anything a real model or dataset needs and far below what
// would exhaust a machine; each names the reference it follows.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln {

// Images: Pillow refuses more than 2 * 89,478,485 pixels as a decompression bomb
// (PIL.Image.MAX_IMAGE_PIXELS * 2); kiln does the same before it decodes a byte.
constexpr int64_t kMaxImagePixels = 178956970;
constexpr int64_t kMaxImageSide = 1 << 16;  // PNG allows 2^31 - 1; JPEG's own limit is 65,535
constexpr int64_t kMaxPixelsPerFileByte = 8256;  // 1-bit PNG at deflate's best ratio (data/image_io.cpp)
constexpr int64_t kMaxImageAspect = 100;    // longer side / shorter side (data/image_io.cpp says why)
// safetensors' reference reader refuses headers above 100 MB (MAX_HEADER_SIZE).
constexpr int64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// JSON nesting (safetensors headers, kpack metadata, run configs): no kiln file nests
// deeper than 4; a hostile 10^6-deep '[[[[...' would otherwise recurse in dump() and
// in the destructor until the stack runs out.
constexpr int kMaxJsonDepth = 64;
// Classes of a classifier built from a file's config: ImageNet-21k has 21,841.
constexpr int64_t kMaxClasses = 100'000;
// Tensor ranks in files: kiln's tensors have at most 4 dimensions, ONNX ones rarely 6.
constexpr int64_t kMaxTensorRank = 8;

[[nodiscard]] inline bool checked_add(int64_t a, int64_t b, int64_t& out) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return false;
  out = r;
  return true;
}

[[nodiscard]] inline bool checked_mul(int64_t a, int64_t b, int64_t& out) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return false;
  out = r;
  return true;
}

// The product of dims (1 for no dims); false on a negative dim or overflow.
[[nodiscard]] inline bool checked_numel(const std::vector<int64_t>& dims, int64_t& out) {
  int64_t n = 1;
  for (int64_t d : dims)
    if (!checked_mul(n, d, n)) return false;
  out = n;
  return true;
}

// numel(dims) * element_bytes; false on a negative dim or overflow.
[[nodiscard]] inline bool checked_bytes(const std::vector<int64_t>& dims, int64_t element_bytes, int64_t& out) {
  int64_t n;
  return checked_numel(dims, n) && checked_mul(n, element_bytes, out);
}

}  // namespace kiln
