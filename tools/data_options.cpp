#include "tools/data_options.h"

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/cache.h"
#include "data/class_stats.h"
#include "data/mnist_idx.h"
#include "data/pack.h"
#include "weights/atomic_file.h"

namespace kiln::tools {

void add_data_options(CLI::App* app, DataOptions& o) {
  app->add_option("data", o.data, "image folder, CSV, .kpack, or fashion-mnist")->capture_default_str();
  app->add_option("--test-data", o.test_data, "a separate test folder (no test part is split off DATA then)");
  app->add_option("--size", o.size, "fit every image to SIZE x SIZE (default: the data set's size)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--fit", o.fit, "crop (shorter side to SIZE, centre crop) or pad")->capture_default_str();
  app->add_option("--channels", o.channels, "3 (RGB) or 1 (grayscale)")->capture_default_str();
  app->add_flag("--skip-bad", o.skip_bad, "warn about unreadable images and leave them out, instead of stopping");
  app->add_flag("--multi-label", o.csv.multi_label,
                "several labels per image (a CSV); automatic when a label cell holds more than one");
  app->add_option("--image-column", o.csv.image_column, "the CSV column naming the image (default: image, ImageID, ...)");
  app->add_option("--labels-column", o.csv.labels_column, "the CSV column of labels (default: labels, label, tags, ...)");
  app->add_option("--image-root", o.csv.image_root, "the folder a CSV's image paths are relative to (default: its folder)");
  app->add_option("--cache-dir", o.cache_dir, "where folders are packed once for fast epochs")->capture_default_str();
  app->add_option("--split", o.split, "per-class counts train/val/test, e.g. 300/75/75");
  app->add_option("--val", o.val, "validation fraction per class (without --split)")->capture_default_str();
  app->add_option("--test", o.test, "test fraction per class (without --split)")->capture_default_str();
  app->add_option("--split-file", o.split_file, "reuse the split.json of an earlier run");
  app->add_option("--seed", o.seed, "seed of the split (and of the run)")->capture_default_str();
}

void add_sampler_options(CLI::App* app, DataOptions& o) {
  app->add_option("--sampler", o.sampler,
                  "balanced: rare classes drawn more often, same epoch length (inverse class frequency; "
                  "multi-label: LVIS repeat factors)")
      ->check(CLI::IsMember({"none", "balanced"}))
      ->capture_default_str();
  app->add_option("--repeat-threshold", o.repeat_threshold,
                  "t of repeat-factor sampling, r_c = max(1, sqrt(t / f_c)); 0: the most frequent class's f")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
}

data::SamplerConfig sampler_config(const DataOptions& o) {
  KILN_CHECK(o.repeat_threshold == 0 || o.sampler == "balanced", "--repeat-threshold ", o.repeat_threshold,
             " is for --sampler balanced (the sampler is '", o.sampler, "')");
  return {data::parse_sampler(o.sampler), o.repeat_threshold};
}

data::Dataset load_data(const DataOptions& o, const std::string& path) {
  if (path == "fashion-mnist" || path == "fashion-mnist:test") {
    // 28x28 padded to 32x32 so that five 2x2 poolings leave a pixel.
    data::Dataset d = data::load_fashion_mnist(data::kFashionMnistDir, path == "fashion-mnist" ? "train" : "test");
    KILN_CHECK(o.size == 0 || o.size == 32, "--size: Fashion-MNIST is 32x32 here (28 padded by 2), got ", o.size);
    KILN_CHECK(!o.csv.multi_label, "--multi-label: Fashion-MNIST has one label per image");
    return data::pad_images(d, 2);
  }
  if (std::filesystem::path(path).extension() == ".kpack") {
    data::Dataset pack = data::open_pack(path);
    KILN_CHECK(!o.csv.multi_label || pack.targets.defined(), "--multi-label: the pack '", path,
               "' holds one label per image (it was packed from a folder or a single-label CSV)");
    return pack;
  }
  data::LoadConfig config;
  config.size = o.size > 0 ? o.size : 224;
  config.fit = data::parse_fit(o.fit);
  config.channels = o.channels;
  config.skip_bad = o.skip_bad;
  config.csv = o.csv;
  return data::load_dataset(path, config, o.cache_dir);
}

PreparedData prepare_data(const DataOptions& o, const std::string& run_dir) {
  PreparedData out;
  sampler_config(o);  // a bad --sampler / --repeat-threshold fails before anything is loaded or written
  const data::Dataset all = load_data(o, o.data);
  KILN_CHECK(all.labelled, "'", o.data, "' has no labels column (a CSV of images to predict, like a test.csv): ",
             "train on a CSV with labels, or name its column with --labels-column");
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
    for (const std::string& warning : out.split.warnings) std::fprintf(stderr, "warning: split: %s\n", warning.c_str());
  }
  out.train = data::subset(all, data::indices_of(all, out.split.train));
  out.val = data::subset(all, data::indices_of(all, out.split.val));
  if (separate_test) {
    DataOptions test_options = o;
    out.test = load_data(test_options, o.data == "fashion-mnist" ? "fashion-mnist:test" : o.test_data);
    KILN_CHECK(out.test.labelled, "--test-data ", o.test_data, " has no labels column: it cannot be scored ",
               "(predict it with `kiln predict` instead)");
    KILN_CHECK(out.test.targets.defined() == all.targets.defined(), "--test-data ", o.test_data, " is ",
               out.test.targets.defined() ? "multi-label" : "single-label", " and ", o.data, " is not");
    data::align_classes(out.test, all.class_names);  // by name; throws for a class the training data lacks
    out.split.test = out.test.file_names;
  } else {
    out.test = data::subset(all, data::indices_of(all, out.split.test));
  }
  // Class statistics before training: printed for multi-label sets (where imbalance and
  // co-occurrence decide the loss and the sampler), kept in the run folder for all.
  const data::ClassStats train_stats = data::class_stats(out.train);
  if (train_stats.multi_label) std::printf("class statistics of the training split:\n%s", train_stats.to_text().c_str());
  if (!run_dir.empty()) {
    std::filesystem::create_directories(run_dir);
    data::save_split(run_dir + "/split.json", out.split);
    const nlohmann::json stats = {{"train", train_stats.to_json()},
                                  {"val", data::class_stats(out.val).to_json()},
                                  {"test", data::class_stats(out.test).to_json()}};
    write_file_atomically(run_dir + "/class_stats.json", [&](std::ostream& file) { file << stats.dump(1) << "\n"; });
  }
  return out;
}

}  // namespace kiln::tools
