// bulkhead-agent's textfile for node_exporter's textfile collector: written
// whole or not at all (a temporary file in the same directory, fsync,
// rename), so the collector, which may read it at any moment, never sees a
// part of it.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "bulkhead/detail/text.hpp"
#include "bulkhead/error.hpp"

namespace bulkhead::agent_tool {

// The directory part of `path` ("." for a bare name).
[[nodiscard]] inline std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Writes `text` to `path` atomically: <path>.tmp.<pid> beside it (mode 0644:
// node_exporter runs as another user), fsync, rename over `path`. A link at
// the temporary name is not followed. Errors: io_error / no_space /
// permission_denied naming the file.
[[nodiscard]] inline result<void> write_textfile(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const auto failed = [&](const char* step, int e) {
    ::unlink(tmp.c_str());
    const errc c = e == ENOSPC || e == EDQUOT ? errc::no_space
                   : e == EACCES || e == EPERM || e == EROFS ? errc::permission_denied
                   : e == ENOENT ? errc::not_found
                                 : errc::io_error;
    return fail(c, "textfile " + detail::quote_path(path) + ": " + step + ": " + std::strerror(e));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return failed("creating the temporary file", errno);
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return failed("writing", e);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return failed("fsync", e);
  }
  if (::close(fd) != 0) return failed("close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failed("rename", errno);
  return {};
}

// Removes <path>.tmp.<pid> files an agent killed while writing left behind
// (a file of a process that still runs is kept).
inline void remove_stale_temporaries(const std::string& path) {
  const auto dir = parent_dir(path);
  const auto slash = path.rfind('/');
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (!n.starts_with(prefix)) continue;
    auto pid = detail::parse_u64(n.substr(prefix.size()), "pid");
    if (!pid || *pid == 0 || *pid > 4194304) continue;
    if (static_cast<pid_t>(*pid) != ::getpid() && ::kill(static_cast<pid_t>(*pid), 0) == 0) continue;
    ::unlink((dir + "/" + n).c_str());
  }
  ::closedir(d);
}

}  // namespace bulkhead::agent_tool
