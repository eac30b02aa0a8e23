#include "tools/run_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "data/image_io.h"
#include "engine/tensor/factory.h"
#include "models/registry.h"

namespace kiln::tools {

LoadedRun load_run(const std::string& checkpoint_path, const Device& device) {
  LoadedRun run;
  run.checkpoint = load_checkpoint(checkpoint_path);
  KILN_CHECK(run.checkpoint.config.contains("model"), "'", checkpoint_path,
             "' holds no model configuration (was it written by kiln train?)");
  run.model = build_model_from_config(run.checkpoint.config);
  restore_model(*run.model.module, run.checkpoint);
  run.model.module->to(device);
  run.model.module->eval();
  if (run.checkpoint.config.contains("data")) run.fit = run.checkpoint.config["data"].value("fit", "crop");
  return run;
}

std::vector<std::string> read_class_names(const std::string& path, const std::string& command) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), command, ": cannot read class names from '", path, "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a file written on Windows
    if (!line.empty()) lines.push_back(line);
  }
  KILN_CHECK(!lines.empty(), command, ": '", path, "' holds no class names (expected one per line)");
  return lines;
}

namespace {

std::string zoo_names() {
  std::string names;
  for (const std::string& name : models::model_names()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace

InferenceModel load_inference_model(const InferenceSource& source) {
  InferenceModel m;
  m.device = resolve_device(source.device);
  if (!source.pretrained.empty()) {
    KILN_CHECK(!source.arch.empty(), source.command, ": --pretrained needs --arch (", zoo_names(), ")");
    PretrainedModel loaded = load_pretrained_model(source.arch, source.pretrained);
    m.module = loaded.module;
    m.image.out_size = source.size;
    m.resize = std::lround(static_cast<double>(source.size) / 0.875);  // 224 -> 256
    m.image.mean = kImageNetMean;
    m.image.std = kImageNetStd;
    m.images = source.positional;
    m.description = source.arch + ", " + loaded.description;
  } else {
    KILN_CHECK(!source.positional.empty(), source.command,
               ": give a checkpoint written by kiln train, or --arch and --pretrained");
    KILN_CHECK(source.arch.empty(), source.command,
               ": --arch goes with --pretrained; a checkpoint knows its architecture");
    LoadedRun run = load_run(source.positional[0], m.device);
    m.module = run.model.module;
    m.image = run.model.image;
    m.resize = m.image.out_size;
    m.fit = data::parse_fit(run.fit);
    m.class_names = run.checkpoint.class_names;
    if (run.checkpoint.config.contains("multi_label")) m.multi_label = run.checkpoint.config["multi_label"];
    m.images.assign(source.positional.begin() + 1, source.positional.end());
    m.description = run.model.description + " from " + source.positional[0];
  }
  if (!source.class_names_file.empty()) m.class_names = read_class_names(source.class_names_file, source.command);
  m.module->to(m.device);
  m.module->eval();
  return m;
}

std::string class_label(const InferenceModel& m, int64_t k) {
  const std::string index = std::to_string(k);
  return k < static_cast<int64_t>(m.class_names.size()) ? index + " " + m.class_names[k] : index;
}

Tensor load_images(const InferenceModel& m, const std::vector<std::string>& files) {
  const int64_t size = m.image.out_size, channels = static_cast<int64_t>(m.image.mean.size());
  const int64_t resize = std::max(m.resize, size), margin = (resize - size) / 2;
  Tensor batch = empty({static_cast<int64_t>(files.size()), channels, size, size}, {DType::u8});
  std::vector<uint8_t> fitted(static_cast<size_t>(channels * resize * resize));
  for (size_t i = 0; i < files.size(); ++i) {
    data::fit_image(data::decode_image(files[i], channels), resize, m.fit, fitted.data());
    uint8_t* out = batch.data<uint8_t>() + static_cast<int64_t>(i) * channels * size * size;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t y = 0; y < size; ++y)
        std::copy_n(fitted.data() + (c * resize + margin + y) * resize + margin, size, out + (c * size + y) * size);
  }
  return batch;
}

DataOptions run_data_options(const report::RunRecord& record, const LoadedRun& run, const std::string& run_dir,
                             const std::string& data_override, const std::string& cache_dir) {
  DataOptions data_options;
  const nlohmann::json& config = record.config;
  data_options.data = config.contains("data") ? config["data"].value("source", data_options.data) : data_options.data;
  if (record.info) {
    data_options.data = record.info->data_source.empty() ? data_options.data : record.info->data_source;
    data_options.test_data = record.info->test_data;
    data_options.channels = record.info->channels;
  }
  if (!data_override.empty()) data_options.data = data_override;
  data_options.size = run.model.image.out_size;
  data_options.fit = run.fit;
  data_options.cache_dir = cache_dir;
  data_options.split_file = run_dir + "/split.json";
  return data_options;
}

}  // namespace kiln::tools
