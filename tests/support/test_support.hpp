// Helpers shared by the test programs: skipping with a reason, temporary
// directories, paths to fixtures.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace bulkhead::test {

// Exits the whole test program with meson's "skipped" code (77), saying what
// the machine lacked.
[[noreturn]] inline void skip(std::string_view why) {
  std::fprintf(stderr, "SKIP: %.*s\n", static_cast<int>(why.size()), why.data());
  std::fflush(stderr);
  std::_Exit(77);
}

inline bool is_root() { return ::geteuid() == 0; }

inline std::filesystem::path source_root() { return BULKHEAD_SOURCE_ROOT; }
inline std::filesystem::path build_root() { return BULKHEAD_BUILD_ROOT; }
inline std::filesystem::path fixture(std::string_view rel) { return source_root() / "tests" / "fixtures" / rel; }

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class temp_dir {
 public:
  explicit temp_dir(std::string_view prefix = "bulkhead-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace bulkhead::test
