// `kiln compare DATA --split 300/75/75 -o OUT`: the course's comparison protocol in
// one command. Every row is a full `kiln train` run on the same split:
//   cnn5                  the 5-block CNN from scratch
//   resnet18:head         ImageNet ResNet-18, only a new classifier trains (frozen features)
//   resnet18:from:layer3  layer3, layer4 and the classifier train, with per-stage lrs
//   resnet18:all          everything trains, with per-stage lrs
//   mobilenet_v2:head     ImageNet MobileNetV2, only a new classifier trains
//   mobilenet_v2:all      everything trains, with per-stage lrs
// OUT/split.json is written once and every row reads it (--split-file), so all models
// see exactly the same training, validation and test images. Each row leaves its run
// folder OUT/<row>/ (config.json, epochs.csv, checkpoints, test metrics), and after
// every row OUT/comparison.md, .csv and .json and OUT/curves.csv (every row's
// per-epoch log in one long table) are rewritten atomically, so an interrupted
// comparison keeps the rows it finished. At the end OUT/compare.html draws the rows'
// curves overlaid with their metrics (each row also has its own report.html). The
// recipes are in recipe_for() and
// docs/compare.md.
//
// Pretrained weights: --mobilenet-v2 FILE (default: the shared assets' ONNX file when
// it is found) and --resnet18 FILE (ONNX, `kiln import` output or a kiln checkpoint).
// Rows without weights are skipped with a line saying so; they are not trained from
// scratch, which would be a different experiment under the same name.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "engine/memory/allocator.h"
#include "engine/train/progress.h"
#include "report/compare_report.h"
#include "report/comparison.h"
#include "tools/commands.h"
#include "tools/train_run.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

const char* const kDefaultRows = "cnn5,resnet18:head,resnet18:from:layer3,resnet18:all,mobilenet_v2:head,mobilenet_v2:all";
const char* const kSharedMobileNetV2 = "assets/models/mobilenet_v2_imagenet_fp32.onnx";

struct CompareOptions {
  DataOptions data;
  std::string rows = kDefaultRows;
  std::string mobilenet_v2, resnet18;
  int epochs_scratch = 30, epochs_finetune = 10;
  int64_t size_scratch = 96, size_finetune = 224;
  int64_t batch_size = 64;
  std::string device = "auto";
  int workers = 2;
  std::string augment_head = "crop:0.5-1,hflip:0.5";  // the head rows' augmentation ("none": the feature cache)
  std::string out;
  bool quiet = false;
} options;

// The shared assets' MobileNetV2, looked up from the working directory (the checkout,
// or its parent folder holding shared/), or under $KILN_SHARED_ASSETS.
std::string find_shared_mobilenet_v2() {
  std::vector<std::string> roots = {"shared", "../shared"};
  if (const char* env = std::getenv("KILN_SHARED_ASSETS")) roots.insert(roots.begin(), std::string(env) + "/..");
  for (const std::string& root : roots) {
    const std::string path = root + "/" + kSharedMobileNetV2;
    if (std::filesystem::exists(path)) return std::filesystem::path(path).lexically_normal().string();
  }
  return "";
}

struct RowSpec {
  std::string name;      // "resnet18:from:layer3"
  std::string arch;      // "cnn5", "resnet18", "mobilenet_v2"
  std::string finetune;  // "all", "head", "from:layer3" ("" for cnn5)
};

RowSpec parse_row(const std::string& text) {
  RowSpec row{text, text, ""};
  if (text == "cnn5") return row;
  const size_t colon = text.find(':');
  KILN_CHECK(colon != std::string::npos, "--rows: '", text,
             "' is not a row; write cnn5, or ARCH:head, ARCH:all or ARCH:from:STAGE with ARCH resnet18 or mobilenet_v2");
  row.arch = text.substr(0, colon);
  row.finetune = text.substr(colon + 1);
  KILN_CHECK(row.arch == "resnet18" || row.arch == "mobilenet_v2", "--rows: '", text,
             "': the pretrained rows are resnet18 and mobilenet_v2 (the weights come from --resnet18 and --mobilenet-v2)");
  KILN_CHECK(row.finetune == "head" || row.finetune == "all" || row.finetune.rfind("from:", 0) == 0, "--rows: '", text,
             "': after the architecture comes head, all or from:STAGE");
  return row;
}

