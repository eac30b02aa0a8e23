// A run folder as `kiln train` leaves it, written by hand for the report tests
// (tests/report/test_run_report.cpp, test_report_chromium.cpp): 3 epochs with
// validation on a CPU, and a test set of tiny images whose red channel is their index.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_fixtures.h"  // TempDir, write_text
#include "engine/tensor/factory.h"
#include "report/run_folder.h"

namespace kiln::test {

// A run folder as `kiln train` leaves it: 3 epochs, validation, CPU run.
inline report::RunInfo sample_info() {
  report::RunInfo info;
  info.command = "kiln train data/flowers --epochs 3 --augment 'crop:0.35-1,hflip:0.5'";
  info.model_description = "cnn5: 5 blocks";
  info.parameters = 1234567;
  info.trainable_parameters = 1200000;
  info.device = "cpu";
  info.device_name = "CPU: Test CPU (2 threads)";
  info.device_memory_mb = 16384;
  info.data_source = "data/flowers";
  info.train_images = 1000;
  info.val_images = 200;
  info.test_images = 60;
  info.train_images_per_epoch = 960;
  info.kiln_version = "0.1.0";
  info.started = "2026-11-23 12:00:00";
  return info;
}

inline void write_sample_run(const std::string& dir, const std::string& monitor = "val_accuracy") {
  nlohmann::json config = {{"model", {{"arch", "cnn5"}}},
                           {"batch_size", 64},
                           {"epochs", 3},
                           {"monitor", monitor},
                           {"augment", "crop:0.35-1,hflip:0.5"},
                           {"optimizer", {{"name", "adamw"}, {"lr", 0.001}, {"weight_decay", 0.0005}}},
                           {"schedule", "cosine"},
                           {"device", "cpu"}};
  write_text(dir + "/config.json", config.dump(2));
  report::write_run_info(dir, sample_info(), false);
  // Epoch 2 has the best val accuracy and val F1; epoch 3 the lowest val loss.
  write_text(dir + "/epochs.jsonl",
             R"({"epoch":1,"lr":0.001,"train_loss":1.5,"train_accuracy":0.4,"val_loss":1.2,"val_accuracy":0.5,"val_f1":0.45,"seconds":10.5,"images_per_second":91.4,"peak_memory_mb":300})"
             "\n"
             R"({"epoch":2,"lr":0.0005,"train_loss":1.0,"train_accuracy":0.6,"val_loss":0.9,"val_accuracy":0.7,"val_f1":0.68,"seconds":11.0,"images_per_second":87.3,"peak_memory_mb":350.4})"
             "\n"
             R"({"epoch":3,"lr":0.0001,"train_loss":0.8,"train_accuracy":0.7,"val_loss":0.85,"val_accuracy":0.7,"val_f1":0.66,"seconds":9.5,"images_per_second":101.1,"peak_memory_mb":320})"
             "\n");
}

// 60 test images of 8 x 8 whose red channel is the image's index, 4 classes.
inline data::Dataset indexed_dataset(const std::vector<int64_t>& labels) {
  const int64_t n = static_cast<int64_t>(labels.size());
  data::Dataset d;
  d.images = zeros(Shape{n, 3, 8, 8}, TensorOptions{DType::u8});
  uint8_t* pixels = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < 64; ++p) pixels[i * 192 + p] = static_cast<uint8_t>(i);
  d.labels = zeros(Shape{n}, TensorOptions{DType::i64});
  for (int64_t i = 0; i < n; ++i) d.labels.data<int64_t>()[i] = labels[static_cast<size_t>(i)];
  d.class_names = {"c0", "c1", "c2", "c3"};
  d.source = "test";
  return d;
}

}  // namespace kiln::test
