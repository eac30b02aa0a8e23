#include "models/cnn5.h"

#include "engine/core/checked_math.h"
#include "engine/core/json_parse.h"

namespace kiln::models {

std::vector<int64_t> Cnn5Config::organise_filters(int64_t base, const std::string& organisation) {
  KILN_CHECK(base > 0, "cnn5: --filters must be positive, got ", base);
  std::vector<int64_t> out;
  for (int i = 0; i < 5; ++i) {
    if (organisation == "same") {
      out.push_back(base);
    } else if (organisation == "double") {
      out.push_back(base << i);
    } else if (organisation == "half") {
      out.push_back(std::max<int64_t>(1, (base << 4) >> i));  // base is the last layer's count: 16b, 8b, ..., b
    } else {
      KILN_FAIL("cnn5: --filter-org must be same, double or half, got '", organisation, "'");
    }
  }
  return out;
}

std::string Cnn5Config::to_string() const {
  std::string f;
  for (int64_t m : filters) f += (f.empty() ? "" : "-") + std::to_string(m);
  return str("cnn5(filters ", f, ", ", activation_name(activation), ", dense ", dense_units, ", bn ",
             batch_norm ? "on" : "off", ", dropout ", dropout, " ", dropout_where, ", padding ", padding, ", input ",
             in_channels, "x", input_size, "x", input_size, ", classes ", num_classes, ")");
}

nlohmann::json Cnn5Config::to_json() const {
  return {{"in_channels", in_channels},   {"num_classes", num_classes},     {"input_size", input_size},
          {"filters", filters},           {"kernel_sizes", kernel_sizes},   {"activation", activation_name(activation)},
          {"dense_units", dense_units},   {"batch_norm", batch_norm},       {"dropout", dropout},
          {"dropout_where", dropout_where}, {"padding", padding}};
}

Cnn5Config Cnn5Config::from_json(const nlohmann::json& json) {
  Cnn5Config c;
  try {
    c.in_channels = json_int64(json.at("in_channels"), "cnn5 configuration", "in_channels");
    c.num_classes = json_int64(json.at("num_classes"), "cnn5 configuration", "num_classes");
    c.input_size = json_int64(json.at("input_size"), "cnn5 configuration", "input_size");
    c.filters = json_int64s(json.at("filters"), "cnn5 configuration", "filters");
    c.kernel_sizes = json_ints(json.at("kernel_sizes"), "cnn5 configuration", "kernel_sizes");
    c.activation = parse_activation(json.at("activation").get<std::string>());
    c.dense_units = json_int64(json.at("dense_units"), "cnn5 configuration", "dense_units");
    c.batch_norm = json.at("batch_norm").get<bool>();
    c.dropout = json.at("dropout").get<double>();
    c.dropout_where = json.at("dropout_where").get<std::string>();
    c.padding = json.at("padding").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("cnn5 configuration: ", e.what(), " in ", json.dump());
  }
  return c;
}

namespace {
// Spatial size after one block: conv (stride 1) then a 2x2/2 max-pool.
int64_t block_output_size(int64_t size, int kernel, int padding) { return (size + 2 * padding - kernel + 1) / 2; }
}  // namespace

std::shared_ptr<nn::Sequential> make_cnn5(const Cnn5Config& c) {
  KILN_CHECK(c.filters.size() == 5, "cnn5: expected 5 filter counts, got ", c.filters.size());
  KILN_CHECK(c.kernel_sizes.size() == 5, "cnn5: expected 5 kernel sizes, got ", c.kernel_sizes.size());
  KILN_CHECK(c.padding == "same" || c.padding == "valid", "cnn5: padding must be same or valid, got '", c.padding, "'");
  KILN_CHECK(c.dropout_where == "dense" || c.dropout_where == "conv" || c.dropout_where == "both",
             "cnn5: dropout position must be dense, conv or both, got '", c.dropout_where, "'");
  // Configs also come from files (a checkpoint's kiln.config): every size is bounded
  // before a layer is built, so a hostile one is an error, not a terabyte allocation.
  KILN_CHECK(c.in_channels >= 1 && c.in_channels <= 4, "cnn5: in_channels must be 1 to 4, got ", c.in_channels);
  KILN_CHECK(c.num_classes >= 1 && c.num_classes <= kMaxClasses, "cnn5: num_classes must be 1 to ", kMaxClasses,
             ", got ", c.num_classes);
  KILN_CHECK(c.input_size >= 1 && c.input_size <= kMaxImageSide, "cnn5: input_size must be 1 to ", kMaxImageSide,
             ", got ", c.input_size);
  KILN_CHECK(c.dense_units >= 1 && c.dense_units <= (1 << 16), "cnn5: dense_units must be 1 to 65536, got ",
             c.dense_units);
  KILN_CHECK(c.dropout >= 0 && c.dropout < 1, "cnn5: dropout must be in [0, 1), got ", c.dropout);
  for (int i = 0; i < 5; ++i) {
    KILN_CHECK(c.filters[i] >= 1 && c.filters[i] <= (1 << 14), "cnn5: filters must be 1 to 16384, got ", c.filters[i],
               " in block ", i + 1);
    KILN_CHECK(c.kernel_sizes[i] >= 1 && c.kernel_sizes[i] <= 31, "cnn5: kernel sizes must be 1 to 31, got ",
               c.kernel_sizes[i], " in block ", i + 1);
  }
  KILN_CHECK(cnn5_parameter_count(c) <= (int64_t{1} << 31), "cnn5: ", cnn5_parameter_count(c),
             " parameters is more than kiln builds (2^31)");
  const bool conv_dropout = c.dropout > 0 && c.dropout_where != "dense";
  const bool dense_dropout = c.dropout > 0 && c.dropout_where != "conv";
  auto net = std::make_shared<nn::Sequential>();
  int64_t channels = c.in_channels, size = c.input_size;
  for (int i = 0; i < 5; ++i) {
    const int k = c.kernel_sizes[i];
    const int padding = c.padding == "same" ? k / 2 : 0;
    auto block = std::make_shared<nn::Sequential>();
    block->add("conv", std::make_shared<nn::Conv2d>(channels, c.filters[i], k, 1, padding, 1, !c.batch_norm));
    if (c.batch_norm) block->add("bn", std::make_shared<nn::BatchNorm>(c.filters[i]));
    block->add("act", std::make_shared<nn::ActivationLayer>(c.activation));
    block->add("pool", std::make_shared<nn::MaxPool2d>(Pool2dParams{}));
    if (conv_dropout) block->add("dropout", std::make_shared<nn::Dropout>(c.dropout, 1000 + static_cast<uint64_t>(i)));
    net->add("block" + std::to_string(i + 1), block);
    channels = c.filters[i];
    size = block_output_size(size, k, padding);
    KILN_CHECK(size >= 1, "cnn5: input ", c.input_size, "x", c.input_size, " is too small: block ", i + 1,
               " leaves no pixels (use a larger input or padding same)");
  }
  auto head = std::make_shared<nn::Sequential>();
  head->add("flatten", std::make_shared<nn::Flatten>());
  head->add("dense", std::make_shared<nn::Linear>(channels * size * size, c.dense_units));
  head->add("act", std::make_shared<nn::ActivationLayer>(c.activation));
  if (dense_dropout) head->add("dropout", std::make_shared<nn::Dropout>(c.dropout, 2000));
  head->add("out", std::make_shared<nn::Linear>(c.dense_units, c.num_classes));
  net->add("head", head);
  return net;
}

int64_t cnn5_parameter_count(const Cnn5Config& c) {
  // conv: m_i * (m_{i-1} * k_i^2) weights, plus m_i biases (no BN) or 2 m_i BN params.
  int64_t total = 0, channels = c.in_channels, size = c.input_size;
  for (int i = 0; i < 5; ++i) {
    const int k = c.kernel_sizes[i];
    total += c.filters[i] * channels * k * k + (c.batch_norm ? 2 * c.filters[i] : c.filters[i]);
    channels = c.filters[i];
    size = block_output_size(size, k, c.padding == "same" ? k / 2 : 0);
  }
  const int64_t features = channels * size * size;
  return total + features * c.dense_units + c.dense_units + c.dense_units * c.num_classes + c.num_classes;
}

}  // namespace kiln::models
