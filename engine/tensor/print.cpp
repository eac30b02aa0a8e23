// Printing for debugging: the description, then a few values and summary statistics.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>

#include "engine/tensor/tensor.h"

namespace kiln {

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  if (!t.defined()) return out << "Tensor(undefined)";
  out << "Tensor(" << t.describe();
  if (t.requires_grad()) out << ", requires_grad";
  if (!t.device().is_cpu()) return out << ")";  // reading device values needs an explicit .to(cpu)
  const std::vector<double> v = t.to_vector();
  out << ", values [";
  const size_t shown = std::min<size_t>(v.size(), 6);
  for (size_t i = 0; i < shown; ++i) out << (i ? ", " : "") << std::setprecision(5) << v[i];
  if (v.size() > shown) out << ", ... " << v.back();
  out << "]";
  if (!v.empty()) {
    double sum = 0, lo = v[0], hi = v[0];
    for (double x : v) { sum += x; lo = std::min(lo, x); hi = std::max(hi, x); }
    out << ", min " << lo << " max " << hi << " mean " << sum / static_cast<double>(v.size());
  }
  return out << ")";
}

}  // namespace kiln
