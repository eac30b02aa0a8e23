#include "data/cache.h"

#include <cstdio>
#include <filesystem>

#include "data/pack.h"

namespace kiln::data {

namespace fs = std::filesystem;

namespace {

// FNV-1a, 64-bit: simple, stable across platforms and runs (std::hash is neither).
class Fnv1a {
 public:
  void add(const std::string& text) {
    for (unsigned char ch : text) hash_ = (hash_ ^ ch) * 0x100000001b3ull;
    add_byte(0);  // a separator, so that "ab"+"c" and "a"+"bc" differ
  }
  void add(int64_t value) { add(std::to_string(value)); }
  uint64_t value() const { return hash_; }

 private:
  void add_byte(unsigned char ch) { hash_ = (hash_ ^ ch) * 0x100000001b3ull; }
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

bool is_pack(const std::string& path) { return fs::path(path).extension() == ".kpack"; }

std::string cache_key(const std::string& path, const LoadConfig& config, const FileListing& listing) {
  Fnv1a hash;
  hash.add(fs::absolute(path).lexically_normal().string());
  hash.add(config.size);
  hash.add(fit_name(config.fit));
  hash.add(kResizeFilter);
  hash.add(config.channels);
  hash.add(static_cast<int64_t>(config.skip_bad));
  for (const std::string* text : {&config.csv.image_column, &config.csv.labels_column, &config.csv.image_root})
    hash.add(*text);
  hash.add(static_cast<int64_t>(config.csv.multi_label));
  if (fs::is_regular_file(path)) hash.add(fs::last_write_time(path).time_since_epoch().count());  // the CSV itself
  for (const std::string& file : listing.paths) {
    hash.add(file);
    hash.add(static_cast<int64_t>(fs::file_size(file)));
    hash.add(static_cast<int64_t>(fs::last_write_time(file).time_since_epoch().count()));
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash.value()));
  return hex;
}

}  // namespace

std::string cache_path_for(const std::string& path, const LoadConfig& config, const std::string& cache_dir) {
  const FileListing listing = list_images(path, config.skip_bad, config.csv);
  return (fs::path(cache_dir) / (cache_key(path, config, listing) + ".kpack")).string();
}

Dataset load_dataset(const std::string& path, const LoadConfig& config, const std::string& cache_dir) {
  if (is_pack(path)) return open_pack(path);
  const FileListing listing = list_images(path, config.skip_bad, config.csv);
  // A pack has no "unlabelled" mark: a prediction CSV is decoded every time.
  if (cache_dir.empty() || !listing.labelled) return load_listing(listing, config);
  const fs::path cached = fs::path(cache_dir) / (cache_key(path, config, listing) + ".kpack");
  if (!fs::exists(cached)) {
    fs::create_directories(cache_dir);
    std::fprintf(stderr, "packing '%s' into the cache %s (once)\n", path.c_str(), cached.string().c_str());
    write_pack(cached.string(), load_listing(listing, config));
  }
  return open_pack(cached.string());
}

}  // namespace kiln::data
