// The Tiny-ImageNet layout, read as it is unpacked (cs231n's tiny-imagenet-200):
//
//   wnids.txt                         one WordNet id a line: the classes, in this order
//   words.txt                         "wnid<TAB>readable names" (optional, for display)
//   train/<wnid>/images/*.JPEG        500 labelled images a class (<wnid>_boxes.txt ignored)
//   val/images/*.JPEG                 the official validation images, and
//   val/val_annotations.txt           "file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1" a line
//   test/images/*.JPEG                unlabelled: never listed
//
// list_tiny_imagenet() lists train and val pooled, file names keeping their prefix
// ("train/n01443537/images/n01443537_0.JPEG", "val/images/val_0.JPEG"), so a split
// can keep the official validation set held out (split_official_val()). With
// max_classes > 0 only the first max_classes wnids of wnids.txt are listed (the
// advised first experiment: 10 classes). Errors name the file and line: a missing
// wnids.txt or val_annotations.txt, a wnid not in wnids.txt (a train folder or an
// annotation), an annotation naming a file that is not there, more classes asked
// for than wnids.txt has.
#pragma once
#include <map>
#include <string>

#include "data/image_folder.h"
#include "data/split.h"

namespace kiln::data {

// True when `root` has wnids.txt and a train/ folder (how `kiln train DIR` tells).
bool is_tiny_imagenet(const std::string& root);

FileListing list_tiny_imagenet(const std::string& root, int64_t max_classes = 0);

// wnid -> readable names from words.txt (empty when the file is absent).
std::map<std::string, std::string> tiny_imagenet_words(const std::string& root);

// The official split of a pooled listing's file names: "train/..." for training,
// "val/..." held out as validation, nothing for test (kiln's test set then comes
// from the validation images' own split, or is empty).
Split split_official_val(const std::vector<std::string>& file_names);

}  // namespace kiln::data
