#include "data/mosaic.h"

#include <nlohmann/json.hpp>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/csv.h"
#include "engine/core/check.h"
#include "engine/core/rng.h"

namespace kiln::data {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kTiles = 4;  // a 2x2 grid

void shuffle(std::vector<int64_t>& items, Rng& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.next_u64() % i]);
}

// A class's photos on one side, dealt in shuffled rounds: every photo once before any twice.
struct Deck {
  std::vector<int64_t> cards;
  size_t next = 0;
  int64_t draw(Rng& rng) {
    if (next == cards.size()) next = 0;
    if (next == 0) shuffle(cards, rng);
    return cards[next++];
  }
};

// `distinct` classes without replacement, each pick proportional to the weights of those left.
std::vector<int64_t> draw_classes(const std::vector<double>& weights, int64_t distinct, Rng& rng) {
  std::vector<int64_t> left(weights.size()), chosen;
  for (size_t k = 0; k < left.size(); ++k) left[k] = static_cast<int64_t>(k);
  while (static_cast<int64_t>(chosen.size()) < distinct) {
    double total = 0;
    for (int64_t k : left) total += weights[static_cast<size_t>(k)];
    double u = rng.uniform() * total;
    size_t pick = 0;
    while (pick + 1 < left.size() && u >= weights[static_cast<size_t>(left[pick])]) u -= weights[static_cast<size_t>(left[pick++])];
    chosen.push_back(left[pick]);
    left.erase(left.begin() + static_cast<std::ptrdiff_t>(pick));
  }
  return chosen;
}

std::vector<MosaicImage> plan_side(int64_t count, const std::vector<double>& weights, int64_t max_classes,
                                   std::vector<Deck>& decks, Rng& rng) {
  std::vector<MosaicImage> images(static_cast<size_t>(count));
  for (MosaicImage& image : images) {
    const int64_t distinct = 1 + static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(max_classes));
    const std::vector<int64_t> classes = draw_classes(weights, distinct, rng);
    image.tile_class = classes;  // each chosen class gets a tile
    while (static_cast<int64_t>(image.tile_class.size()) < kTiles)
      image.tile_class.push_back(classes[rng.next_u64() % static_cast<uint64_t>(distinct)]);
    shuffle(image.tile_class, rng);  // positions
    for (int64_t k : image.tile_class) image.tile_source.push_back(decks[static_cast<size_t>(k)].draw(rng));
    image.labels.assign(classes.begin(), classes.begin() + distinct);
    std::sort(image.labels.begin(), image.labels.end());
  }
  return images;
}

std::string label_text(const MosaicImage& image) {
  std::string out;
  for (int64_t k : image.labels) out += (out.empty() ? "" : " ") + std::to_string(k);
  return out;
}

}  // namespace

