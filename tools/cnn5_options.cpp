#include "tools/cnn5_options.h"

#include "engine/core/check.h"

namespace kiln::tools {

void add_cnn5_options(CLI::App* app, Cnn5Options& o) {
  auto* filters = app->add_option("--filters", o.filters, "filters of the base layer, expanded by --filter-org")
                      ->capture_default_str();
  auto* org = app->add_option("--filter-org", o.filter_org,
                              "same: m,m,m,m,m; double: m,2m,4m,8m,16m; half: 16m,8m,4m,2m,m")
                  ->check(CLI::IsMember({"same", "double", "half"}))
                  ->capture_default_str();
  app->add_option("--filter-list", o.filter_list, "five filter counts, e.g. 16,32,64,128,256")
      ->delimiter(',')
      ->excludes(filters)
      ->excludes(org);
  app->add_option("--kernel-sizes", o.kernel_sizes, "kernel size per block (five, comma-separated) or one for all")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--activation", o.activation, "relu, leaky_relu, gelu, silu, mish, elu, ...")
      ->capture_default_str();
  app->add_option("--dense", o.dense, "units of the dense layer before the classifier")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch-norm", o.batch_norm, "batch norm after each conv")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app->add_option("--dropout", o.dropout, "dropout probability (0 = none)")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app->add_option("--dropout-where", o.dropout_where, "dense: after the dense layer; conv: after each block; both")
      ->check(CLI::IsMember({"dense", "conv", "both"}))
      ->capture_default_str();
  app->add_option("--padding", o.padding, "same: keep the size through each conv; valid: no padding")
      ->check(CLI::IsMember({"same", "valid"}))
      ->capture_default_str();
}

void add_cnn5_shape_options(CLI::App* app, Cnn5Options& o) {
  app->add_option("--classes", o.classes, "number of classes K")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--input", o.input, "input image size CxHxW (H = W), e.g. 3x256x256")->capture_default_str();
}

Shape parse_input_shape(const std::string& text, const char* flag) {
  std::vector<int64_t> dims;
  size_t start = 0;
  while (true) {
    const size_t end = text.find('x', start);
    const std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    // Digits only: stoll alone would accept "3a" or "-1".
    KILN_CHECK(!part.empty() && part.find_first_not_of("0123456789") == std::string::npos && part.size() < 10,
               flag, " must be CxHxW with positive whole numbers, e.g. 3x256x256, got '", text, "'");
    dims.push_back(std::stoll(part));
    KILN_CHECK(dims.back() > 0, flag, " sizes must be positive, got '", text, "'");
    if (end == std::string::npos) break;
    start = end + 1;
  }
  KILN_CHECK(dims.size() == 3, flag, " must have three sizes CxHxW, e.g. 3x256x256, got '", text, "'");
  return Shape(dims);
}

models::Cnn5Config to_config(const Cnn5Options& o) {
  models::Cnn5Config config;
  if (o.filter_list.empty()) {
    config.filters = models::Cnn5Config::organise_filters(o.filters, o.filter_org);
  } else {
    KILN_CHECK(o.filter_list.size() == 5, "--filter-list needs five filter counts (one per block), got ",
               o.filter_list.size());
    for (int64_t m : o.filter_list) KILN_CHECK(m > 0, "--filter-list counts must be positive, got ", m);
    config.filters = o.filter_list;
  }
  KILN_CHECK(o.kernel_sizes.size() == 1 || o.kernel_sizes.size() == 5,
             "--kernel-sizes needs one size for all blocks or five (one per block), got ", o.kernel_sizes.size());
  config.kernel_sizes = o.kernel_sizes.size() == 1 ? std::vector<int>(5, o.kernel_sizes[0]) : o.kernel_sizes;
  for (int k : config.kernel_sizes) KILN_CHECK(k >= 1, "--kernel-sizes must be positive, got ", k);
  config.activation = parse_activation(o.activation);
  config.dense_units = o.dense;
  config.batch_norm = o.batch_norm == "on";
  config.dropout = o.dropout;
  config.dropout_where = o.dropout_where;
  config.padding = o.padding;
  config.num_classes = o.classes;
  const Shape input = parse_input_shape(o.input);
  KILN_CHECK(input[1] == input[2], "--input: cnn5 takes square images (H = W), got ", o.input);
  config.in_channels = input[0];
  config.input_size = input[1];
  return config;
}

}  // namespace kiln::tools
