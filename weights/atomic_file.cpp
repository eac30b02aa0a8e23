#include "weights/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "engine/core/check.h"

namespace kiln {

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      KILN_CHECK(out.good(), "cannot write '", path, "': ", std::strerror(errno));
      write(out);
      out.flush();
      // A full disk (ENOSPC) or a file-size limit (EFBIG) shows here; the file at
      // `path` has not been touched, and the temporary is removed below.
      KILN_CHECK(out.good(), "writing '", path, "' failed: ", std::strerror(errno),
                 " (is the disk full?); the previous '", path, "' is left as it was");
    }
    // fsync so that the rename never exposes a file whose data is not on disk yet.
    const int fd = ::open(temporary.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    KILN_CHECK(std::rename(temporary.c_str(), path.c_str()) == 0, "cannot rename '", temporary, "' to '", path,
               "': ", std::strerror(errno));
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
}

}  // namespace kiln
