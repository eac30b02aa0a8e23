// `kiln pack DATA -o data.kpack --size 256 [--fit crop|pad] [--channels 3] [--skip-bad]`:
// decodes an image folder, CSV or Tiny-ImageNet folder once, brings every image to
// size x size and writes the pixels, labels, class names and file names into one
// memory-mappable file (data/pack.h). Training then reads the pack instead of decoding
// JPEGs every epoch.
//
// `kiln pack DATA -o data.kpacks --size 32,48,64`: the same images decoded once and
// fitted to every size from the decoded original, written as data.32.kpack,
// data.48.kpack, data.64.kpack and the index data.kpacks (data/pack_set.h), so that a
// progressive run (`kiln train data.kpacks --progressive 32:0,48:15,64:30`) reads each
// epoch's size from its pack and resizes nothing on the fly.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "data/image_folder.h"
#include "data/loader.h"
#include "data/pack.h"
#include "data/pack_set.h"
#include "tools/commands.h"

namespace kiln::tools {
namespace {

struct PackOptions {
  std::string data;
  std::string output;
  std::string sizes = "224";
  std::string fit = "crop";
  int64_t channels = 3;
  bool skip_bad = false;
} options;

int run_pack() {
  const std::vector<int64_t> sizes = data::parse_pack_sizes(options.sizes, "--size");
  const bool set = data::is_pack_set(options.output);
  KILN_CHECK(set || sizes.size() == 1, "-o ", options.output, ": --size ", options.sizes, " writes one pack per ",
             "size, so the output must be a pack set index ending in .kpacks (e.g. -o ",
             std::filesystem::path(options.output).replace_extension(".kpacks").string(), ")");
  KILN_CHECK(set || std::filesystem::path(options.output).extension() == ".kpack", "-o ", options.output,
             ": a pack ends in .kpack (one size) or .kpacks (a set of sizes)");
  data::LoadConfig config;
  config.fit = data::parse_fit(options.fit);
  config.channels = options.channels;
  config.skip_bad = options.skip_bad;
  const auto start = std::chrono::steady_clock::now();
  const data::FileListing listing = data::list_images(options.data, config.skip_bad, config.csv);
  const std::vector<data::Dataset> datasets =
      data::load_listing_at_sizes(listing, config, sizes, str("decoding ", listing.paths.size(), " images"));
  std::vector<std::string> written;
  if (set) {
    data::write_pack_set(options.output, sizes, datasets, options.fit);
    for (int64_t size : sizes) written.push_back(data::pack_set_member_path(options.output, size));
  } else {
    data::write_pack(options.output, datasets.front());
    written.push_back(options.output);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const data::Dataset& dataset = datasets.front();
  std::printf("packed %lld images of %lld classes from %s into %s (decoded once)\n",
              static_cast<long long>(dataset.size()), static_cast<long long>(dataset.num_classes()),
              options.data.c_str(), options.output.c_str());
  for (size_t k = 0; k < sizes.size(); ++k)
    std::printf("  %s: %lld x %lld x %lld u8 (%s), %.1f MB\n", written[k].c_str(),
                static_cast<long long>(options.channels), static_cast<long long>(sizes[k]),
                static_cast<long long>(sizes[k]), options.fit.c_str(),
                static_cast<double>(std::filesystem::file_size(written[k])) / 1e6);
  std::printf("  %.1f s (%.0f images/s)\n", seconds, static_cast<double>(dataset.size()) / seconds);
  if (dataset.skipped) std::printf("  skipped %lld unreadable files\n", static_cast<long long>(dataset.skipped));
  // How fast training can read it back: one epoch through the batch loader (the largest size).
  const data::LoaderThroughput throughput = data::measure_loader_throughput(data::open_pack(written.back()), {});
  std::printf("  loader: %.0f images/s from %s (batch 64, 2 workers)\n", throughput.images_per_second,
              written.back().c_str());
  return 0;
}

const bool registered = register_command({
    "pack",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand(
          "pack", "decode an image folder, CSV or Tiny-ImageNet folder once into a memory-mappable .kpack "
                  "(or, for several sizes, a .kpacks set: one pack per size)");
      cmd->add_option("data", options.data,
                      "image folder (one sub-folder per class), CSV of image,label rows, or Tiny-ImageNet folder")
          ->required();
      cmd->add_option("-o,--output", options.output,
                      "the .kpack to write; with several sizes the .kpacks index (NAME.kpacks: the packs are "
                      "NAME.SIZE.kpack next to it)")
          ->required();
      cmd->add_option("--size", options.sizes,
                      "output height = width in pixels; a list (32,48,64, ascending) writes one pack per size, "
                      "each fitted from the decoded original")
          ->capture_default_str();
      cmd->add_option("--fit", options.fit, "crop: shorter side to size, centre crop; pad: longer side, letterbox")
          ->check(CLI::IsMember({"crop", "pad"}));
      cmd->add_option("--channels", options.channels, "3 (RGB) or 1 (grey)")->check(CLI::IsMember({1, 3}));
      cmd->add_flag("--skip-bad", options.skip_bad, "leave unreadable images out with a warning instead of failing");
    },
    run_pack,
});

}  // namespace
}  // namespace kiln::tools
