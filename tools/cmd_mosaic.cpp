// `kiln make-mosaic [SOURCE] -o OUT [--train 2000] [--test 500] [--tile 48]
//                   [--max-classes 3] [--rare-class C --rare-fraction 0.1] [--seed 0]`:
// builds a multi-label data set from a single-label image folder (data/mosaic.h):
// 2x2 mosaics of tiles from 1 to 3 classes, label set = the classes present, written
// as the course's `ImageID,Labels,Captions` CSVs plus classes.txt. Train and test
// mosaics are cut from disjoint source photos.
#include <cstdio>

#include "data/mosaic.h"
#include "engine/train/progress.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

struct MosaicOptions {
  std::string source = "../shared/assets/data/imagenette_96";
  std::string output;
  data::MosaicSpec spec;
} options;

int run_make_mosaic() {
  const data::FileListing source = data::list_image_folder(options.source);
  std::printf("make-mosaic: %zu photos of %zu classes from %s\n", source.paths.size(), source.class_names.size(),
              options.source.c_str());
  std::fflush(stdout);  // before the bar, which draws on stderr
  ProgressBar bar("mosaics", options.spec.train_count + options.spec.test_count);
  data::write_mosaic_dataset(source, options.spec, options.output, [&](int64_t done, int64_t total) {
    if (done % 64 == 0 || done == total) bar.update(done);
  });
  bar.finish();
  const int64_t side = 2 * options.spec.tile;
  std::printf("wrote %lld train and %lld test mosaics (%lldx%lld, 1-%lld classes each) into %s\n",
              static_cast<long long>(options.spec.train_count), static_cast<long long>(options.spec.test_count),
              static_cast<long long>(side), static_cast<long long>(side),
              static_cast<long long>(options.spec.max_classes), options.output.c_str());
  std::printf("  train.csv (ImageID,Labels,Captions), test.csv (ImageID,Captions), test_labels.csv, classes.txt\n");
  return 0;
}

const bool registered = register_command({
    "make-mosaic",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand(
          "make-mosaic", "build a multi-label CSV data set of 2x2 mosaics from a single-label image folder");
      cmd->add_option("source", options.source, "image folder, one sub-folder per class")->capture_default_str();
      cmd->add_option("-o,--output", options.output, "the folder to write (replaced if it is an earlier mosaic set)")
          ->required();
      cmd->add_option("--train", options.spec.train_count, "train mosaics")->capture_default_str()->check(CLI::NonNegativeNumber);
      cmd->add_option("--test", options.spec.test_count, "test mosaics")->capture_default_str()->check(CLI::NonNegativeNumber);
      cmd->add_option("--tile", options.spec.tile, "tile side in pixels (images are 2*tile square)")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
      cmd->add_option("--max-classes", options.spec.max_classes, "at most this many classes per mosaic (1-4)")
          ->capture_default_str()
          ->check(CLI::Range(1, 4));
      cmd->add_option("--test-source-fraction", options.spec.test_source_fraction,
                      "share of each class's photos kept for the test mosaics")
          ->capture_default_str();
      cmd->add_option("--rare-class", options.spec.rare_class,
                      "make this class rare: keep --rare-fraction of its photos and draw it with that weight");
      cmd->add_option("--rare-fraction", options.spec.rare_fraction, "the rare class's share (with --rare-class)")
          ->capture_default_str();
      cmd->add_option("--seed", options.spec.seed, "seed of the plan (same seed, same files)")->capture_default_str();
    },
    run_make_mosaic,
});

}  // namespace
}  // namespace kiln::tools
