// The Tiny-ImageNet layout (data/tiny_imagenet.h) on a folder written here: three
// wnids, train/<wnid>/images/*.JPEG with a boxes file to ignore, val/images with
// val_annotations.txt, an unlabelled test/ that is never listed; --classes and the
// official split; and each bad folder named by its file and line.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/image_folder.h"
#include "data/tiny_imagenet.h"
#include "image_fixtures.h"
#include "test_util.h"

using namespace kiln;

namespace {

const std::vector<std::string> kWnids = {"n02", "n01", "n03"};  // wnids.txt order, not sorted

// Writes a Tiny-ImageNet folder: `per_class` training images a class, two val images a class.
void make_tiny_imagenet(const std::string& root) {
  test::write_text(root + "/wnids.txt", "n02\nn01\nn03\n");
  test::write_text(root + "/words.txt", "n01\tgoldfish, Carassius auratus\nn02\ttabby, tabby cat\nn03\tpizza\n");
  std::string annotations;
  for (size_t k = 0; k < kWnids.size(); ++k) {
    const std::string& wnid = kWnids[k];
    test::write_text(root + "/train/" + wnid + "/" + wnid + "_boxes.txt", wnid + "_0.JPEG\t0\t0\t8\t8\n");
    for (int i = 0; i < 3; ++i) {
      const std::string file = root + "/train/" + wnid + "/images/" + wnid + "_" + std::to_string(i) + ".jpg";
      test::write_image(file, 8, 8, test::solid_image(8, 8, {static_cast<uint8_t>(80 * k), 0, 0}));
      std::filesystem::rename(file, file.substr(0, file.size() - 4) + ".JPEG");
    }
    for (int i = 0; i < 2; ++i) {
      const std::string name = "val_" + std::to_string(2 * k + i) + ".JPEG";
      const std::string file = root + "/val/images/val_" + std::to_string(2 * k + i) + ".jpg";
      test::write_image(file, 8, 8, test::solid_image(8, 8, {static_cast<uint8_t>(80 * k), 0, 0}));
      std::filesystem::rename(file, root + "/val/images/" + name);
      annotations += name + "\t" + wnid + "\t0\t0\t8\t8\n";
    }
  }
  test::write_text(root + "/val/val_annotations.txt", annotations);
  test::write_image(root + "/test/images/test_0.jpg", 8, 8, test::solid_image(8, 8, {1, 2, 3}));
}

}  // namespace

TEST_CASE("tiny-imagenet: train and the official val are listed with their wnids, test/ is not") {
  test::TempDir dir("tiny_imagenet_ok");
  const std::string root = dir.str();
  make_tiny_imagenet(root);
  CHECK(data::is_tiny_imagenet(root));
  const data::FileListing listing = data::list_images(root);  // what `kiln train DIR` calls
  CHECK(listing.class_names == kWnids);
  REQUIRE(listing.paths.size() == 9 + 6);
  CHECK(listing.file_names.front() == "train/n02/images/n02_0.JPEG");
  CHECK(listing.labels.front() == std::vector<int64_t>{0});
  CHECK(listing.file_names[9] == "val/images/val_0.JPEG");
  CHECK(listing.labels[11] == std::vector<int64_t>{1});  // val_2 is n01, the second wnid
  const data::Split split = data::split_official_val(listing.file_names);
  CHECK(split.train.size() == 9);
  CHECK(split.val.size() == 6);
  CHECK(split.test.empty());
  // The advised first experiment: the first classes of wnids.txt only.
  const data::FileListing two = data::list_tiny_imagenet(root, 2);
  CHECK(two.class_names == std::vector<std::string>{"n02", "n01"});
  CHECK(two.paths.size() == 6 + 4);
  CHECK(data::tiny_imagenet_words(root).at("n03") == "pizza");
  const data::Dataset loaded = data::load_listing(listing, data::LoadConfig{8});
  CHECK(loaded.size() == 15);
}

TEST_CASE("tiny-imagenet: a broken folder is named by file and line") {
  test::TempDir dir("tiny_imagenet_bad");
  const std::string root = dir.str();
  make_tiny_imagenet(root);
  test::expect_error_containing([&] { data::list_tiny_imagenet(root, 4); }, {"--classes 4", "only 3 classes"});
  std::filesystem::remove(root + "/val/images/val_3.JPEG");
  test::expect_error_containing([&] { data::list_tiny_imagenet(root); },
                                {"val_annotations.txt:4", "'val_3.JPEG' is not in"});
  test::write_text(root + "/val/val_annotations.txt", "val_0.JPEG\tn09\t0\t0\t8\t8\n");
  test::expect_error_containing([&] { data::list_tiny_imagenet(root); },
                                {"val_annotations.txt:1", "wnid 'n09' is not in wnids.txt"});
  std::filesystem::remove(root + "/val/val_annotations.txt");
  test::expect_error_containing([&] { data::list_tiny_imagenet(root); }, {"val_annotations.txt", "is missing"});
  std::filesystem::create_directories(root + "/train/n07/images");
  test::expect_error_containing([&] { data::list_tiny_imagenet(root); }, {"class folder 'n07' is not in wnids.txt"});
}
