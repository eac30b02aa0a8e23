#include "engine/train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "engine/core/check.h"

namespace kiln::train {

namespace {

std::string read_holder(int fd) {
  char text[512] = {};
  const ssize_t got = ::pread(fd, text, sizeof(text) - 1, 0);
  return got > 0 ? std::string(text, static_cast<size_t>(got)) : std::string();
}

// The first line of /proc/self/cmdline with spaces, for the holder's description.
std::string own_command() {
  std::string command;
  const int fd = ::open("/proc/self/cmdline", O_RDONLY);
  if (fd < 0) return command;
  char buffer[400];
  const ssize_t got = ::read(fd, buffer, sizeof(buffer));
  ::close(fd);
  for (ssize_t i = 0; i < got; ++i) command += buffer[i] ? buffer[i] : ' ';
  while (!command.empty() && command.back() == ' ') command.pop_back();
  return command;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir) : path_(run_dir + "/.kiln.lock") {
  std::error_code error;
  std::filesystem::create_directories(run_dir, error);
  KILN_CHECK(!error, "cannot create the run folder '", run_dir, "': ", error.message());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  KILN_CHECK(fd_ >= 0, "cannot open the run folder's lock '", path_, "': ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    const std::string holder = read_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    KILN_CHECK(why != EWOULDBLOCK, "run folder '", run_dir, "' is in use by another kiln process: ",
               holder.empty() ? std::string("(pid not yet written)") : holder,
               " (lock ", path_, "); wait for it to finish, stop it, or pass another --run-dir");
    KILN_FAIL("cannot lock the run folder '", run_dir, "' (", path_, "): ", std::strerror(why));
  }
  // Locked. A pid left in the file belongs to a process that ended without cleaning
  // up (kill -9): the kernel already dropped its lock, so taking over is safe.
  const std::string previous = read_holder(fd_);
  if (previous.rfind("pid ", 0) == 0) previous_pid_ = std::strtol(previous.c_str() + 4, nullptr, 10);
  // The atomic writer's temporaries ("<file>.tmp.<pid>") that a killed run left: no
  // other process writes here while the lock is held, so every one is stale.
  for (const auto& entry : std::filesystem::directory_iterator(run_dir, error))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) {
      std::filesystem::remove(entry.path(), error);
      ++removed_temporaries_;
    }
  const std::string holder = "pid " + std::to_string(::getpid()) + " (" + own_command() + ")";
  KILN_CHECK(::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, holder.data(), holder.size(), 0) ==
                                             static_cast<ssize_t>(holder.size()),
             "cannot write the run folder's lock '", path_, "': ", std::strerror(errno));
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Emptied rather than removed: removing it would let a third process lock a new
  // file of the same name while a second one still waits on the old one.
  if (::ftruncate(fd_, 0) != 0) {
  }
  ::close(fd_);  // releases the flock
}

}  // namespace kiln::train