std::vector<RowSpec> parse_rows(const std::string& text) {
  std::vector<RowSpec> rows;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');)
    if (!item.empty()) rows.push_back(parse_row(item));
  KILN_CHECK(!rows.empty(), "--rows: no rows in '", text, "'");
  return rows;
}

// "resnet18:from:layer3" -> "resnet18-from-layer3": a folder name without colons.
std::string folder_name(const std::string& row) {
  std::string out = row;
  for (char& c : out)
    if (c == ':') c = '-';
  return out;
}

// The training recipe of one row (docs/compare.md explains the choices).
TrainOptions recipe_for(const RowSpec& row, const CompareOptions& o, const std::string& weights) {
  TrainOptions t;
  t.data = o.data;
  t.data.split_file = o.out + "/split.json";
  t.batch_size = o.batch_size;
  t.device = o.device;
  t.workers = o.workers;
  t.quiet = o.quiet;
  t.run_dir = o.out + "/" + folder_name(row.name);
  t.model.arch = row.arch;
  if (row.arch == "cnn5") {
    // From scratch: SGD with Nesterov momentum under a one-cycle schedule (warm up to
    // lr over 30% of the steps, then anneal), and augmentation, since 300 images per
    // class are few for a network that starts from nothing.
    t.data.size = o.size_scratch;
    t.epochs = o.epochs_scratch;
    t.optimizer = "sgd";
    t.lr = 0.05;
    t.momentum = 0.9;
    t.nesterov = true;
    t.weight_decay = 5e-4;
    t.schedule = "onecycle";
    t.augment = "crop:0.35-1,hflip:0.5";
    return t;
  }
  t.data.size = o.size_finetune;
  t.epochs = o.epochs_finetune;
  t.model.pretrained = weights;
  t.model.finetune = row.finetune;
  t.optimizer = "adamw";
  t.weight_decay = 1e-4;
  t.schedule = "cosine";
  t.augment = "crop:0.5-1,hflip:0.5";
  if (row.finetune == "head") {
    // Feature extraction: the pretrained network is a fixed function (batch norm
    // included), only the new classifier learns, at AdamW's usual 1e-3. Without
    // augmentation (--augment-head none) its features are computed once and cached
    // (engine/train/feature_cache.h).
    t.lr = 1e-3;
    t.model.freeze_bn = true;
    t.augment = o.augment_head == "none" ? "" : o.augment_head;
  } else {
    // Fine-tuning: a lower lr for the head, and each stage before it learns at
    // stage_lr_decay times the lr of the next, so the early, generic filters move
    // least. The decay is chosen so the first stage learns at ~1/64 (ResNet-18: 7
    // stages, 0.5^6) or ~1/70 (MobileNetV2: 20 stages, 0.8^19) of the head's lr.
    t.lr = 5e-4;
    t.stage_lr_decay = row.arch == "resnet18" ? 0.5 : 0.8;
  }
  return t;
}

std::string describe_recipe(const TrainOptions& t) {
  std::ostringstream out;
  out << t.optimizer;
  if (t.optimizer == "sgd") out << " (momentum " << t.momentum << (t.nesterov ? ", nesterov" : "") << ")";
  out << " lr " << t.lr << ", " << t.schedule << ", weight decay " << t.weight_decay;
  if (t.stage_lr_decay < 1.0) out << ", stage lr decay " << t.stage_lr_decay;
  if (t.model.freeze_bn) out << ", frozen batch norm";
  out << ", augment " << (t.augment.empty() ? "none" : t.augment) << ", batch " << t.batch_size << ", " << t.epochs
      << (t.epochs == 1 ? " epoch" : " epochs") << " at " << t.data.size << " px";
  if (!t.model.pretrained.empty()) out << ", weights " << t.model.pretrained;
  return out.str();
}

// Every row's epoch log in one long table, for plotting the learning curves together.
void write_curves(const std::string& path, const std::vector<std::pair<std::string, TrainOutcome>>& runs) {
  write_file_atomically(path, [&](std::ostream& out) {
    out << "model,epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,val_f1,seconds,images_per_second,"
           "peak_memory_mb\n";
    for (const auto& [name, run] : runs)
      for (const train::EpochStats& s : run.epochs)
        out << report::csv_escape(name) << ',' << s.epoch << ',' << s.lr << ',' << s.train_loss << ','
            << s.train_accuracy << ',' << s.val_loss << ',' << s.val_accuracy << ',' << s.val_f1 << ',' << s.seconds
            << ',' << s.images_per_second << ',' << s.peak_memory_mb << '\n';
  });
}

