#include "engine/core/shape.h"

#include "engine/core/check.h"

namespace kiln {

const char* layout_name(Layout layout) { return layout == Layout::nchw ? "nchw" : "nhwc"; }

Layout parse_layout(const std::string& name) {
  if (name == "nchw" || name == "contiguous") return Layout::nchw;
  if (name == "nhwc" || name == "channels_last") return Layout::nhwc;
  KILN_FAIL("unknown layout '", name, "': expected nchw (contiguous) or nhwc (channels_last)");
}

int64_t Shape::numel() const {
  // Checked: shapes also come from files (engine/core/checked_math.h), and a product
  // that wraps around would size a buffer smaller than the loops that fill it.
  int64_t n = 1;
  for (int64_t d : dims_)
    KILN_CHECK(!__builtin_mul_overflow(n, d, &n), "shape ", to_string(), ": its element count overflows int64");
  return n;
}

std::string Shape::to_string() const {
  std::string out = "(";
  for (size_t i = 0; i < dims_.size(); ++i) out += (i ? ", " : "") + std::to_string(dims_[i]);
  return out + (dims_.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> Shape::strides(Layout layout) const {
  std::vector<int64_t> s(dims_.size());
  if (layout == Layout::nhwc && dims_.size() == 4) {
    // memory order N, H, W, C
    const int64_t C = dims_[1], H = dims_[2], W = dims_[3];
    s[1] = 1;
    s[3] = C;
    s[2] = C * W;
    s[0] = C * W * H;
    return s;
  }
  int64_t step = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    s[i] = step;
    step *= dims_[i];
  }
  return s;
}

std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << shape.to_string(); }

int wrap_dim(int dim, int rank, const char* op) {
  const int wrapped = dim < 0 ? dim + rank : dim;
  KILN_CHECK(wrapped >= 0 && wrapped < rank, op, ": dim ", dim, " is out of range for a ", rank,
             "-D tensor");
  return wrapped;
}

}  // namespace kiln
