#include "tools/data_options.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "data/cache.h"
#include "data/class_stats.h"
#include "data/mnist_idx.h"
#include "data/pack.h"
#include "data/pack_set.h"
#include "weights/atomic_file.h"
#include "data/tiny_imagenet.h"

namespace kiln::tools {

void add_data_options(CLI::App* app, DataOptions& o) {
  app->add_option("data", o.data,
                  "image folder, CSV, Tiny-ImageNet folder, .kpack, .kpacks (a pack per size: --progressive reads "
                  "each epoch's size from its pack), or fashion-mnist")
      ->capture_default_str();
  app->add_option("--test-data", o.test_data, "a separate test folder (no test part is split off DATA then)");
  app->add_option("--size", o.size,
                  "fit every image to SIZE x SIZE (default: the data set's size); a .kpacks: the size to read "
                  "(default: its largest)")
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
  app->add_option_function<std::string>(
         "--val",
         [&o](const std::string& value) {
           if (value == "official") {
             o.official_val = true;
             return;
           }
           size_t end = 0;
           try {
             o.val = std::stod(value, &end);
           } catch (const std::exception&) {
             end = 0;
           }
           KILN_CHECK(end == value.size() && end > 0 && o.val >= 0 && o.val < 1, "--val must be a fraction in ",
                      "[0, 1) or 'official' (a Tiny-ImageNet folder's val/ images), got '", value, "'");
         },
         "validation fraction per class (without --split), or official: Tiny-ImageNet's val/ set")
      ->default_str("0.2");
  app->add_option("--classes", o.classes, "only the first N classes, or a comma-separated list of class names");
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
  if (data::is_pack_set(path)) {
    // A multi-size pack: --size picks its member; without --size the largest is read.
    const data::PackSetIndex index = data::read_pack_set_index(path);
    data::Dataset pack = data::open_pack_set_member(index, o.size > 0 ? o.size : index.sizes.back(), "--size");
    KILN_CHECK(!o.csv.multi_label || pack.targets.defined(), "--multi-label: the pack set '", path,
               "' holds one label per image (it was packed from a folder or a single-label CSV)");
    return pack;
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

data::Dataset restrict_classes(const data::Dataset& all, const std::string& spec) {
  if (spec.empty()) return all;
  std::vector<std::string> chosen;
  if (spec.find_first_not_of("0123456789") == std::string::npos) {
    const int64_t count = std::stoll(spec);
    KILN_CHECK(count >= 1 && count <= all.num_classes(), "--classes ", spec, ": ", all.source, " has ",
               all.num_classes(), " classes");
    chosen.assign(all.class_names.begin(), all.class_names.begin() + count);
  } else {
    std::string list = spec + ",";
    for (size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1) {
      const std::string name = list.substr(start, comma - start);
      KILN_CHECK(std::find(all.class_names.begin(), all.class_names.end(), name) != all.class_names.end(),
                 "--classes: '", name, "' is not a class of ", all.source);
      chosen.push_back(name);
    }
  }
  KILN_CHECK(all.labels.defined() && !all.targets.defined(), "--classes needs single-label data");
  std::vector<int64_t> new_label(all.class_names.size(), -1);
  for (size_t i = 0; i < chosen.size(); ++i) {
    const auto at = std::find(all.class_names.begin(), all.class_names.end(), chosen[i]) - all.class_names.begin();
    new_label[static_cast<size_t>(at)] = static_cast<int64_t>(i);
  }
  std::vector<int64_t> keep;
  const int64_t* labels = all.labels.data<int64_t>();
  for (int64_t i = 0; i < all.size(); ++i)
    if (new_label[static_cast<size_t>(labels[i])] >= 0) keep.push_back(i);
  data::Dataset out = data::subset(all, keep);
  int64_t* out_labels = out.labels.data<int64_t>();
  for (int64_t i = 0; i < out.size(); ++i) out_labels[i] = new_label[static_cast<size_t>(out_labels[i])];
  out.class_names = chosen;
  return out;
}

PreparedData prepare_data(const DataOptions& o, const std::string& run_dir, const std::vector<int64_t>& pack_sizes) {
  PreparedData out;
  sampler_config(o);  // a bad --sampler / --repeat-threshold fails before anything is loaded or written
  const data::Dataset all = restrict_classes(load_data(o, o.data), o.classes);
  KILN_CHECK(all.labelled, "'", o.data, "' has no labels column (a CSV of images to predict, like a test.csv): ",
             "train on a CSV with labels, or name its column with --labels-column");
  const bool separate_test = !o.test_data.empty() || o.data == "fashion-mnist";
  // A pack of a Tiny-ImageNet folder keeps the official split in its file names
  // ("train/...", "val/..."); split_official_val names a pack that has no "val/" images.
  const bool packed = data::is_pack_set(o.data) || std::filesystem::path(o.data).extension() == ".kpack";
  KILN_CHECK(!o.official_val || data::is_tiny_imagenet(o.data) || packed, "--val official: ", o.data,
             " is not a Tiny-ImageNet folder (wnids.txt, train/, val/val_annotations.txt) or a pack of one");
  if (!o.split_file.empty()) {
    out.split = data::load_split(o.split_file);
  } else if (o.official_val) {
    // val/ is held out as given; the test part, if any, comes out of train/ per class.
    out.split = data::split_official_val(all.file_names);
    const bool with_test = !separate_test && (o.split.empty() ? o.test > 0 : data::parse_split_counts(o.split).test_count > 0);
    if (with_test) {
      const data::Dataset train_part = data::subset(all, data::indices_of(all, out.split.train));
      data::SplitSpec spec = o.split.empty() ? data::split_by_ratio(0.0, o.test) : data::parse_split_counts(o.split);
      spec.val_count = 0;  // per-class counts: the val part is the official one
      const data::Split inner = data::make_split(train_part, spec, o.seed);
      out.split.train = inner.train;
      out.split.test = inner.test;
      out.split.mode = "official val, " + spec.describe();
    }
    out.split.seed = o.seed;
    out.split.source = all.source;
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
  if (!pack_sizes.empty()) {
    // The asked sizes of the set, split by the same file names: the same images in the
    // same roles whichever size an epoch reads (the members list the same files, checked
    // by open_pack_set).
    KILN_CHECK(data::is_pack_set(o.data), "prepare_data: '", o.data, "' is not a pack set (.kpacks)");
    const data::PackSetIndex index = data::read_pack_set_index(o.data);
    const std::vector<data::Dataset> members = data::open_pack_set(index);
    for (int64_t size : pack_sizes) {
      const size_t k = static_cast<size_t>(std::find(index.sizes.begin(), index.sizes.end(), size) - index.sizes.begin());
      index.member(size, "--progressive");  // throws naming the size and the sizes the set has
      const data::Dataset member = restrict_classes(members[k], o.classes);
      out.sizes.push_back({size, data::subset(member, data::indices_of(member, out.split.train)),
                           data::subset(member, data::indices_of(member, out.split.val))});
    }
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
