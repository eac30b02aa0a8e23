// The run-folder lock (engine/train/run_lock.h) and the atomically rewritten run log
// (engine/train/run_log.h).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/train/run_lock.h"
#include "engine/train/run_log.h"
#include "tests/data/image_fixtures.h"
#include "tests/test_util.h"

using namespace kiln;

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("run lock: a second writer on the same folder is refused with the holder's pid") {
  test::TempDir dir("run_lock");
  const std::string run = dir / "run";
  {
    train::RunLock first(run);
    CHECK(read_all(first.path()).find("pid " + std::to_string(::getpid())) == 0);
    // flock belongs to the open file, so a second open in this process conflicts as
    // a second process would.
    test::expect_error_containing([&] { train::RunLock second(run); },
                                  {"is in use by another kiln process", "pid " + std::to_string(::getpid()), ".kiln.lock"});
  }
  // Released at scope exit: the folder can be locked again.
  train::RunLock again(run);
  CHECK(again.previous_pid() == 0);
}

TEST_CASE("run lock: a lock file left by a killed process is taken over, with its half-written temporaries") {
  test::TempDir dir("run_lock_stale");
  const std::string run = dir / "run";
  std::filesystem::create_directories(run);
  // What kill -9 leaves: the holder's pid in the file (the kernel dropped the flock)
  // and the atomic writer's temporary of a checkpoint it was writing.
  test::write_text(run + "/.kiln.lock", "pid 999999 (kiln train data)");
  test::write_text(run + "/last.safetensors.tmp.999999", "half");
  test::write_text(run + "/last.safetensors", "whole");
  train::RunLock lock(run);
  CHECK(lock.previous_pid() == 999999);
  CHECK(lock.removed_temporaries() == 1);
  CHECK_FALSE(std::filesystem::exists(run + "/last.safetensors.tmp.999999"));
  CHECK(read_all(run + "/last.safetensors") == "whole");
}

TEST_CASE("run log: a resumed run keeps earlier epochs and drops rows of the epochs it repeats") {
  test::TempDir dir("run_log_resume");
  const std::vector<std::string> columns = {"epoch", "loss"};
  {
    train::RunLog log(dir.str(), columns);
    for (int epoch = 1; epoch <= 3; ++epoch) log.add({{"epoch", epoch}, {"loss", 1.0 / epoch}});
  }
  // Killed after epoch 3's row but before its checkpoint: the resume starts at 3 again.
  train::RunLog resumed(dir.str(), columns, /*first_epoch=*/3);
  resumed.add({{"epoch", 3}, {"loss", 0.25}});
  CHECK(read_all(dir / "epochs.csv") == "epoch,loss\n1,1\n2,0.5\n3,0.25\n");
  const std::string jsonl = read_all(dir / "epochs.jsonl");
  CHECK(jsonl.find("\"epoch\":3") == jsonl.rfind("\"epoch\":3"));  // once
  CHECK(jsonl.find("\"epoch\":2") != std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator(dir.str()))
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
}
