// `kiln augment-preview DATA --augment SPEC -o grid.png`: a picture of what an
// augmentation spec does. Row r shows image r of the folder: first its eval
// transform, then (cols - 1) augmented copies, each with its own seed. With
// mixup/cutmix in the spec, each column's images are mixed with each other.
// Runs the CPU reference, so what you see is what the tests check.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "engine/augment/augment.h"
#include "engine/ops/shape_ops.h"
#include "engine/tensor/factory.h"
#include "tools/commands.h"
#include "weights/atomic_file.h"

namespace kiln::tools {
namespace {

struct PreviewOptions {
  std::string data_dir;
  std::string augment = "crop:0.08-1,hflip:0.5,brightness:0.2,contrast:0.2,saturation:0.2,hue:0.05";
  std::string output = "augment_preview.png";
  int rows = 4, cols = 8, size = 96;
  uint64_t seed = 0;
} options;

// ImageNet statistics: the preview undoes them, so erased areas show as mean gray.
const std::vector<double> kMean = {0.485, 0.456, 0.406}, kStd = {0.229, 0.224, 0.225};

// Image files under `folder` (recursively), sorted so that the preview is stable.
std::vector<std::string> list_images(const std::string& folder) {
  namespace fs = std::filesystem;
  KILN_CHECK(fs::is_directory(folder), "augment-preview: '", folder, "' is not a folder");
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (entry.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp"))
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  KILN_CHECK(!files.empty(), "augment-preview: no .jpg/.jpeg/.png/.bmp images under '", folder, "'");
  return files;
}

// Decodes one file to u8 (1, 3, H, W); stb gives interleaved RGB (H, W, 3).
Tensor load_rgb(const std::string& path) {
  int width = 0, height = 0, channels = 0;
  unsigned char* pixels = stbi_load(path.c_str(), &width, &height, &channels, 3);
  KILN_CHECK(pixels != nullptr, "augment-preview: cannot decode '", path, "': ", stbi_failure_reason());
  Tensor image = empty({1, 3, height, width}, {DType::u8});
  uint8_t* dst = image.data<uint8_t>();
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) dst[c * plane + i] = pixels[i * 3 + c];
  stbi_image_free(pixels);
  return image;
}

int run_augment_preview() {
  const augment::AugmentSpec spec = augment::parse_augment_spec(options.augment);
  const std::vector<std::string> files = list_images(options.data_dir);
  const int rows = options.rows, cols = options.cols, S = options.size, gap = 2;
  augment::AugmentParams params;
  params.out_size = S;
  params.mean = kMean;
  params.std = kStd;

  // Spread the rows over the sorted list, so that a class-per-folder data set
  // shows several classes.
  std::vector<Tensor> images;
  for (int r = 0; r < rows; ++r) images.push_back(load_rgb(files[static_cast<size_t>(r) * files.size() / rows]));

  const int grid_w = cols * S + (cols + 1) * gap, grid_h = rows * S + (rows + 1) * gap;
  std::vector<uint8_t> grid(static_cast<size_t>(grid_w) * grid_h * 3, 255);
  for (int col = 0; col < cols; ++col) {
    std::vector<Tensor> outputs;
    for (int r = 0; r < rows; ++r) {
      const uint64_t seed = options.seed + static_cast<uint64_t>(col) * 1000 + static_cast<uint64_t>(r);
      outputs.push_back(col == 0 ? augment::eval_transform(images[r], params)
                                 : augment::augment_batch(images[r], spec, params, seed));
    }
    Tensor column = concat(outputs, 0);  // (rows, 3, S, S)
    if (col > 0 && spec.mix.enabled()) {
      std::vector<double> row_labels(static_cast<size_t>(rows));
      for (int r = 0; r < rows; ++r) row_labels[r] = r;
      column = augment::mix_batch(column, from_vector(row_labels, {rows}, {DType::i64}), rows, spec.mix,
                                  options.seed + static_cast<uint64_t>(col)).images;
    }
    const std::vector<double> values = column.to_vector();
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < S; ++y)
          for (int x = 0; x < S; ++x) {
            const double normalized = values[((static_cast<size_t>(r) * 3 + c) * S + y) * S + x];
            const double pixel = (normalized * kStd[c] + kMean[c]) * 255.0;  // undo the normalization
            const int gx = gap + col * (S + gap) + x, gy = gap + r * (S + gap) + y;
            grid[(static_cast<size_t>(gy) * grid_w + gx) * 3 + c] =
                static_cast<uint8_t>(std::clamp(std::lround(pixel), 0L, 255L));
          }
  }
  write_file_atomically(options.output, [&](std::ostream& out) {
    auto write = [](void* context, void* data, int size) {
      static_cast<std::ostream*>(context)->write(static_cast<const char*>(data), size);
    };
    KILN_CHECK(stbi_write_png_to_func(write, &out, grid_w, grid_h, 3, grid.data(), grid_w * 3) != 0,
               "augment-preview: PNG encoding failed for '", options.output, "'");
  });
  std::printf("wrote %s: %d x %d images of %dx%d, augment '%s' (column 1: eval transform)\n", options.output.c_str(),
              rows, cols, S, S, augment::augment_spec_to_string(spec).c_str());
  return 0;
}

const bool registered = register_command({
    "augment-preview",
    [](CLI::App& app) {
      CLI::App* cmd = app.add_subcommand("augment-preview", "write a PNG grid of augmented images from a folder");
      cmd->add_option("data", options.data_dir, "folder of images (searched recursively)")->required();
      cmd->add_option("--augment", options.augment,
                      "augmentation spec, e.g. crop:0.08-1,hflip:0.5,rotate:15,erase:0.25 (names: " +
                          [] {
                            std::string names;
                            for (const std::string& n : augment::augment_names()) names += (names.empty() ? "" : " ") + n;
                            return names;
                          }() + ")");
      cmd->add_option("-o,--output", options.output, "PNG file to write");
      cmd->add_option("--rows", options.rows, "images (one per row)")->check(CLI::PositiveNumber);
      cmd->add_option("--cols", options.cols, "columns: the eval transform, then augmented copies")->check(CLI::PositiveNumber);
      cmd->add_option("--size", options.size, "output size S in pixels")->check(CLI::PositiveNumber);
      cmd->add_option("--seed", options.seed, "base seed of the draws");
    },
    run_augment_preview,
});

}  // namespace
}  // namespace kiln::tools
