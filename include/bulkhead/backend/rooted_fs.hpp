// bulkhead/backend/rooted_fs.hpp: file access confined to a root directory.
//
// Every backend that reads files (cgroup, resctrl, sysfs) is given a root and
// reaches files only through a rooted_dir. Paths are relative to the root;
// they are resolved by the kernel with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS) (openat2(2)), so a symbolic link is followed only
// while it stays beneath the root, and ".." cannot climb out. Where openat2 is
// missing (kernels before 5.6) every component is opened with O_NOFOLLOW and
// any link is refused. An escape attempt is errc::unsafe_path.
//
// Names that become path components (instance and group names) go through
// validate_name() first.
//
// Errors name the full path and the system's reason. errno mapping:
// ENOENT/ENOTDIR -> not_found, EACCES/EPERM -> permission_denied,
// EXDEV/ELOOP -> unsafe_path, ENOSPC/EDQUOT -> no_space, others io_error.
//
// Thread-safety: a rooted_dir may be used from several threads at once (it
// holds only a directory descriptor).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "bulkhead/api.hpp"
#include "bulkhead/error.hpp"
#include "bulkhead/model/names.hpp"

namespace bulkhead {

class BULKHEAD_API rooted_dir {
 public:
  // Opens `root` (which must be a directory; the root itself may be reached
  // through links, as /sys/fs/cgroup often is).
  [[nodiscard]] static result<rooted_dir> open(const std::string& root);

  rooted_dir(rooted_dir&& o) noexcept;
  rooted_dir& operator=(rooted_dir&& o) noexcept;
  rooted_dir(const rooted_dir&) = delete;
  rooted_dir& operator=(const rooted_dir&) = delete;
  ~rooted_dir();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // The whole file, at most max_bytes (a larger file is errc::out_of_range).
  [[nodiscard]] result<std::string> read_file(std::string_view rel, std::size_t max_bytes = 1u << 20) const;
  // Writes `content` in one write(2) to an existing file (O_WRONLY | O_TRUNC),
  // as cgroup and resctrl files require.
  [[nodiscard]] result<void> write_file(std::string_view rel, std::string_view content) const;
  // Creates or replaces a regular file (fixtures, journals); mode 0644.
  [[nodiscard]] result<void> create_file(std::string_view rel, std::string_view content) const;
  [[nodiscard]] result<bool> exists(std::string_view rel) const;
  [[nodiscard]] result<bool> is_directory(std::string_view rel) const;
  // Entry names of a directory, sorted, without "." and "..".
  [[nodiscard]] result<std::vector<std::string>> list(std::string_view rel = "") const;
  // The text of a symbolic link (not followed).
  [[nodiscard]] result<std::string> read_link(std::string_view rel) const;
  [[nodiscard]] result<void> make_dir(std::string_view rel, unsigned mode = 0755) const;
  [[nodiscard]] result<void> remove_dir(std::string_view rel) const;
  // A rooted_dir for a directory beneath this one: its own root.
  [[nodiscard]] result<rooted_dir> subdir(std::string_view rel) const;

  // Opens a file beneath the root with the given open(2) flags and returns
  // the descriptor (the caller closes it).
  [[nodiscard]] result<int> open_fd(std::string_view rel, int flags, unsigned mode = 0644) const;

 private:
  rooted_dir(int fd, std::string path) noexcept : fd_(fd), path_(std::move(path)) {}
  [[nodiscard]] BULKHEAD_HIDDEN std::string full(std::string_view rel) const;
  int fd_ = -1;
  std::string path_;
};

// errno to errc, as documented above.
[[nodiscard]] BULKHEAD_API errc errc_from_errno(int e) noexcept;

}  // namespace bulkhead
