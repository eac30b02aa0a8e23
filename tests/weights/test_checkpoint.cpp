#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "engine/nn/layers.h"
#include "engine/tensor/factory.h"
#include "test_util.h"
#include "weights/checkpoint.h"
#include "weights/safetensors.h"

using namespace kiln;

TEST_CASE("checkpoint: model, optimizer state, config, classes and extra state round trip") {
  auto net = std::make_shared<nn::Sequential>();
  net->add(std::make_shared<nn::Linear>(4, 3)).add(std::make_shared<nn::Dropout>(0.5, 7));
  std::static_pointer_cast<nn::Dropout>(net->child("1"))->calls = 42;
  Checkpoint c = checkpoint_of(*net);
  c.optimizer["0.weight.momentum"] = ones({3, 4});
  c.config = {{"model", "tiny"}, {"lr", 0.1}};
  c.class_names = {"ants", "bees"};
  c.progress = {{"epoch", 3}};
  const std::string path = "/tmp/kiln_test_checkpoint.safetensors";
  save_checkpoint(path, c);

  const Checkpoint back = load_checkpoint(path);
  CHECK(back.config["model"] == "tiny");
  CHECK(back.class_names == std::vector<std::string>{"ants", "bees"});
  CHECK(back.progress["epoch"] == 3);
  CHECK(back.optimizer.at("0.weight.momentum").to_vector() == std::vector<double>(12, 1.0));
  auto other = std::make_shared<nn::Sequential>();
  other->add(std::make_shared<nn::Linear>(4, 3)).add(std::make_shared<nn::Dropout>(0.5, 7));
  restore_model(*other, back);
  CHECK(std::static_pointer_cast<nn::Dropout>(other->child("1"))->calls == 42);
  CHECK(other->state_dict()["0.weight"].to_vector() == net->state_dict()["0.weight"].to_vector());
}

TEST_CASE("checkpoint: a plain safetensors file is not mistaken for a checkpoint") {
  const std::string path = "/tmp/kiln_test_plain.safetensors";
  save_safetensors(path, {{"w", ones({2})}});
  test::expect_error_containing([&] { load_checkpoint(path); }, {path, "not a kiln checkpoint"});
}

TEST_CASE("safetensors: a truncated file is an error naming the file, and writes leave no temporary") {
  const std::string path = "/tmp/kiln_test_truncated.safetensors";
  save_safetensors(path, {{"w", ones({64})}});
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 10));
  }
  test::expect_error_containing([&] { load_safetensors(path); }, {path});
  // A write into a folder that does not exist fails cleanly and leaves nothing behind.
  test::expect_error_containing([&] { save_safetensors("/tmp/kiln-no-such-dir/x.safetensors", {{"w", ones({1})}}); },
                                {"/tmp/kiln-no-such-dir/x.safetensors"});
}
