#include "tools/model_options.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/core/backend_info.h"
#include "engine/core/json_parse.h"
#include "models/blocks.h"
#include "models/cnn5.h"
#include "models/registry.h"
#include "models/resnet_custom.h"
#include "models/rules.h"
#include "models/summary.h"
#include "weights/checkpoint.h"
#include "weights/onnx_import.h"
#include "weights/safetensors.h"

namespace kiln::tools {

void add_model_options(CLI::App* app, ModelOptions& o) {
  std::vector<std::string> archs = models::model_names();
  archs.insert(archs.begin(), {"cnn5", "resnet_custom"});
  app->add_option("--model", o.arch, "cnn5, resnet_custom, or a zoo model: resnet18, vgg16_bn, mobilenet_v2, ...")
      ->check(CLI::IsMember(archs))
      ->capture_default_str();
  add_cnn5_options(app, o.cnn5);
  add_resnet_custom_options(app, o.resnet_custom);
  app->add_option("--pretrained", o.pretrained, "weights for a zoo model: an .onnx file, a kiln import .safetensors or a kiln train checkpoint")
      ->check(CLI::ExistingFile);
  app->add_option("--finetune", o.finetune, "all, head, or from:STAGE (e.g. from:layer3)")->capture_default_str();
  app->add_flag("--freeze-bn", o.freeze_bn, "keep batch-norm running statistics fixed while training");
  app->add_option("--max-params", o.max_params, "refuse a model with more parameters, e.g. 26M");
}

const std::vector<double> kImageNetMean = {0.485, 0.456, 0.406}, kImageNetStd = {0.229, 0.224, 0.225};

PretrainedModel load_pretrained_model(const std::string& arch, const std::string& path) {
  PretrainedModel loaded;
  if (path.size() > 5 && path.substr(path.size() - 5) == ".onnx") {
    loaded.module = models::make_model(arch, 1000);
    loaded.description = import_onnx(path, *loaded.module).to_string();
  } else {
    SafeTensors file = load_safetensors(path);
    // A `kiln train` checkpoint (of the same architecture) works too: its model part.
    // (`kiln import` writes kiln.format "state_dict": plain weights, read as they are.)
    const auto format = file.metadata.find("kiln.format");
    const bool is_checkpoint = format != file.metadata.end() && format->second != "state_dict";
    std::map<std::string, int64_t> frozen_in_checkpoint;
    if (is_checkpoint) {
      Checkpoint checkpoint = load_checkpoint(path);
      file.tensors = checkpoint.model;
      loaded.class_names = checkpoint.class_names;
      for (const auto& item : checkpoint.extra_state.items())
        if (item.key().size() > 18 && item.key().substr(item.key().size() - 18) == ".frozen_statistics" &&
            item.value().is_number_integer())
          frozen_in_checkpoint[item.key()] = item.value().get<int64_t>();
    }
    const std::string head_weight = models::model_entry(arch).head + ".weight";
    KILN_CHECK(file.tensors.count(head_weight) > 0, "--pretrained ", path, ": no tensor '", head_weight, "', so it holds no ",
               arch, " weights");
    loaded.module = models::make_model(arch, file.at(head_weight).shape()[0]);
    loaded.module->load_state_dict(file.tensors, /*strict=*/true);
    // Batch norms that `kiln import` loaded from folded convolutions keep their statistics.
    auto frozen = file.metadata.find("kiln.frozen_batchnorm");
    std::stringstream names(frozen == file.metadata.end() ? "" : frozen->second);
    for (std::string name; std::getline(names, name, ',');)
      if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(models::find_module(*loaded.module, name)))
        bn->freeze_statistics = true;
    // ... and so do those of a checkpoint whose run had them frozen (imported from ONNX).
    loaded.module->load_extra_state(frozen_in_checkpoint);
    loaded.description = (is_checkpoint ? "checkpoint weights from " : "weights from ") + path;
  }
  return loaded;
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
  built.image.out_size = train_set.images.shape()[2];
  if (o.arch == "cnn5") {
    KILN_CHECK(o.pretrained.empty() && o.finetune == "all", "--pretrained and --finetune are for zoo models, not cnn5");
    models::Cnn5Config config = to_config(o.cnn5);
    config.in_channels = train_set.images.shape()[1];
    config.input_size = train_set.images.shape()[2];
    config.num_classes = train_set.num_classes();
    built.module = models::make_cnn5(config);
    built.config = {{"arch", "cnn5"}, {"cnn5", config.to_json()}};
    built.description = config.to_string();
    pixel_statistics(train_set, built.image.mean, built.image.std);
  } else if (o.arch == "resnet_custom") {
    KILN_CHECK(o.pretrained.empty() && o.finetune == "all",
               "--pretrained and --finetune are for zoo models; resnet_custom trains from scratch");
    const models::ResNetCustomConfig config =
        to_config(o.resnet_custom, train_set.images.shape()[1], train_set.num_classes());
    built.module = models::make_resnet_custom(config);
    built.config = {{"arch", "resnet_custom"}, {"resnet_custom", config.to_json()}};
    built.description = config.to_string();
    pixel_statistics(train_set, built.image.mean, built.image.std);  // from scratch: the data's own statistics
  } else {
    KILN_CHECK(train_set.images.shape()[1] == 3, "--model ", o.arch, " takes RGB images; the data has ",
               train_set.images.shape()[1], " channel(s) (use --channels 3)");
    const int64_t classes = train_set.num_classes();
    built.description = o.arch + ", " + std::to_string(classes) + " classes";
    if (o.pretrained.empty()) {
      built.module = models::make_model(o.arch, classes);
    } else {
      PretrainedModel pretrained = load_pretrained_model(o.arch, o.pretrained);
      built.module = pretrained.module;
      // A fresh head for the data's classes, unless the weights are a kiln checkpoint
      // trained on exactly these classes (train the head first, then fine-tune more).
      const bool same_classes = pretrained.class_names == train_set.class_names;
      if (!same_classes) models::reset_head(*built.module, o.arch, classes);
      built.description += ", " + pretrained.description + (same_classes ? " (its head too: same classes)" : "");
    }
    models::apply_finetune(*built.module, o.arch, o.finetune);
    built.description += ", finetune " + o.finetune;
    built.config = {{"arch", o.arch}, {"num_classes", classes}, {"pretrained", o.pretrained}, {"finetune", o.finetune}};
    built.image.mean = kImageNetMean;
    built.image.std = kImageNetStd;
  }
  if (!o.max_params.empty()) {
    const int64_t cap = models::parse_count(o.max_params, "--max-params");
    const int64_t count = built.module->parameter_count();
    if (count > cap) {
      std::string largest;
      for (const std::string& layer : models::largest_layers(*built.module)) largest += "\n  " + layer;
      KILN_FAIL("--max-params ", o.max_params, ": ", built.description, " has ", models::with_thousands(count),
                " parameters, over the cap of ", models::with_thousands(cap), "; its five largest layers:", largest);
    }
  }
  if (o.freeze_bn)
    models::for_each_module(*built.module, [](const std::string&, nn::Module& m) {
      if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) bn->freeze_statistics = true;
    });
  return built;
}

