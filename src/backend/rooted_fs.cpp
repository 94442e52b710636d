// Confined file access; contract in bulkhead/backend/rooted_fs.hpp.
#include "bulkhead/backend/rooted_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "bulkhead/detail/text.hpp"

namespace bulkhead {

namespace {

std::string sys_reason(int e) { return std::strerror(e); }

// Rejects absolute paths, NUL bytes and ".." components before the kernel
// sees them (the kernel would refuse them too; this gives a clearer error).
result<void> check_rel(std::string_view rel) {
  if (!rel.empty() && rel.front() == '/')
    return fail(errc::unsafe_path, "path " + bulkhead::detail::quote(rel) + " is absolute; paths are relative to the root");
  if (rel.find('\0') != std::string_view::npos)
    return fail(errc::unsafe_path, "path " + bulkhead::detail::quote(rel) + " contains a NUL byte");
  bool dotdot = false;
  bulkhead::detail::split(rel, '/', [&](std::string_view c) { dotdot = dotdot || c == ".."; });
  if (dotdot) return fail(errc::unsafe_path, "path " + bulkhead::detail::quote(rel) + " contains '..'");
  return {};
}

std::atomic<bool> openat2_missing{false};  // set once when the kernel lacks openat2

// O_NOFOLLOW walk: every component must be a real directory or file.
int walk_nofollow(int dirfd, std::string_view rel, int flags, unsigned mode) {
  if (rel.empty() || rel == ".") return ::openat(dirfd, ".", flags | O_CLOEXEC, mode);
  int cur = ::dup(dirfd);
  if (cur < 0) return -1;
  while (true) {
    auto slash = rel.find('/');
    std::string comp(rel.substr(0, slash));
    if (slash == std::string_view::npos) {
      int fd = ::openat(cur, comp.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
      int e = errno;
      ::close(cur);
      errno = e;
      return fd;
    }
    rel.remove_prefix(slash + 1);
    if (comp.empty() || comp == ".") continue;
    int next = ::openat(cur, comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    ::close(cur);
    if (next < 0) {
      errno = e;
      return -1;
    }
    cur = next;
  }
}

int open_beneath(int dirfd, std::string_view rel, int flags, unsigned mode) {
  std::string p(rel.empty() ? "." : rel);
  if (!openat2_missing) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dirfd, p.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    openat2_missing = true;
  }
  return walk_nofollow(dirfd, rel, flags, mode);
}

}  // namespace

errc errc_from_errno(int e) noexcept {
  switch (e) {
    case ENOENT:
    case ENOTDIR: return errc::not_found;
    case EACCES:
    case EPERM:
    case EROFS: return errc::permission_denied;
    case EXDEV:
    case ELOOP: return errc::unsafe_path;
    case ENOSPC:
    case EDQUOT: return errc::no_space;
    case EEXIST: return errc::already_exists;
    case EINVAL:
    case ERANGE: return errc::invalid_argument;
    case EBUSY: return errc::conflict;
    default: return errc::io_error;
  }
}

result<rooted_dir> rooted_dir::open(const std::string& root) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return fail(errc_from_errno(e), "root " + bulkhead::detail::quote_path(root) + ": " + sys_reason(e));
  }
  return rooted_dir(fd, root);
}

rooted_dir::rooted_dir(rooted_dir&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
rooted_dir& rooted_dir::operator=(rooted_dir&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}
rooted_dir::~rooted_dir() {
  if (fd_ >= 0) ::close(fd_);
}

std::string rooted_dir::full(std::string_view rel) const {
  if (rel.empty()) return path_;
  std::string s = path_;
  if (s.empty() || s.back() != '/') s += '/';
  s += rel;
  return s;
}

result<int> rooted_dir::open_fd(std::string_view rel, int flags, unsigned mode) const {
  if (auto c = check_rel(rel); !c) return fail(std::move(c.error()).in(full(rel)));
  int fd = open_beneath(fd_, rel, flags, mode);
  if (fd < 0) {
    const int e = errno;
    std::string why = sys_reason(e);
    if (e == EXDEV || e == ELOOP) why = "resolves outside the root " + bulkhead::detail::quote_path(path_) + " (a symbolic link or '..' leads out of it)";
    return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": " + why);
  }
  return fd;
}