int run_compare() {
  CompareOptions& o = options;
  const std::vector<RowSpec> rows = parse_rows(o.rows);
  if (o.mobilenet_v2.empty()) o.mobilenet_v2 = find_shared_mobilenet_v2();
  auto weights_of = [&](const RowSpec& row) { return row.arch == "resnet18" ? o.resnet18 : o.mobilenet_v2; };
  const std::string device = resolve_device(o.device).to_string();

  report::Comparison comparison;
  comparison.data = o.data.data;
  comparison.device = device;
  comparison.split = (o.data.split_file.empty() ? (o.data.split.empty() ? "val " + std::to_string(o.data.val) + ", test " +
                                                                               std::to_string(o.data.test) + " per class"
                                                                         : o.data.split + " per class")
                                                : "from " + o.data.split_file) +
                     ", seed " + std::to_string(o.data.seed) + " (" + o.out + "/split.json)";
  std::vector<TrainOptions> recipes;
  bool skipped_resnet18 = false, skipped_mobilenet_v2 = false;
  for (const RowSpec& row : rows) {
    report::ComparisonRow r;
    r.name = row.name;
    const TrainOptions recipe = recipe_for(row, o, weights_of(row));
    r.recipe = describe_recipe(recipe);
    if (row.arch != "cnn5" && weights_of(row).empty()) {
      const bool resnet = row.arch == "resnet18";
      (resnet ? skipped_resnet18 : skipped_mobilenet_v2) = true;
      r.status = resnet ? "skipped: no --resnet18 ONNX given (the shared assets hold no ImageNet ResNet-18 weights)"
                        : "skipped: no --mobilenet-v2 ONNX given, and shared/" + std::string(kSharedMobileNetV2) +
                              " was not found";
    } else {
      KILN_CHECK(row.arch == "cnn5" || std::filesystem::exists(weights_of(row)), "--",
                 row.arch == "resnet18" ? "resnet18" : "mobilenet-v2", " ", weights_of(row), ": no such file");
      r.status = "not run yet";
      r.run_dir = recipe.run_dir;
      r.epochs = recipe.epochs;
      r.image_size = recipe.data.size;
    }
    comparison.rows.push_back(r);
    recipes.push_back(recipe);
  }
  if (skipped_resnet18) std::printf("resnet18 rows skipped: no --resnet18 ONNX given\n");
  if (skipped_mobilenet_v2) std::printf("mobilenet_v2 rows skipped: no --mobilenet-v2 ONNX given and none in shared/\n");

  // One split for every row, made once from the file names (any size will do: the
  // split depends on the names and the seed only).
  std::filesystem::create_directories(o.out);
  if (o.data.split_file.empty()) {
    DataOptions split_options = o.data;
    split_options.size = recipes.front().data.size;
    prepare_data(split_options, o.out);
  } else {
    std::filesystem::copy_file(o.data.split_file, o.out + "/split.json",
                               std::filesystem::copy_options::overwrite_existing);
  }
  comparison.write(o.out);

  std::vector<std::pair<std::string, TrainOutcome>> runs;
  const size_t total = rows.size();
  for (size_t i = 0; i < total; ++i) {
    report::ComparisonRow& r = comparison.rows[i];
    if (r.status != "not run yet") {
      std::printf("[%zu/%zu] %s: %s\n", i + 1, total, r.name.c_str(), r.status.c_str());
      continue;
    }
    std::printf("[%zu/%zu] %s: %s -> %s\n", i + 1, total, r.name.c_str(), r.recipe.c_str(), r.run_dir.c_str());
    std::fflush(stdout);
    const TrainOutcome run = train_and_evaluate(recipes[i], /*print_test_table=*/false);
    // The next row is another model at another size: hand this row's cached blocks back.
    cpu_allocator().release_cache();
    allocator_for(Device::parse(run.device)).release_cache();
    r.status = "ok";
    r.training_seconds = run.training_seconds;
    r.images_per_second = run.images_per_second;
    r.peak_memory_mb = run.peak_memory_mb;
    r.parameters = run.parameters;
    r.trainable_parameters = run.trainable_parameters;
    r.test_accuracy = run.test.accuracy;
    r.macro_precision = run.test.macro.precision;
    r.macro_recall = run.test.macro.recall;
    r.macro_f1 = run.test.macro.f1;
    std::printf("[%zu/%zu] %s done: test accuracy %.2f%%, macro F1 %.4f, %s, %.0f img/s, %.0f MiB\n", i + 1, total,
                r.name.c_str(), 100.0 * r.test_accuracy, r.macro_f1, format_duration(r.training_seconds).c_str(),
                r.images_per_second, r.peak_memory_mb);
    runs.emplace_back(r.name, run);
    comparison.write(o.out);
    write_curves(o.out + "/curves.csv", runs);
  }
  // compare.html: the finished rows' curves overlaid and their metrics side by side
  // (each row's own report.html is in its run folder).
  std::vector<report::RunRecord> records;
  for (const report::ComparisonRow& r : comparison.rows)
    if (r.status == "ok") records.push_back(report::read_run_folder(r.run_dir));
  if (!records.empty()) report::write_compare_report(o.out + "/compare.html", records);
  std::printf("\n%s\nwrote %s/comparison.md, comparison.csv, comparison.json, curves.csv%s\n",
              comparison.to_table().c_str(), o.out.c_str(), records.empty() ? "" : " and compare.html");
  return 0;
}