BuiltModel build_model_from_config(const nlohmann::json& run_config) {
  KILN_CHECK(run_config.is_object() && run_config.contains("model") && run_config["model"].is_object() &&
                 run_config["model"].contains("arch"),
             "checkpoint config: no model in ", run_config.dump().substr(0, 200));
  // The config comes from a file (a checkpoint's metadata): a missing field or one of
  // the wrong type is an error naming it, not an nlohmann exception.
  return read_json_fields("checkpoint config", [&] {
    const nlohmann::json& model = run_config["model"];
    BuiltModel built;
    const std::string arch = model["arch"].get<std::string>();
    if (arch == "cnn5") {
      const models::Cnn5Config config = models::Cnn5Config::from_json(model.at("cnn5"));
      built.module = models::make_cnn5(config);
      built.description = config.to_string();
      built.image.out_size = config.input_size;
    } else if (arch == "resnet_custom") {
      const auto config = models::ResNetCustomConfig::from_json(model.at("resnet_custom"));
      built.module = models::make_resnet_custom(config);
      built.description = config.to_string();
      built.image.out_size = json_int64(run_config.at("data").at("size"), "the run's config", "data.size");
    } else {
      built.module = models::make_model(arch, json_int64(model.at("num_classes"), "the run's config", "num_classes"));
      built.description = arch;
      built.image.out_size = json_int64(run_config.at("data").at("size"), "the run's config", "data.size");
    }
    built.config = model;
    built.image.mean = run_config.at("image").at("mean").get<std::vector<double>>();
    built.image.std = run_config.at("image").at("std").get<std::vector<double>>();
    return built;
  });
}

}  // namespace kiln::tools
