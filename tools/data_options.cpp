#include "tools/data_options.h"

#include <cstdio>
#include <filesystem>

#include "data/cache.h"
#include "data/mnist_idx.h"
#include "data/pack.h"

namespace kiln::tools {

void add_data_options(CLI::App* app, DataOptions& o) {
  app->add_option("data", o.data, "image folder, CSV, .kpack, or fashion-mnist")->capture_default_str();
  app->add_option("--test-data", o.test_data, "a separate test folder (no test part is split off DATA then)");
  app->add_option("--size", o.size, "fit every image to SIZE x SIZE (default: the data set's size)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--fit", o.fit, "crop (shorter side to SIZE, centre crop) or pad")->capture_default_str();
  app->add_option("--channels", o.channels, "3 (RGB) or 1 (grayscale)")->capture_default_str();
  app->add_flag("--skip-bad", o.skip_bad, "warn about unreadable images and leave them out, instead of stopping");
  app->add_option("--cache-dir", o.cache_dir, "where folders are packed once for fast epochs")->capture_default_str();
  app->add_option("--split", o.split, "per-class counts train/val/test, e.g. 300/75/75");
  app->add_option("--val", o.val, "validation fraction per class (without --split)")->capture_default_str();
  app->add_option("--test", o.test, "test fraction per class (without --split)")->capture_default_str();
  app->add_option("--split-file", o.split_file, "reuse the split.json of an earlier run");
  app->add_option("--seed", o.seed, "seed of the split (and of the run)")->capture_default_str();
}

data::Dataset load_data(const DataOptions& o, const std::string& path) {
  if (path == "fashion-mnist" || path == "fashion-mnist:test") {
    // 28x28 padded to 32x32 so that five 2x2 poolings leave a pixel.
    data::Dataset d = data::load_fashion_mnist(data::kFashionMnistDir, path == "fashion-mnist" ? "train" : "test");
    KILN_CHECK(o.size == 0 || o.size == 32, "--size: Fashion-MNIST is 32x32 here (28 padded by 2), got ", o.size);
    return data::pad_images(d, 2);
  }
  if (std::filesystem::path(path).extension() == ".kpack") return data::open_pack(path);
  data::LoadConfig config;
  config.size = o.size > 0 ? o.size : 224;
  config.fit = data::parse_fit(o.fit);
  config.channels = o.channels;
  config.skip_bad = o.skip_bad;
  return data::load_dataset(path, config, o.cache_dir);
}

PreparedData prepare_data(const DataOptions& o, const std::string& run_dir) {
  PreparedData out;
  const data::Dataset all = load_data(o, o.data);
  const bool separate_test = !o.test_data.empty() || o.data == "fashion-mnist";
  if (!o.split_file.empty()) {
    out.split = data::load_split(o.split_file);
  } else {
    data::SplitSpec spec = o.split.empty() ? data::split_by_ratio(o.val, separate_test ? 0.0 : o.test)
                                           : data::parse_split_counts(o.split);
    KILN_CHECK(!(separate_test && spec.per_class && spec.test_count > 0), "--split ", o.split,
               ": the test set comes from ", o.test_data.empty() ? "fashion-mnist's own test files" : o.test_data,
               ", so give only train/val counts (e.g. 300/75)");
    out.split = data::make_split(all, spec, o.seed);
  }
  out.train = data::subset(all, data::indices_of(all, out.split.train));
  out.val = data::subset(all, data::indices_of(all, out.split.val));
  if (separate_test) {
    DataOptions test_options = o;
    out.test = load_data(test_options, o.data == "fashion-mnist" ? "fashion-mnist:test" : o.test_data);
    KILN_CHECK(out.test.class_names == all.class_names, "--test-data ", o.test_data,
               ": its classes differ from the training data's");
    out.split.test = out.test.file_names;
  } else {
    out.test = data::subset(all, data::indices_of(all, out.split.test));
  }
  if (!run_dir.empty()) {
    std::filesystem::create_directories(run_dir);
    data::save_split(run_dir + "/split.json", out.split);
  }
  return out;
}

}  // namespace kiln::tools
