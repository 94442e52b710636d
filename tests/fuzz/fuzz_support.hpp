// Helpers shared by the libFuzzer targets (suite `fuzz`, docs/fuzzing.md).
//
// A target's contract: for any input, the parser returns a value or an error
// whose message is not empty; it never crashes, leaks, hangs or hits
// undefined behaviour (the targets are built with
// -fsanitize=fuzzer,address,undefined and -fno-sanitize-recover=all). Where
// a parser has a printer, a parsed value printed and parsed again must give
// the same value. A broken invariant aborts, which libFuzzer reports as a
// crash and saves as an artifact.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "bulkhead/error.hpp"

namespace bulkhead::fuzz {

[[noreturn]] inline void broken(std::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  std::abort();
}

inline void expect(bool ok, std::string_view what) {
  if (!ok) broken(what);
}

// Every error must say something.
inline void expect_clear(const error& e, std::string_view what) {
  if (e.message().empty()) broken(std::string(what) + ": an error without a message");
}

template <class T>
inline void expect_clear(const result<T>& r, std::string_view what) {
  if (!r) expect_clear(r.error(), what);
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A scratch directory for targets that need files, removed at exit: under
// $TMPDIR (run_fuzz.sh points it into the run's own directory on tmpfs), else
// /dev/shm (no disk wear, fsync is free), else /tmp.
class scratch {
 public:
  scratch() {
    const char* t = std::getenv("TMPDIR");
    std::string base = t && *t ? t : "/dev/shm";
    if (::access(base.c_str(), W_OK) != 0) base = "/tmp";
    std::string tmpl = base + "/bulkhead-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) broken("mkdtemp failed");
    path_ = tmpl;
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  ~scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  // The scratch directory of this process: created once, removed at exit.
  static scratch& instance() {
    static scratch s;
    return s;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace bulkhead::fuzz