result<std::string> rooted_dir::read_file(std::string_view rel, std::size_t max_bytes) const {
  auto fd = open_fd(rel, O_RDONLY);
  if (!fd) return fail(std::move(fd.error()));
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(*fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(*fd);
      return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": read: " + sys_reason(e));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(*fd);
      return fail(errc::out_of_range, bulkhead::detail::quote_path(full(rel)) + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(*fd);
  return out;
}

result<void> rooted_dir::write_file(std::string_view rel, std::string_view content) const {
  auto fd = open_fd(rel, O_WRONLY | O_TRUNC);
  if (!fd) return fail(std::move(fd.error()));
  ssize_t n;
  do {
    n = ::write(*fd, content.data(), content.size());
  } while (n < 0 && errno == EINTR);
  const int e = errno;
  ::close(*fd);
  if (n < 0)
    return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": write " + bulkhead::detail::quote(content) + ": " + sys_reason(e));
  if (static_cast<std::size_t>(n) != content.size())
    return fail(errc::io_error, bulkhead::detail::quote_path(full(rel)) + ": short write of " + bulkhead::detail::quote(content));
  return {};
}

result<void> rooted_dir::create_file(std::string_view rel, std::string_view content) const {
  auto fd = open_fd(rel, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd) return fail(std::move(fd.error()));
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(*fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(*fd);
      return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": write: " + sys_reason(e));
    }
    off += static_cast<std::size_t>(n);
  }
  ::close(*fd);
  return {};
}

result<bool> rooted_dir::exists(std::string_view rel) const {
  auto fd = open_fd(rel, O_PATH);
  if (fd) {
    ::close(*fd);
    return true;
  }
  if (fd.error().code() == errc::not_found) return false;
  return fail(std::move(fd.error()));
}

result<bool> rooted_dir::is_directory(std::string_view rel) const {
  auto fd = open_fd(rel, O_PATH);
  if (!fd) {
    if (fd.error().code() == errc::not_found) return false;
    return fail(std::move(fd.error()));
  }
  struct stat st{};
  const int rc = ::fstat(*fd, &st);
  ::close(*fd);
  return rc == 0 && S_ISDIR(st.st_mode);
}

result<std::vector<std::string>> rooted_dir::list(std::string_view rel) const {
  auto fd = open_fd(rel, O_RDONLY | O_DIRECTORY);
  if (!fd) return fail(std::move(fd.error()));
  DIR* d = ::fdopendir(*fd);
  if (!d) {
    const int e = errno;
    ::close(*fd);
    return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": " + sys_reason(e));
  }
  std::vector<std::string> names;
  while (auto* ent = ::readdir(d)) {
    std::string_view n = ent->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

result<std::string> rooted_dir::read_link(std::string_view rel) const {
  if (auto c = check_rel(rel); !c) return fail(std::move(c.error()).in(full(rel)));
  auto slash = rel.rfind('/');
  std::string parent = slash == std::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
  std::string leaf(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
  auto pfd = open_fd(parent, O_PATH | O_DIRECTORY);
  if (!pfd) return fail(std::move(pfd.error()));
  char buf[4096];
  ssize_t n = ::readlinkat(*pfd, leaf.c_str(), buf, sizeof buf);
  const int e = errno;
  ::close(*pfd);
  if (n < 0) return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": readlink: " + sys_reason(e));
  return std::string(buf, static_cast<std::size_t>(n));
}

result<void> rooted_dir::make_dir(std::string_view rel, unsigned mode) const {
  if (auto c = check_rel(rel); !c) return fail(std::move(c.error()).in(full(rel)));
  auto slash = rel.rfind('/');
  std::string parent = slash == std::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
  std::string leaf(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
  auto pfd = open_fd(parent, O_PATH | O_DIRECTORY);
  if (!pfd) return fail(std::move(pfd.error()));
  const int rc = ::mkdirat(*pfd, leaf.c_str(), static_cast<mode_t>(mode));
  const int e = errno;
  ::close(*pfd);
  if (rc != 0) return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": mkdir: " + sys_reason(e));
  return {};
}

result<void> rooted_dir::remove_dir(std::string_view rel) const {
  if (auto c = check_rel(rel); !c) return fail(std::move(c.error()).in(full(rel)));
  auto slash = rel.rfind('/');
  std::string parent = slash == std::string_view::npos ? std::string() : std::string(rel.substr(0, slash));
  std::string leaf(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
  auto pfd = open_fd(parent, O_PATH | O_DIRECTORY);
  if (!pfd) return fail(std::move(pfd.error()));
  const int rc = ::unlinkat(*pfd, leaf.c_str(), AT_REMOVEDIR);
  const int e = errno;
  ::close(*pfd);
  if (rc != 0) return fail(errc_from_errno(e), bulkhead::detail::quote_path(full(rel)) + ": rmdir: " + sys_reason(e));
  return {};
}

result<rooted_dir> rooted_dir::subdir(std::string_view rel) const {
  auto fd = open_fd(rel, O_RDONLY | O_DIRECTORY);
  if (!fd) return fail(std::move(fd.error()));
  return rooted_dir(*fd, full(rel));
}

}  // namespace bulkhead
