// A multi-label data set made from a single-label image folder: every image is a
// 2x2 mosaic of square tiles cut from source photos of 1 to `max_classes` classes,
// and its label set is the classes present. It stands in for the course task (an
// `ImageID,Labels,Captions` CSV, Labels such as "1 6", captions with commas and
// quotes, a test CSV without labels) with images kiln ships with.
//
// Plan (a pure function of the listing and the spec, so it is testable without pixels):
//   1. Each class's source images are shuffled (seeded) and the first
//      round(n * test_source_fraction) are kept for the test mosaics, the rest for the
//      train mosaics: no source photo appears in both, so test scores are honest.
//   2. A mosaic draws m ~ uniform{1..min(max_classes, 4, K)} distinct classes (one after
//      another, each with probability proportional to its weight among those left:
//      1, or rare_fraction for the rare class); each gets one tile, the 4 - m remaining
//      tiles go to classes drawn among the m; the tile positions are shuffled.
//   3. Each tile takes the next photo from its (split, class) deck, a shuffled list
//      of that class's photos reshuffled when used up, so photos are reused evenly.
//   An imbalanced variant (--rare-class church --rare-fraction 0.1) keeps only that
//   share of the rare class's photos and draws the class with that weight, so it is
//   on about a tenth as many mosaics as the others: a test bed for pos_weight, focal
//   loss and the balanced sampler.
//
// Output folder (written under a temporary name, renamed into place at the end):
//   images/train_00000.png ...     (2*tile) x (2*tile) RGB
//   train.csv        ImageID,Labels,Captions   Labels = class ids, ascending, space-separated
//   test.csv         ImageID,Captions          (no labels: what a submission predicts)
//   test_labels.csv  ImageID,Labels,Captions   the answer key for the test images
//   classes.txt      one class name per line; line i (from 0) names class id i
//   mosaic.json      the spec, the source and the counts
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image_folder.h"

namespace kiln::data {

struct MosaicSpec {
  int64_t train_count = 2000, test_count = 500;  // mosaics to make
  int64_t tile = 48;                             // tile side; images are 2*tile square
  int64_t max_classes = 3;                       // classes per mosaic: 1..max_classes (at most 4)
  double test_source_fraction = 0.25;            // share of each class's photos kept for test mosaics
  std::string rare_class;                        // "" = none; else a class made rare (see above)
  double rare_fraction = 1.0;                    // its share of photos and its draw weight, in (0, 1]
  uint64_t seed = 0;
};

struct MosaicImage {
  std::vector<int64_t> tile_class;   // (4) class of each tile, row-major: top-left, top-right, ...
  std::vector<int64_t> tile_source;  // (4) the listing row each tile is cut from
  std::vector<int64_t> labels;       // the distinct classes, ascending
};

struct MosaicPlan {
  std::vector<MosaicImage> train, test;
  std::vector<int64_t> train_sources, test_sources;  // listing rows each side may draw from, sorted
};

// Throws naming the option: counts < 0, tile < 1, max_classes outside 1..4, a fraction
// outside (0, 1), an unknown rare class, or a class with fewer than 2 photos (it cannot
// feed both sides).
MosaicPlan plan_mosaics(const FileListing& source, const MosaicSpec& spec);

// "a 2x2 mosaic: \"church\" (2 tiles), \"tench\" (1 tile), \"gas pump\" (1 tile)":
// class names with '_' shown as spaces, in the order of their first tile.
std::string mosaic_caption(const MosaicImage& image, const std::vector<std::string>& class_names);

// Decodes the planned photos, renders and writes the folder described above into
// `output` (replacing an earlier mosaic folder there; refusing any other existing
// path). `progress(done, total)` is called as images are written.
void write_mosaic_dataset(const FileListing& source, const MosaicSpec& spec, const std::string& output,
                          const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace kiln::data
