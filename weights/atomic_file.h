// Writing files so that nothing half-written is ever left behind: write to
// "<path>.tmp.<pid>", flush and fsync, then rename over <path> (atomic on POSIX).
// A crash or an exception mid-write leaves the old file (or none), never a torn one.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace kiln {

// Calls write(stream) on a temporary file, then renames it to `path`. Throws
// kiln::Error naming the path when the file cannot be written; the temporary is
// removed on any failure.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace kiln