const bool registered = register_command({
    "compare",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand(
          "compare", "the course protocol: cnn5, ResNet-18 and MobileNetV2 rows on one split, as one comparison table");
      CompareOptions& o = options;
      o.data.split = "300/75/75";
      cmd->add_option("data", o.data.data, "image folder, CSV or .kpack")->required();
      cmd->add_option("--split", o.data.split, "per-class counts train/val/test")->capture_default_str();
      cmd->add_option("--split-file", o.data.split_file, "reuse the split.json of an earlier run or comparison");
      cmd->add_option("--seed", o.data.seed, "seed of the split and of every run")->capture_default_str();
      cmd->add_option("--fit", o.data.fit, "crop or pad, to fit images to the input size")->capture_default_str();
      cmd->add_option("--cache-dir", o.data.cache_dir, "where folders are packed once per size")->capture_default_str();
      cmd->add_flag("--skip-bad", o.data.skip_bad, "leave unreadable images out, with a warning");
      cmd->add_option("--rows", o.rows, "comma-separated: cnn5, resnet18:head|all|from:STAGE, mobilenet_v2:...")
          ->capture_default_str();
      cmd->add_option("--mobilenet-v2", o.mobilenet_v2,
                      "ImageNet MobileNetV2 weights (default: shared/" + std::string(kSharedMobileNetV2) + " if found)");
      cmd->add_option("--resnet18", o.resnet18, "ImageNet ResNet-18 weights: ONNX, kiln import or kiln checkpoint");
      cmd->add_option("--epochs-scratch", o.epochs_scratch, "epochs of the cnn5 row")->capture_default_str();
      cmd->add_option("--epochs-finetune", o.epochs_finetune, "epochs of the pretrained rows")->capture_default_str();
      cmd->add_option("--size-scratch", o.size_scratch, "input size of the cnn5 row")->capture_default_str();
      cmd->add_option("--size-finetune", o.size_finetune, "input size of the pretrained rows")->capture_default_str();
      cmd->add_option("--batch-size", o.batch_size, "images per step, every row")->capture_default_str()->check(CLI::PositiveNumber);
      cmd->add_option("--device", o.device, "auto, cpu or cuda:N")->capture_default_str();
      cmd->add_option("--workers", o.workers, "loader threads")->capture_default_str();
      cmd->add_option("--augment-head", o.augment_head,
                      "augmentation of the :head rows; none: their frozen features are computed once and cached")
          ->capture_default_str();
      cmd->add_option("-o,--out", o.out, "the comparison folder")->required();
      cmd->add_flag("--quiet", o.quiet, "no progress bars");
    },
    run_compare,
});

}  // namespace
}  // namespace kiln::tools