MosaicPlan plan_mosaics(const FileListing& source, const MosaicSpec& spec) {
  KILN_CHECK(spec.train_count >= 0 && spec.test_count >= 0, "make-mosaic: --train and --test must be >= 0, got ",
             spec.train_count, " and ", spec.test_count);
  KILN_CHECK(spec.tile >= 1, "make-mosaic: --tile must be at least 1 pixel, got ", spec.tile);
  KILN_CHECK(spec.max_classes >= 1 && spec.max_classes <= kTiles, "make-mosaic: --max-classes must be 1 to ", kTiles,
             " (a 2x2 mosaic has 4 tiles), got ", spec.max_classes);
  KILN_CHECK(spec.test_source_fraction > 0 && spec.test_source_fraction < 1,
             "make-mosaic: --test-source-fraction must be between 0 and 1, got ", spec.test_source_fraction);
  KILN_CHECK(!source.multi_label, "make-mosaic: the source '", source.source,
             "' is multi-label; it needs one class per photo (an image folder)");
  const int64_t num_classes = static_cast<int64_t>(source.class_names.size());
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < source.labels.size(); ++i)
    by_class[static_cast<size_t>(source.labels[i].front())].push_back(static_cast<int64_t>(i));

  KILN_CHECK(spec.rare_fraction == 1.0 || !spec.rare_class.empty(), "make-mosaic: --rare-fraction ",
             spec.rare_fraction, " needs --rare-class (which class to make rare)");
  std::vector<double> weights(static_cast<size_t>(num_classes), 1.0);
  int64_t rare = -1;
  if (!spec.rare_class.empty()) {
    const auto found = std::find(source.class_names.begin(), source.class_names.end(), spec.rare_class);
    KILN_CHECK(found != source.class_names.end(), "make-mosaic: --rare-class '", spec.rare_class, "' is not a class of '",
               source.source, "'");
    KILN_CHECK(spec.rare_fraction > 0 && spec.rare_fraction <= 1, "make-mosaic: --rare-fraction must be in (0, 1], got ",
               spec.rare_fraction);
    rare = found - source.class_names.begin();
    weights[static_cast<size_t>(rare)] = spec.rare_fraction;
  }
  Rng rng(splitmix64(spec.seed));
  MosaicPlan plan;
  std::vector<Deck> train_decks(by_class.size()), test_decks(by_class.size());
  for (size_t k = 0; k < by_class.size(); ++k) {
    std::vector<int64_t>& rows = by_class[k];
    const int64_t n = static_cast<int64_t>(rows.size());
    KILN_CHECK(n >= 2, "make-mosaic: class '", source.class_names[k], "' of '", source.source, "' has ", n,
               " photo(s); it needs at least 2 (one for train mosaics, one for test mosaics)");
    shuffle(rows, rng);
    if (static_cast<int64_t>(k) == rare)  // keep only rare_fraction of its photos
      rows.resize(static_cast<size_t>(std::max<int64_t>(2, std::llround(static_cast<double>(n) * spec.rare_fraction))));
    const int64_t kept = static_cast<int64_t>(rows.size());
    const int64_t to_test =
        std::clamp<int64_t>(std::llround(static_cast<double>(kept) * spec.test_source_fraction), 1, kept - 1);
    test_decks[k].cards.assign(rows.begin(), rows.begin() + to_test);
    train_decks[k].cards.assign(rows.begin() + to_test, rows.end());
    plan.test_sources.insert(plan.test_sources.end(), rows.begin(), rows.begin() + to_test);
    plan.train_sources.insert(plan.train_sources.end(), rows.begin() + to_test, rows.end());
  }
  std::sort(plan.train_sources.begin(), plan.train_sources.end());
  std::sort(plan.test_sources.begin(), plan.test_sources.end());
  const int64_t max_classes = std::min(spec.max_classes, num_classes);
  plan.train = plan_side(spec.train_count, weights, max_classes, train_decks, rng);
  plan.test = plan_side(spec.test_count, weights, max_classes, test_decks, rng);
  return plan;
}

std::string mosaic_caption(const MosaicImage& image, const std::vector<std::string>& class_names) {
  std::vector<int64_t> order;  // classes in the order of their first tile
  std::map<int64_t, int64_t> tiles;
  for (int64_t k : image.tile_class) {
    if (tiles[k]++ == 0) order.push_back(k);
  }
  std::string out = "a 2x2 mosaic: ";
  for (size_t i = 0; i < order.size(); ++i) {
    std::string name = class_names[static_cast<size_t>(order[i])];
    std::replace(name.begin(), name.end(), '_', ' ');
    const int64_t count = tiles[order[i]];
    out += (i ? ", \"" : "\"") + name + "\" (" + std::to_string(count) + (count == 1 ? " tile)" : " tiles)");
  }
  return out;
}

