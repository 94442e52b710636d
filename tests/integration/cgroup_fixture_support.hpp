// Helpers for tests and benchmarks that run the cgroup and resctrl backends
// on copies of fixture trees.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "test_support.hpp"

namespace bulkhead::test {

namespace fs = std::filesystem;

// Copies tests/fixtures/<name> (links kept as links) beneath `dir`.
inline fs::path copy_fixture(const fs::path& dir, std::string_view name) {
  const auto dst = dir / name;
  fs::copy(fixture(name), dst, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  return dst;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void spit(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Sets every regular file's modification time to 2001-09-09 so that any later
// write shows (file times tick coarsely, a write right after the copy could
// otherwise keep the copy's time).
inline void age_files(const fs::path& root) {
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::error_code ec;
    if (e.is_symlink() || !e.is_regular_file(ec)) continue;
    const struct timespec t[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};
    ::utimensat(AT_FDCWD, e.path().c_str(), t, AT_SYMLINK_NOFOLLOW);
  }
}

// Every regular file beneath `root` (links not followed) with its
// modification time and content: a write of any kind changes the time.
struct file_state {
  std::int64_t mtime_ns = 0;
  std::string content;
  friend bool operator==(const file_state&, const file_state&) = default;
};
inline std::map<std::string, file_state> snapshot(const fs::path& root) {
  std::map<std::string, file_state> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::error_code ec;
    if (!e.is_regular_file(ec) || e.is_symlink()) continue;
    struct stat st{};
    if (::lstat(e.path().c_str(), &st) != 0) continue;
    out[e.path().lexically_relative(root).string()] =
        file_state{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, slurp(e.path())};
  }
  return out;
}

}  // namespace bulkhead::test
