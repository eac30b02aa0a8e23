#include "data/cache.h"
#include "data/image_folder.h"
#include "data/pack.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

TEST_CASE("data csv: single-label rows, header, paths relative to the CSV") {
  test::TempDir dir("csv");
  test::make_image_folder(dir / "img", {"p", "q"}, 2);
  test::write_text(dir / "labels.csv", "image,label\nimg/p/0.png,dog\nimg/p/1.jpg,cat\nimg/q/0.png,dog\n\n");
  data::LoadConfig config;
  config.size = 12;
  const data::Dataset dataset = data::load_images(dir / "labels.csv", config);
  CHECK(dataset.images.shape() == Shape({3, 3, 12, 12}));
  CHECK(dataset.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(dataset.labels.to_vector() == std::vector<double>{1, 0, 1});
  CHECK(dataset.file_names[1] == "img/p/1.jpg");
  CHECK_FALSE(dataset.targets.defined());
}

TEST_CASE("data csv: multi-label rows give multi-hot targets, integer classes sort numerically") {
  test::TempDir dir("csv_multi");
  test::make_image_folder(dir / "img", {"p"}, 3);
  test::write_text(dir / "multi.csv", "img/p/0.png,\"2 10\"\nimg/p/1.jpg,10\nimg/p/2.bmp,\"1 2 10\"\n");
  data::LoadConfig config;
  config.size = 8;
  const data::Dataset dataset = data::load_images(dir / "multi.csv", config);
  CHECK(dataset.class_names == std::vector<std::string>{"1", "2", "10"});
  REQUIRE(dataset.targets.defined());
  CHECK(dataset.targets.shape() == Shape({3, 3}));
  CHECK(dataset.targets.to_vector() == std::vector<double>{0, 1, 1, 0, 0, 1, 1, 1, 1});
  CHECK(dataset.labels.to_vector() == std::vector<double>{1, 2, 0});  // the first label of each row
}

TEST_CASE("data csv: a row naming a missing file is an error, or skipped with --skip-bad") {
  test::TempDir dir("csv_missing");
  test::make_image_folder(dir / "img", {"p"}, 2);
  test::write_text(dir / "bad.csv", "img/p/0.png,a\nimg/p/gone.png,b\nimg/p/1.jpg,b\n");
  data::LoadConfig config;
  config.size = 8;
  test::expect_error_containing([&] { data::load_images(dir / "bad.csv", config); },
                                {"bad.csv", "row 2", "line 2", "column 1", "gone.png", "does not exist"});
  config.skip_bad = true;
  const data::Dataset dataset = data::load_images(dir / "bad.csv", config);
  CHECK(dataset.size() == 2);
  CHECK(dataset.skipped == 1);
}

TEST_CASE("data csv: the course's ImageID,Labels,Captions file with quoted captions is multi-label by itself") {
  test::TempDir dir("csv_course");
  test::make_image_folder(dir / "data", {"p"}, 3);
  test::write_text(dir / "train.csv",
                   "ImageID,Labels,Captions\r\n"
                   "p/0.png,1 6,\"A man, a dog and \"\"Rex\"\", outside\"\r\n"
                   "p/1.jpg,10,\"two lines,\nof caption\"\r\n"
                   "p/2.bmp,6 1,plain\r\n");
  data::LoadConfig config;
  config.size = 8;
  config.csv.image_root = dir / "data";
  const data::Dataset dataset = data::load_images(dir / "train.csv", config);
  CHECK(dataset.class_names == std::vector<std::string>{"1", "6", "10"});
  REQUIRE(dataset.targets.defined());
  CHECK(dataset.targets.to_vector() == std::vector<double>{1, 1, 0, 0, 0, 1, 1, 1, 0});
  CHECK(dataset.file_names == std::vector<std::string>{"p/0.png", "p/1.jpg", "p/2.bmp"});
  CHECK(dataset.labelled);
  // Without --image-root the paths are relative to the CSV's folder: the error says so.
  config.csv.image_root.clear();
  test::expect_error_containing([&] { data::load_images(dir / "train.csv", config); },
                                {"train.csv", "row 2 (line 2)", "column 1", "p/0.png", "--image-root"});
}

TEST_CASE("data csv: labels separated by bars or semicolons, named columns, extra columns ignored") {
  test::TempDir dir("csv_named");
  test::make_image_folder(dir / "img", {"p"}, 3);
  test::write_text(dir / "tags.csv",
                   "notes,file_name,Tags\nx,img/p/0.png,cat|dog\ny,img/p/1.jpg,dog;bird\nz,img/p/2.bmp,cat\n");
  data::LoadConfig config;
  config.size = 8;
  const data::FileListing auto_found = data::list_csv(dir / "tags.csv");
  CHECK(auto_found.labels == std::vector<std::vector<int64_t>>{{1, 2}, {2, 0}, {1}});  // bird < cat < dog
  test::write_text(dir / "odd.csv", "picture,what,notes\nimg/p/0.png,a b,\"x, y\"\nimg/p/1.jpg,b,z\n");
  config.csv.image_column = "picture";
  config.csv.labels_column = "what";
  const data::Dataset dataset = data::load_images(dir / "odd.csv", config);
  CHECK(dataset.class_names == std::vector<std::string>{"a", "b"});
  CHECK(dataset.targets.to_vector() == std::vector<double>{1, 1, 0, 1});
  config.csv.labels_column = "labels";
  test::expect_error_containing([&] { data::load_images(dir / "odd.csv", config); },
                                {"odd.csv", "--labels-column 'labels'", "'picture', 'what', 'notes'"});
}

TEST_CASE("data csv: the one-hot layout is detected, a CSV without labels loads for prediction") {
  test::TempDir dir("csv_onehot");
  test::make_image_folder(dir / "img", {"p"}, 3);
  test::write_text(dir / "onehot.csv", "image,cat,dog,fish\nimg/p/0.png,1,0,1\nimg/p/1.jpg,0,1,0\nimg/p/2.bmp,0,0,0\n");
  data::LoadConfig config;
  config.size = 8;
  const data::Dataset one_hot = data::load_images(dir / "onehot.csv", config);
  CHECK(one_hot.class_names == std::vector<std::string>{"cat", "dog", "fish"});
  CHECK(one_hot.targets.to_vector() == std::vector<double>{1, 0, 1, 0, 1, 0, 0, 0, 0});
  CHECK(one_hot.labels.to_vector() == std::vector<double>{0, 1, -1});
  CHECK(data::list_csv(dir / "onehot.csv").empty_label_rows == 1);

  test::write_text(dir / "test.csv", "ImageID,Captions\nimg/p/0.png,\"a cat, \"\"Tom\"\"\"\nimg/p/2.bmp,x\n");
  const data::Dataset unlabelled = data::load_dataset(dir / "test.csv", config, dir / "cache");
  CHECK_FALSE(unlabelled.labelled);
  CHECK(unlabelled.size() == 2);
  CHECK(unlabelled.labels.to_vector() == std::vector<double>{-1, -1});
  CHECK_FALSE(unlabelled.targets.defined());
  CHECK(data::subset(unlabelled, {1}).labelled == false);
}

TEST_CASE("data csv: an empty label cell is 'no labels' in a multi-label CSV and an error in a single-label one") {
  test::TempDir dir("csv_empty");
  test::make_image_folder(dir / "img", {"p"}, 3);
  test::write_text(dir / "multi.csv", "image,labels\nimg/p/0.png,a b\nimg/p/1.jpg,\nimg/p/2.bmp,b\n");
  const data::FileListing multi = data::list_csv(dir / "multi.csv");
  CHECK(multi.multi_label);
  CHECK(multi.empty_label_rows == 1);
  data::LoadConfig config;
  config.size = 8;
  const data::Dataset dataset = data::load_images(dir / "multi.csv", config);
  CHECK(dataset.targets.to_vector() == std::vector<double>{1, 1, 0, 0, 0, 1});
  CHECK(dataset.labels.to_vector() == std::vector<double>{0, -1, 1});

  test::write_text(dir / "single.csv", "image,labels\nimg/p/0.png,a\nimg/p/1.jpg,\nimg/p/2.bmp,b\n");
  test::expect_error_containing([&] { data::list_csv(dir / "single.csv"); },
                                {"single.csv", "row 3 (line 3)", "column 2 ('labels')", "no label", "--multi-label"});
  data::CsvOptions forced;
  forced.multi_label = true;
  const data::FileListing now_multi = data::list_csv(dir / "single.csv", false, forced);
  CHECK(now_multi.multi_label);
  CHECK(now_multi.empty_label_rows == 1);
}

TEST_CASE("data csv: inconsistent column counts and --multi-label on a folder are errors naming the place") {
  test::TempDir dir("csv_columns");
  test::make_image_folder(dir / "img", {"p"}, 2);
  test::write_text(dir / "short.csv", "ImageID,Labels,Captions\nimg/p/0.png,1,ok\nimg/p/1.jpg,2\n");
  test::expect_error_containing([&] { data::list_csv(dir / "short.csv"); },
                                {"short.csv", "row 3 (line 3)", "2 column(s), expected 3", "column 3 ('Captions') is missing"});
  test::write_text(dir / "long.csv", "ImageID,Labels,Captions\nimg/p/0.png,1,a, b\n");
  test::expect_error_containing([&] { data::list_csv(dir / "long.csv"); },
                                {"long.csv", "row 2", "column 4", "double quotes"});
  test::write_text(dir / "ids.csv", "img/p/0.png,2\nimg/p/1.jpg,10\n");  // no header: image, labels
  CHECK(data::list_csv(dir / "ids.csv").class_names == std::vector<std::string>{"2", "10"});
  data::CsvOptions options;
  options.multi_label = true;
  test::expect_error_containing([&] { data::list_images(dir / "img", false, options); },
                                {"--multi-label", "img", "image folder"});
}

TEST_CASE("data csv: align_classes re-indexes a test CSV to the training classes by name") {
  test::TempDir dir("csv_align");
  test::make_image_folder(dir / "img", {"p"}, 2);
  test::write_text(dir / "test.csv", "image,labels\nimg/p/0.png,dog fish\nimg/p/1.jpg,dog\n");
  data::LoadConfig config;
  config.size = 8;
  data::Dataset dataset = data::load_dataset(dir / "test.csv", config, dir / "cache");  // a pack: read-only tensors
  data::align_classes(dataset, {"cat", "dog", "fish"});
  CHECK(dataset.targets.to_vector() == std::vector<double>{0, 1, 1, 0, 1, 0});
  CHECK(dataset.labels.to_vector() == std::vector<double>{1, 1});
  test::expect_error_containing([&] { data::align_classes(dataset, {"cat", "dog"}); },
                                {"test.csv", "'fish'", "not one of the 2 classes", "'cat', 'dog'"});
}

TEST_CASE("data csv: a CSV without labels is not packed (a pack cannot mark it unlabelled)") {
  test::TempDir dir("csv_nopack");
  test::make_image_folder(dir / "img", {"p"}, 1);
  test::write_text(dir / "test.csv", "ImageID,Captions\nimg/p/0.png,x\n");
  data::LoadConfig config;
  config.size = 8;
  const data::Dataset dataset = data::load_images(dir / "test.csv", config);
  test::expect_error_containing([&] { data::write_pack(dir / "t.kpack", dataset); }, {"t.kpack", "test.csv", "no labels"});
  CHECK_FALSE(std::filesystem::exists(dir / "t.kpack"));
}
