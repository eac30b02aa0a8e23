// A multi-size pack: one data set decoded once and packed at several sizes, for
// progressive resizing (`kiln train --progressive 32:0,48:15,64:30`) without a resize
// on the fly.
//
//   kiln pack DATA -o tiny.kpacks --size 32,48,64   writes
//     tiny.32.kpack  tiny.48.kpack  tiny.64.kpack   ordinary packs (data/pack.h), each
//                                                   usable alone, next to
//     tiny.kpacks                                   the index, JSON:
//       {"format": "kiln pack set", "version": 1, "sizes": [32, 48, 64],
//        "members": ["tiny.32.kpack", "tiny.48.kpack", "tiny.64.kpack"],
//        "count": N, "channels": 3, "classes": K, "fit": "crop", "source": "DATA"}
//
// Member names are relative to the index's folder, so the set can be moved as a folder.
// Every member holds the same images in the same order with the same labels, class
// names and file names; only the pixels differ, and each size is fitted from the
// decoded original (not from a smaller member), so member S is pixel for pixel the
// single pack `kiln pack DATA --size S` would write. The official val split of a
// Tiny-ImageNet folder travels in the file names ("train/...", "val/...") exactly as
// in a single pack.
//
// Writing is all or nothing: the members are written to temporary files first, renamed
// only when every one is complete, and the index is written (atomically) last. A set
// whose index is missing is no set: a failure while writing leaves none of the new
// files, a failed rename (rare: same folder) leaves no index and no temporary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace kiln::data {

constexpr int kPackSetVersion = 1;

// True for a ".kpacks" path (a pack set's index).
bool is_pack_set(const std::string& path);

// "32,48,64" -> {32, 48, 64}. Throws naming `option` and the entry: not a whole number,
// zero or negative, a duplicate, not ascending.
std::vector<int64_t> parse_pack_sizes(const std::string& text, const std::string& option = "--size");

// Where the member of `size` lives: "dir/tiny.kpacks" -> "dir/tiny.32.kpack".
std::string pack_set_member_path(const std::string& index_path, int64_t size);

struct PackSetIndex {
  std::string path;                   // the .kpacks file
  std::vector<int64_t> sizes;         // ascending
  std::vector<std::string> members;   // full paths, one per size
  int64_t count = 0, channels = 0, classes = 0;
  std::string fit, source;

  // The member path of `size`; throws naming the set, the size and the sizes it has.
  const std::string& member(int64_t size, const std::string& asked_by) const;
  std::string sizes_text() const;  // "32/48/64"
};

// Writes datasets[k] (images sizes[k] x sizes[k]) as the members and then the index.
// The datasets must agree in count, labels and file names. `fit` and `source` go into
// the index for the record.
void write_pack_set(const std::string& index_path, const std::vector<int64_t>& sizes,
                    const std::vector<Dataset>& datasets, const std::string& fit);

// Reads the index only (no member is opened). Throws naming the file: not JSON, another
// format or version, sizes not ascending, a member list of another length.
PackSetIndex read_pack_set_index(const std::string& index_path);

// Opens the member of `size` and checks it against the index (count, size, classes).
Dataset open_pack_set_member(const PackSetIndex& index, int64_t size, const std::string& asked_by);

// Opens every member and checks that they are one set: each member's images are its
// size, and all hold the same count, class names, file names and labels as the first;
// throws naming the member and what differs. Element k is the member of index.sizes[k].
std::vector<Dataset> open_pack_set(const PackSetIndex& index);

// A split's train and val sets read at one size of a pack set (the trainer reads the
// epoch's size from these instead of resizing).
struct SizedSplit {
  int64_t size = 0;
  Dataset train, val;
};

}  // namespace kiln::data
