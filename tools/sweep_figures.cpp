// The best model's figures for the sweep report (tools/sweep_figures.h).
#include "tools/sweep_figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "engine/augment/augment.h"
#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "engine/train/trainer.h"
#include "report/predictions.h"
#include "report/run_folder.h"
#include "report/visualize.h"
#include "tools/data_options.h"
#include "tools/run_model.h"
#include "tools/train_report.h"

namespace kiln::tools {
namespace {

constexpr size_t kGridImages = 30;  // 10 x 3

// Row-wise softmax of f32 logits (N, K), in double.
std::vector<double> softmax_rows(const Tensor& logits) {
  const int64_t n = logits.shape()[0], k = logits.shape()[1];
  const float* z = logits.data<float>();
  std::vector<double> p(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i) {
    const double top = *std::max_element(z + i * k, z + (i + 1) * k);
    double total = 0;
    for (int64_t j = 0; j < k; ++j) total += p[i * k + j] = std::exp(static_cast<double>(z[i * k + j]) - top);
    for (int64_t j = 0; j < k; ++j) p[i * k + j] /= total;
  }
  return p;
}

// 30 predictions spread evenly over the ranking by confidence (the predicted class's
// probability), most confident first: the grid shows sure hits, the doubtful middle
// and the least confident, with whatever mistakes fall at those ranks.
std::vector<report::Prediction> spread_by_confidence(const std::vector<double>& p, const std::vector<int64_t>& labels,
                                                     int64_t classes) {
  std::vector<report::Prediction> all;
  for (size_t i = 0; i < labels.size(); ++i) {
    report::Prediction pred;
    pred.index = static_cast<int64_t>(i);
    pred.label = labels[i];
    const double* row = p.data() + i * static_cast<size_t>(classes);
    pred.predicted = std::max_element(row, row + classes) - row;
    pred.probability = row[pred.predicted];
    all.push_back(pred);
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.probability > b.probability; });
  if (all.size() <= kGridImages) return all;
  std::vector<report::Prediction> picks;
  for (size_t j = 0; j < kGridImages; ++j) picks.push_back(all[j * (all.size() - 1) / (kGridImages - 1)]);
  return picks;
}

// For channels 0..neurons-1 of `layer`: the image (of the first `search` of `images`)
// with the largest activation anywhere in that channel, and the guided-backprop
// gradient of that activation.
std::vector<report::GuidedNeuron> guided_rows(LoadedRun& run, const data::Dataset& images, const Device& device,
                                                const std::string& layer, int neurons, int64_t search,
                                                int64_t batch_size) {
  const int64_t n = std::min(search, images.size());
  const report::StrongestImages strongest =
      report::strongest_image_per_channel(n, batch_size, [&](int64_t start, int64_t count) {
        const Tensor x = augment::eval_transform(images.images.narrow0(start, count).to(device), run.model.image);
        return report::layer_activations(*run.model.module, layer, x);
      });
  std::vector<int64_t> channels(static_cast<size_t>(std::min<int64_t>(neurons, static_cast<int64_t>(strongest.image.size()))));
  std::iota(channels.begin(), channels.end(), 0);
  std::vector<int64_t> picked;
  for (int64_t k : channels) picked.push_back(strongest.image[k]);
  const data::Dataset chosen = data::subset(images, picked);
  const Tensor x = augment::eval_transform(chosen.images.to(device), run.model.image);
  const Tensor gradient = report::guided_backprop(*run.model.module, layer, x, channels).gradient.detach().to(Device::cpu());
  std::vector<report::GuidedNeuron> rows;
  for (size_t i = 0; i < channels.size(); ++i) {
    const int64_t row = static_cast<int64_t>(i);
    report::GuidedNeuron neuron;
    neuron.channel = channels[i];
    neuron.peak = strongest.value[channels[i]];
    neuron.image = report::dataset_image(chosen, row);
    neuron.gradient = report::gradient_image(gradient.narrow0(row, 1));
    if (neuron.gradient.width != neuron.image.width || neuron.gradient.height != neuron.image.height)
      neuron.image = report::resize_smooth(neuron.image, neuron.gradient.width, neuron.gradient.height);  // model input size differs
    rows.push_back(std::move(neuron));
  }
  return rows;
}

}  // namespace

