// Internal (src/backend/file_cache.hpp): control files kept open and re-read.
//
// Opening a cgroupfs or resctrl file costs several times more than reading
// it (kernfs builds its per-open state on every open(2)); a reconcile loop
// reads the same few files of every group again and again. The cache keeps
// each file open after the first read (opened through rooted_dir, so with
// the same confinement) and re-reads it with pread(2) at offset 0, which
// makes kernfs produce the file afresh.
//
// Staleness: a file whose group was removed reads ENODEV on kernfs; on other
// file systems (fixture trees) a removed file is noticed by its link count
// dropping to 0. Either way the entry is dropped and the path opened anew,
// so a re-created group is read, never its predecessor.
//
// At most `capacity` files are held (the oldest is closed first); 0 turns
// the cache off. Not thread-safe: one per backend object.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bulkhead/backend/rooted_fs.hpp"
#include "bulkhead/detail/text.hpp"

namespace bulkhead::detail {

class open_file_cache {
 public:
  explicit open_file_cache(std::size_t capacity = 512) noexcept : cap_(capacity) {}
  ~open_file_cache() { clear(); }
  open_file_cache(const open_file_cache&) = delete;
  open_file_cache& operator=(const open_file_cache&) = delete;

  // The whole of `rel` beneath `dir`, at most max_bytes. `key` names the
  // file uniquely among everything read through this cache. Errors as
  // rooted_dir::read_file.
  [[nodiscard]] result<std::string> read(const rooted_dir& dir, const std::string& key, std::string_view rel,
                                         std::size_t max_bytes = 1u << 20) {
    if (auto it = map_.find(key); it != map_.end()) {
      std::string out;
      const int e = pread_all(it->second.fd, max_bytes, out, buf_);
      bool stale = e == ENODEV || e == ENOENT || e == ESTALE;
      if (e == 0 && !it->second.kernfs) {
        struct stat st{};
        stale = ::fstat(it->second.fd, &st) == 0 && st.st_nlink == 0;
      }
      if (e == 0 && !stale) return out;
      ::close(it->second.fd);
      map_.erase(it);
      if (!stale) return fail_read(dir, rel, e, max_bytes);
    }
    auto fd = dir.open_fd(rel, O_RDONLY);
    if (!fd) return fail(std::move(fd.error()));
    std::string out;
    const int e = pread_all(*fd, max_bytes, out, buf_);
    if (e != 0) {
      ::close(*fd);
      return fail_read(dir, rel, e, max_bytes);
    }
    if (cap_ == 0) {
      ::close(*fd);
      return out;
    }
    struct statfs sf{};
    // cgroup v1, cgroup2 and resctrl are kernfs file systems
    // (include/uapi/linux/magic.h).
    const bool kernfs = ::fstatfs(*fd, &sf) == 0 &&
                        (sf.f_type == 0x27e0eb || sf.f_type == 0x63677270 || sf.f_type == 0x7655821);
    while (map_.size() >= cap_ && !order_.empty()) {
      if (auto old = map_.find(order_.front()); old != map_.end()) {
        ::close(old->second.fd);
        map_.erase(old);
      }
      order_.pop_front();
    }
    map_.emplace(key, entry{*fd, kernfs});
    order_.push_back(key);
    if (order_.size() > 4 * cap_ + 16) compact();
    return out;
  }

  // Closes every file whose key starts with `prefix` (a removed group).
  void forget_prefix(std::string_view prefix) {
    for (auto it = map_.begin(); it != map_.end();) {
      if (std::string_view(it->first).substr(0, prefix.size()) == prefix) {
        ::close(it->second.fd);
        it = map_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void clear() {
    for (auto& [k, e] : map_) ::close(e.fd);
    map_.clear();
    order_.clear();
  }

  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }

 private:
  struct entry {
    int fd = -1;
    bool kernfs = false;
  };

  // Reads from offset 0 to the end into `buf` (kept between calls, so a
  // read allocates nothing but its result, and control files are short
  // enough to fit a string's inline storage); 0 or an errno. A short read
  // ends the file (regular files, and kernfs seq_files, which fill the
  // buffer they are given until their output ends).
  static int pread_all(int fd, std::size_t max_bytes, std::string& out, std::string& buf) {
    std::size_t off = 0;
    if (buf.size() < 4096) buf.resize(4096);
    while (true) {
      const ssize_t n = ::pread(fd, buf.data() + off, buf.size() - off, static_cast<off_t>(off));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      off += static_cast<std::size_t>(n);
      if (off > max_bytes) return EFBIG;
      if (n == 0 || off < buf.size()) break;
      buf.resize(buf.size() * 2);
    }
    out.assign(buf.data(), off);
    return 0;
  }

  static std::unexpected<error> fail_read(const rooted_dir& dir, std::string_view rel, int e, std::size_t max_bytes) {
    const std::string path = quote_path(dir.path() + "/" + std::string(rel));
    if (e == EFBIG) return fail(errc::out_of_range, path + ": larger than " + std::to_string(max_bytes) + " bytes");
    return fail(errc_from_errno(e), path + ": read: " + std::strerror(e));
  }

  void compact() {
    std::deque<std::string> kept;
    for (auto& k : order_)
      if (map_.count(k)) kept.push_back(std::move(k));
    order_ = std::move(kept);
  }

  std::unordered_map<std::string, entry> map_;
  std::deque<std::string> order_;  // insertion order (may hold keys already dropped)
  std::size_t cap_;
  std::string buf_;
};

}  // namespace bulkhead::detail
