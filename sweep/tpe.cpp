#include "sweep/tpe.h"

#include <algorithm>
#include <cmath>

#include "engine/core/check.h"

namespace kiln::sweep {
namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Smoothed category frequencies: p(c) = (count(c) + 1) / (n + K). The +1 is the
// prior (every choice stays possible); it matters most when n is small.
std::vector<double> category_probabilities(const Parameter& p, const std::vector<Observation>& trials) {
  std::vector<double> probability(p.values.size(), 1.0);
  for (const Observation& o : trials)
    for (size_t c = 0; c < p.values.size(); ++c)
      if (o.params.at(p.name) == p.values[c]) probability[c] += 1;
  const double total = static_cast<double>(trials.size() + p.values.size());
  for (double& q : probability) q /= total;
  return probability;
}

}  // namespace

void coordinate_range(const Parameter& p, double& low, double& high) {
  if (p.kind == ParameterKind::integer) {
    low = p.min - 0.5;  // each integer owns a unit interval
    high = p.max + 0.5;
  } else if (p.distribution == "log_uniform") {
    low = p.min;
    high = p.max;
  } else if (p.log_scale()) {
    low = std::log(p.min);
    high = std::log(p.max);
  } else {
    low = p.min;
    high = p.max;
  }
}

double to_coordinate(const Parameter& p, double value) {
  return p.log_scale() ? std::log(std::max(value, 1e-300)) : value;
}
double from_coordinate(const Parameter& p, double u) { return p.log_scale() ? std::exp(u) : u; }

ParzenEstimator fit_parzen(const std::vector<double>& points, double low, double high) {
  ParzenEstimator e;
  e.low = low;
  e.high = high;
  e.centers = points;
  std::sort(e.centers.begin(), e.centers.end());
  // Each kernel's width is the larger gap to its neighbours (the range ends count as
  // neighbours), clipped to [range / min(100, n + 1), range]: crowded good values give
  // sharp kernels, lonely ones wide kernels (hyperopt's rule).
  const double range = high - low;
  const size_t n = e.centers.size();
  const double narrowest = range / std::min(100.0, static_cast<double>(n) + 1.0);
  for (size_t i = 0; i < n; ++i) {
    const double left = e.centers[i] - (i == 0 ? low : e.centers[i - 1]);
    const double right = (i + 1 == n ? high : e.centers[i + 1]) - e.centers[i];
    e.widths.push_back(std::min(range, std::max(narrowest, std::max(left, right))));
  }
  return e;
}

double ParzenEstimator::log_density(double u) const {
  // Mixture with equal weights: the uniform prior over [low, high] and the Gaussians,
  // each divided by its mass inside [low, high] (truncation).
  const double weight = 1.0 / static_cast<double>(centers.size() + 1);
  double density = weight / (high - low);
  for (size_t i = 0; i < centers.size(); ++i) {
    const double s = widths[i];
    const double mass = normal_cdf((high - centers[i]) / s) - normal_cdf((low - centers[i]) / s);
    const double z = (u - centers[i]) / s;
    density += weight * std::exp(-0.5 * z * z) / (s * std::sqrt(2.0 * M_PI) * std::max(mass, 1e-12));
  }
  return std::log(density);
}

double ParzenEstimator::draw(Stream& stream) const {
  const int64_t component = stream.below(static_cast<int64_t>(centers.size()) + 1);
  if (component == static_cast<int64_t>(centers.size())) return stream.uniform(low, high);  // the prior
  const double c = centers[static_cast<size_t>(component)], s = widths[static_cast<size_t>(component)];
  for (int attempt = 0; attempt < 64; ++attempt) {  // truncation by rejection
    const double u = c + s * stream.normal();
    if (u >= low && u <= high) return u;
  }
  return std::min(high, std::max(low, c));
}

nlohmann::json tpe_suggest(const std::vector<Parameter>& parameters, const std::vector<Observation>& observations,
                           Stream& stream, const TpeOptions& options) {
  KILN_CHECK(options.gamma > 0 && options.gamma < 1, "tpe: gamma must be in (0, 1), got ", options.gamma);
  if (static_cast<int>(observations.size()) < std::max(2, options.n_startup))
    return sample_parameters(parameters, stream);
  std::vector<Observation> sorted = observations;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Observation& a, const Observation& b) { return a.loss < b.loss; });
  const size_t n_good =
      std::min(sorted.size() - 1, static_cast<size_t>(std::ceil(options.gamma * static_cast<double>(sorted.size()))));
  const std::vector<Observation> good(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(n_good));
  const std::vector<Observation> bad(sorted.begin() + static_cast<std::ptrdiff_t>(n_good), sorted.end());

  // Candidates: each parameter drawn from its l(x); score = sum of log l(x) - log g(x).
  std::vector<nlohmann::json> candidates(static_cast<size_t>(options.n_candidates), nlohmann::json::object());
  std::vector<double> score(candidates.size(), 0.0);
  for (const Parameter& p : parameters) {
    if (p.kind == ParameterKind::constant) {
      for (nlohmann::json& c : candidates) c[p.name] = p.values[0];
      continue;
    }
    if (p.kind == ParameterKind::categorical) {
      const std::vector<double> l = category_probabilities(p, good), g = category_probabilities(p, bad);
      for (size_t k = 0; k < candidates.size(); ++k) {
        double u = stream.uniform();
        size_t c = 0;
        while (c + 1 < l.size() && u >= l[c]) u -= l[c++];
        candidates[k][p.name] = p.values[c];
        score[k] += std::log(l[c]) - std::log(g[c]);
      }
      continue;
    }
    double low = 0, high = 0;
    coordinate_range(p, low, high);
    // (Clamped to the range: quantizing can round a value just outside it, e.g. to 0.)
    auto coordinate = [&](const Observation& o) {
      return std::min(high, std::max(low, to_coordinate(p, o.params.at(p.name).get<double>())));
    };
    std::vector<double> good_points, bad_points;
    for (const Observation& o : good) good_points.push_back(coordinate(o));
    for (const Observation& o : bad) bad_points.push_back(coordinate(o));
    const ParzenEstimator l = fit_parzen(good_points, low, high), g = fit_parzen(bad_points, low, high);
    for (size_t k = 0; k < candidates.size(); ++k) {
      const double u = l.draw(stream);
      candidates[k][p.name] = finish_value(p, from_coordinate(p, u));
      score[k] += l.log_density(u) - g.log_density(u);
    }
  }
  const size_t best = static_cast<size_t>(std::max_element(score.begin(), score.end()) - score.begin());
  return candidates[best];
}

}  // namespace kiln::sweep
