// AsyncUpload (engine/tensor/async_upload.h): on the cpu the device tensors are the
// host tensors; on CUDA a pinned upload gives the same tensor as the synchronous
// copy, and its host buffer may be overwritten once the upload has been waited for.
#include <doctest/doctest.h>

#include "engine/tensor/async_upload.h"
#include "engine/tensor/factory.h"
#include "test_util.h"

using namespace kiln;

TEST_CASE("async upload: on the cpu the device tensors are the host tensors, copied nowhere") {
  Rng rng(1);
  const Tensor images = uniform({2, 3, 4, 4}, 0, 255, rng).to(DType::u8);
  const Tensor labels = from_vector({1, 0}, {2}, {DType::i64});
  AsyncUpload upload({images, labels}, Device::cpu());
  REQUIRE(upload.size() == 2);
  CHECK(upload.device_tensor(0).same_storage(images));
  CHECK(upload.device_tensor(1).same_storage(labels));
  CHECK_FALSE(upload.asynchronous());
  CHECK_FALSE(is_pinned(images));
  test::expect_error_containing([&] { (void)upload.device_tensor(2); }, {"AsyncUpload: tensor 2 of 2"});
}

TEST_CASE("async upload: a pinned batch reaches the GPU equal to the synchronous copy" * doctest::test_suite("gpu")) {
  if (test::skip_without_gpu("asynchronous host-to-device copies")) return;
  const Device gpu = Device::cuda(0);
  Rng rng(2);
  const Tensor source = uniform({8, 3, 32, 32}, 0, 255, rng).to(DType::u8);
  const Tensor labels_source = from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {8}, {DType::i64});
  // Several uploads in flight: each copy must read its own buffer, even though
  // every buffer comes from the same pinned cache.
  std::vector<AsyncUpload> uploads;
  std::vector<Tensor> expected;
  for (int i = 0; i < 4; ++i) {
    Tensor images = empty_pinned(source.shape(), DType::u8), labels = empty_pinned({8}, DType::i64);
    REQUIRE(is_pinned(images));
    copy_(images, source);
    copy_(labels, labels_source);
    images.data<uint8_t>()[0] = static_cast<uint8_t>(i);  // tell the batches apart
    expected.push_back(images.to(gpu).to(Device::cpu()));  // the synchronous path
    uploads.emplace_back(std::vector<Tensor>{images, labels}, gpu);
    CHECK(uploads.back().asynchronous());
  }
  for (int i = 0; i < 4; ++i) {
    CHECK(uploads[i].device_tensor(0).to(Device::cpu()).to_vector() == expected[i].to_vector());
    CHECK(uploads[i].device_tensor(1).to(Device::cpu()).to_vector() == labels_source.to_vector());
  }
  // After wait() the host buffer is free: overwriting it changes nothing on the device.
  Tensor host = empty_pinned({4}, DType::f32);
  copy_(host, from_vector({1, 2, 3, 4}, {4}));
  AsyncUpload upload({host}, gpu);
  upload.wait();
  fill_(host, -1);
  CHECK(upload.device_tensor(0).to(Device::cpu()).to_vector() == std::vector<double>{1, 2, 3, 4});
  // A pageable host tensor falls back to the synchronous copy.
  AsyncUpload pageable({source}, gpu);
  CHECK_FALSE(pageable.asynchronous());
  CHECK(pageable.device_tensor(0).to(Device::cpu()).to_vector() == source.to_vector());
}
