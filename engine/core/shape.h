// Shapes and memory layouts.
//
// Dimension letters, fixed once for the whole code base (docs/design.md):
//   N batch, C input channels, K output channels, H x W spatial size,
//   R x S kernel size, Ho x Wo output size.
//
// A 4-D image tensor always has the *logical* shape (N, C, H, W), as in PyTorch.
// Its layout says how that is ordered in memory: nchw (row-major, "contiguous") or
// nhwc ("channels-last", what tensor cores want). Every kiln tensor is dense in one
// of those two orders, so strides are derived from (shape, layout), never stored.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

namespace kiln {

enum class Layout { nchw, nhwc };  // nchw also means "row-major" for tensors that are not 4-D
const char* layout_name(Layout layout);
Layout parse_layout(const std::string& name);  // "nchw"/"contiguous", "nhwc"/"channels_last"

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int dim() const { return static_cast<int>(dims_.size()); }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t& operator[](int i) { return dims_[i]; }
  int64_t numel() const;
  const std::vector<int64_t>& dims() const { return dims_; }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }
  std::string to_string() const;  // "(32, 64, 56, 56)"

  // Element strides of a dense tensor of this shape in `layout`.
  std::vector<int64_t> strides(Layout layout) const;

 private:
  std::vector<int64_t> dims_;
};

std::ostream& operator<<(std::ostream& out, const Shape& shape);

// Wrap a possibly negative dimension index (-1 = last) and check it, naming the op.
int wrap_dim(int dim, int rank, const char* op);

}  // namespace kiln