void write_mosaic_dataset(const FileListing& source, const MosaicSpec& spec, const std::string& output,
                          const std::function<void(int64_t, int64_t)>& progress) {
  const fs::path out(output);
  KILN_CHECK(!fs::exists(out) || fs::exists(out / "mosaic.json"), "make-mosaic: '", output,
             "' exists and is not a mosaic folder (no mosaic.json); give a new folder or remove it");
  const MosaicPlan plan = plan_mosaics(source, spec);

  // Decode every photo a tile uses, once, fitted to tile x tile (planar C, H, W).
  std::set<int64_t> used;
  for (const auto* side : {&plan.train, &plan.test})
    for (const MosaicImage& image : *side) used.insert(image.tile_source.begin(), image.tile_source.end());
  const std::vector<int64_t> rows(used.begin(), used.end());
  const int64_t t = spec.tile, tile_bytes = 3 * t * t;
  std::vector<uint8_t> tiles(rows.size() * static_cast<size_t>(tile_bytes));
  std::vector<std::string> errors(rows.size());
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t i = 0; i < static_cast<int64_t>(rows.size()); ++i) {
    try {  // exceptions must not leave an OpenMP region
      fit_image(decode_image(source.paths[static_cast<size_t>(rows[static_cast<size_t>(i)])], 3), t, Fit::crop,
                tiles.data() + i * tile_bytes);
    } catch (const Error& e) {
      errors[static_cast<size_t>(i)] = e.message();
    }
  }
  for (const std::string& error : errors) KILN_CHECK(error.empty(), "make-mosaic: ", error);
  std::map<int64_t, const uint8_t*> tile_of;
  for (size_t i = 0; i < rows.size(); ++i) tile_of[rows[i]] = tiles.data() + i * static_cast<size_t>(tile_bytes);

  // Everything goes into a sibling temporary folder that replaces `output` at the end.
  const fs::path staging = out.string() + ".partial." + std::to_string(::getpid());
  fs::remove_all(staging);
  fs::create_directories(staging / "images");
  try {
    const int64_t side = 2 * t, total = spec.train_count + spec.test_count;
    std::vector<uint8_t> rgb(static_cast<size_t>(side * side * 3));
    int64_t done = 0;
    auto write_side = [&](const std::vector<MosaicImage>& images, const std::string& prefix,
                          std::vector<std::vector<std::string>>& rows_out) {
      for (size_t i = 0; i < images.size(); ++i) {
        const MosaicImage& image = images[i];
        for (int64_t tile = 0; tile < kTiles; ++tile) {
          const uint8_t* planar = tile_of.at(image.tile_source[static_cast<size_t>(tile)]);
          const int64_t y0 = (tile / 2) * t, x0 = (tile % 2) * t;
          for (int64_t c = 0; c < 3; ++c)
            for (int64_t y = 0; y < t; ++y)
              for (int64_t x = 0; x < t; ++x)
                rgb[static_cast<size_t>(((y0 + y) * side + x0 + x) * 3 + c)] = planar[(c * t + y) * t + x];
        }
        char name[64];
        std::snprintf(name, sizeof(name), "images/%s_%05zu.png", prefix.c_str(), i);
        const std::string path = (staging / name).string();
        KILN_CHECK(stbi_write_png(path.c_str(), static_cast<int>(side), static_cast<int>(side), 3, rgb.data(),
                                  static_cast<int>(side * 3)),
                   "make-mosaic: cannot write '", path, "'");
        rows_out.push_back({name, label_text(image), mosaic_caption(image, source.class_names)});
        if (progress) progress(++done, total);
      }
    };
    std::vector<std::vector<std::string>> train_rows, test_rows;
    write_side(plan.train, "train", train_rows);
    write_side(plan.test, "test", test_rows);

    auto write_text = [&](const std::string& file, const std::string& text) {
      std::ofstream stream(staging / file, std::ios::binary);
      stream << text;
      KILN_CHECK(stream.good(), "make-mosaic: cannot write '", (staging / file).string(), "'");
    };
    auto csv = [](const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows_in,
                  bool with_labels) {
      std::string text = csv_row(header) + "\r\n";  // CRLF, as RFC 4180 (and Python's csv module) write
      for (const auto& row : rows_in)
        text += csv_row(with_labels ? row : std::vector<std::string>{row[0], row[2]}) + "\r\n";
      return text;
    };
    write_text("train.csv", csv({"ImageID", "Labels", "Captions"}, train_rows, true));
    write_text("test.csv", csv({"ImageID", "Captions"}, test_rows, false));
    write_text("test_labels.csv", csv({"ImageID", "Labels", "Captions"}, test_rows, true));
    std::string classes;
    for (const std::string& name : source.class_names) classes += name + "\n";
    write_text("classes.txt", classes);
    const nlohmann::json meta = {{"source", source.source},
                                 {"seed", spec.seed},
                                 {"tile", spec.tile},
                                 {"max_classes", spec.max_classes},
                                 {"test_source_fraction", spec.test_source_fraction},
                                 {"rare_class", spec.rare_class},
                                 {"rare_fraction", spec.rare_fraction},
                                 {"train_images", spec.train_count},
                                 {"test_images", spec.test_count},
                                 {"train_source_photos", plan.train_sources.size()},
                                 {"test_source_photos", plan.test_sources.size()},
                                 {"classes", source.class_names}};
    write_text("mosaic.json", meta.dump(1) + "\n");
    if (fs::exists(out)) fs::remove_all(out);
    fs::rename(staging, out);
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
}

}  // namespace kiln::data
