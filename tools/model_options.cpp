#include "tools/model_options.h"

#include <cmath>

#include "engine/core/backend_info.h"
#include "models/cnn5.h"

namespace kiln::tools {

void add_model_options(CLI::App* app, ModelOptions& o) {
  app->add_option("--model", o.arch, "the model to train")->check(CLI::IsMember({"cnn5"}))->capture_default_str();
  add_cnn5_options(app, o.cnn5);
}

Device resolve_device(const std::string& text) {
  if (text == "auto") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  return Device::parse(text);
}

void pixel_statistics(const data::Dataset& dataset, std::vector<double>& mean, std::vector<double>& std) {
  const int64_t n = dataset.size(), channels = dataset.images.shape()[1];
  const int64_t plane = dataset.images.shape()[2] * dataset.images.shape()[3];
  const uint8_t* px = dataset.images.data<uint8_t>();
  mean.assign(static_cast<size_t>(channels), 0.0);
  std.assign(static_cast<size_t>(channels), 0.0);
  for (int64_t c = 0; c < channels; ++c) {
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* p = px + (i * channels + c) * plane;
      for (int64_t k = 0; k < plane; ++k) {
        const double v = p[k] / 255.0;
        sum += v;
        sum_sq += v * v;
      }
    }
    const double count = static_cast<double>(std::max<int64_t>(n * plane, 1));
    mean[c] = sum / count;
    std[c] = std::sqrt(std::max(sum_sq / count - mean[c] * mean[c], 1e-12));
  }
}

BuiltModel build_model(const ModelOptions& o, const data::Dataset& train_set) {
  KILN_CHECK(train_set.size() > 0, "build_model: the training set is empty");
  KILN_CHECK(train_set.images.shape()[2] == train_set.images.shape()[3], "build_model: images must be square, got ",
             train_set.images.shape());
  BuiltModel built;
  models::Cnn5Config config = to_config(o.cnn5);
  config.in_channels = train_set.images.shape()[1];
  config.input_size = train_set.images.shape()[2];
  config.num_classes = train_set.num_classes();
  built.module = models::make_cnn5(config);
  built.config = {{"arch", "cnn5"}, {"cnn5", config.to_json()}};
  built.description = config.to_string();
  built.image.out_size = config.input_size;
  pixel_statistics(train_set, built.image.mean, built.image.std);
  return built;
}

BuiltModel build_model_from_config(const nlohmann::json& run_config) {
  KILN_CHECK(run_config.contains("model") && run_config["model"].value("arch", "") == "cnn5",
             "checkpoint config: no buildable model in ", run_config.dump().substr(0, 200));
  BuiltModel built;
  const models::Cnn5Config config = models::Cnn5Config::from_json(run_config["model"].at("cnn5"));
  built.module = models::make_cnn5(config);
  built.config = run_config["model"];
  built.description = config.to_string();
  built.image.out_size = config.input_size;
  built.image.mean = run_config.at("image").at("mean").get<std::vector<double>>();
  built.image.std = run_config.at("image").at("std").get<std::vector<double>>();
  return built;
}

}  // namespace kiln::tools