std::optional<report::SweepBestFigures> sweep_best_figures(const std::string& sweep_dir,
                                                           const report::SweepJournal& journal,
                                                           const SweepFigureOptions& o) {
  const report::SweepTrial* best = journal.finish ? journal.trial(journal.finish->trial) : report::best_trial(journal);
  if (!best) {
    std::printf("sweep report: no trial has a metric yet, so there is no best model to draw\n");
    return std::nullopt;
  }
  report::SweepBestFigures figures;
  figures.trial = best->name;
  figures.run_dir = journal.finish ? journal.finish->run_dir : best->run_dir;
  const std::string run_dir = (std::filesystem::path(sweep_dir) / figures.run_dir).string();
  figures.checkpoint = std::filesystem::is_directory(run_dir) ? evaluated_checkpoint(run_dir) : "";
  if (journal.finish && !journal.finish->checkpoint.empty()) {
    // The checkpoint --finish evaluated (last.safetensors of a run retrained without validation).
    const std::string named = std::filesystem::path(journal.finish->checkpoint).filename().string();
    if (std::filesystem::is_regular_file(std::filesystem::path(run_dir) / named)) figures.checkpoint = named;
  }
  if (figures.checkpoint.empty()) {
    std::printf("sweep report: %s holds no checkpoint, so the best model's figures are left out\n", run_dir.c_str());
    return std::nullopt;
  }
  const report::RunRecord record = report::read_run_folder(run_dir);
  const Device device = resolve_device(o.device);
  LoadedRun run = load_run(run_dir + "/" + figures.checkpoint, device);
  KILN_CHECK(!run.checkpoint.config.contains("multi_label"), "sweep report: ", run_dir,
             " is a multi-label run; the sweep's hand-in figures are for single-label classification");

  // The run's own split (split.json), read the way `kiln report RUN` reads it.
  const DataOptions data_options = run_data_options(record, run, run_dir, o.data, o.cache_dir);
  const PreparedData data = prepare_data(data_options, "");
  const bool on_test = journal.finish.has_value() || data.val.size() == 0;
  const data::Dataset& images = on_test ? data.test : data.val;
  figures.split = on_test ? "test" : "validation";
  KILN_CHECK(images.size() > 0, "sweep report: the ", figures.split, " split of ", run_dir, " is empty");

  const train::Evaluation evaluation =
      train::evaluate(*run.model.module, images, run.model.image, device, o.batch_size);
  figures.images = evaluation.count;
  figures.accuracy = evaluation.accuracy;
  const std::vector<int64_t> labels(images.labels.data<int64_t>(), images.labels.data<int64_t>() + images.size());
  const std::vector<double> p = softmax_rows(evaluation.logits);
  figures.predictions = report::captioned_predictions(
      images, spread_by_confidence(p, labels, evaluation.logits.shape()[1]), run.checkpoint.class_names);
  std::printf("sweep report: %s (%s) on %lld %s images: accuracy %.4f\n", figures.trial.c_str(),
              figures.checkpoint.c_str(), static_cast<long long>(figures.images), figures.split.c_str(),
              figures.accuracy);

  figures.filter_layer = report::first_conv_layer(*run.model.module);
  auto* conv = dynamic_cast<nn::Conv2d*>(&report::find_layer(*run.model.module, figures.filter_layer));
  KILN_CHECK(conv != nullptr, "sweep report: ", figures.filter_layer, " is not a Conv2d");
  const Tensor weight = conv->weight.detach().to(Device::cpu());
  figures.filter_count = weight.shape()[0];
  const int64_t side = std::max(weight.shape()[2], weight.shape()[3]);
  figures.filters = report::filter_grid(weight, report::FilterScaling::per_filter,
                                        static_cast<int>(std::max<int64_t>(1, (96 + side - 1) / side)));

  const Tensor probe = augment::eval_transform(images.images.narrow0(0, 1).to(device), run.model.image);
  figures.guided_layer = report::last_conv_block(*run.model.module, probe);
  figures.guided = guided_rows(run, images, device, figures.guided_layer, o.neurons, o.guided_search_images, o.batch_size);
  return figures;
}

std::string write_sweep_report_with_figures(const std::string& sweep_dir, const SweepFigureOptions& options) {
  const report::SweepJournal journal = report::read_sweep_journal(sweep_dir);
  const std::optional<report::SweepBestFigures> figures = sweep_best_figures(sweep_dir, journal, options);
  return report::write_sweep_report(sweep_dir, figures ? &*figures : nullptr);
}

}  // namespace kiln::tools
